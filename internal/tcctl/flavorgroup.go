package tcctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
)

func groupTable(gs ...flavor.Group) *table {
	t := &table{header: []string{"ID", "NAME", "POLICIES"}}
	for _, g := range gs {
		var ps []string
		for _, p := range g.MatchPolicies {
			ps = append(ps, fmt.Sprintf("%s=%s/%s", p.FlavorPart, p.MatchPolicy.MatchType, p.MatchPolicy.Required))
		}
		t.add(g.ID, g.Name, listCell(ps))
	}
	return t
}

// groupID resolves a flavor group name to its id; an argument that names
// no group is taken as an id.
func groupID(ctx context.Context, c *Client, nameOrID string) (string, error) {
	return idByName(ctx, c, "flavor group", "/hvs/v2/flavorgroups", "flavorgroups", nameOrID)
}

func (a *app) groupList() *cobra.Command {
	return listing(a, "List flavor groups", "flavor groups", "/hvs/v2/flavorgroups",
		func(l restapi.FlavorGroupList) *table { return groupTable(l.Groups...) })
}

func (a *app) groupGet() *cobra.Command {
	return getting(a, &cobra.Command{Use: "get <name-or-id>", Short: "Show a flavor group"},
		"flavor group", "/hvs/v2/flavorgroups", groupID, groupTable)
}

func (a *app) groupCreate() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f <file>",
		Short: "Create a flavor group from its JSON",
		Long: `Create a flavor group from a JSON file of the verifier's shape:

  {"name": "edge", "flavor_match_policy_collection": {"flavor_match_policies": [
    {"flavor_part": "PLATFORM", "match_policy": {"match_type": "ANY_OF", "required": "REQUIRED"}}]}}`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		b, err := readInput(cmd.InOrStdin(), file)
		if err != nil {
			return nil, nil, err
		}
		var g flavor.Group
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, nil, fmt.Errorf("flavor group in %s: %w", file, err)
		}
		if err := g.Validate(); err != nil {
			return nil, nil, fmt.Errorf("flavor group in %s: %s", file, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		created, raw, err := postAs[flavor.Group](ctx, c, "/hvs/v2/flavorgroups", g)
		if err != nil {
			return nil, nil, fmt.Errorf("create flavor group %s: %w", g.Name, err)
		}
		return raw, groupTable(created), nil
	})
}

func (a *app) groupDelete() *cobra.Command {
	return a.deleting("delete <name-or-id>...", "Remove flavor groups", "flavor group", "/hvs/v2/flavorgroups", groupID)
}
