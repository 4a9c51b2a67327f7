package tcctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
)

func (a *app) flavorGroupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "flavorgroup", Short: "List, create and remove flavor groups (per-part match policies)"}
	cmd.AddCommand(a.groupList(), a.groupGet(), a.groupCreate(), a.groupDelete())
	return cmd
}

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
	var list restapi.FlavorGroupList
	if err := c.get(ctx, "/hvs/v2/flavorgroups", url.Values{"nameEqualTo": {nameOrID}}, &list); err != nil {
		return "", fmt.Errorf("find flavor group %s: %w", nameOrID, err)
	}
	if len(list.Groups) == 1 {
		return list.Groups[0].ID, nil
	}
	return nameOrID, nil
}

func (a *app) groupList() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "list", Short: "List flavor groups", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, _ []string) error {
			list, raw, err := getAs[restapi.FlavorGroupList](ctx, c, "/hvs/v2/flavorgroups", nil)
			if err != nil {
				return fmt.Errorf("list flavor groups: %w", err)
			}
			return render(out, format, raw, groupTable(list.Groups...))
		}),
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) groupGet() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "get <name-or-id>", Short: "Show a flavor group", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			id, err := groupID(ctx, c, args[0])
			if err != nil {
				return err
			}
			g, raw, err := getAs[flavor.Group](ctx, c, "/hvs/v2/flavorgroups/"+seg(id), nil)
			if err != nil {
				return fmt.Errorf("get flavor group %s: %w", args[0], err)
			}
			return render(out, format, raw, groupTable(g))
		}),
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) groupCreate() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "create -f <file>",
		Short: "Create a flavor group from its JSON",
		Long: `Create a flavor group from a JSON file of the verifier's shape:

  {"name": "edge", "flavor_match_policy_collection": {"flavor_match_policies": [
    {"flavor_part": "PLATFORM", "match_policy": {"match_type": "ANY_OF", "required": "REQUIRED"}}]}}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := readInput(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var g flavor.Group
			if err := json.Unmarshal(b, &g); err != nil {
				return fmt.Errorf("flavor group in %s: %w", file, err)
			}
			if err := g.Validate(); err != nil {
				return fmt.Errorf("flavor group in %s: %s", file, strings.ReplaceAll(err.Error(), "\n", "; "))
			}
			created, raw, err := postAs[flavor.Group](cmd.Context(), c, "/hvs/v2/flavorgroups", g)
			if err != nil {
				return fmt.Errorf("create flavor group %s: %w", g.Name, err)
			}
			return render(cmd.OutOrStdout(), format, raw, groupTable(created))
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) groupDelete() *cobra.Command {
	return &cobra.Command{
		Use: "delete <name-or-id>...", Short: "Remove flavor groups", Args: cobra.MinimumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			for _, arg := range args {
				id, err := groupID(ctx, c, arg)
				if err != nil {
					return err
				}
				if err := c.delete(ctx, "/hvs/v2/flavorgroups/"+seg(id)); err != nil {
					return fmt.Errorf("delete flavor group %s: %w", arg, err)
				}
				_, _ = fmt.Fprintf(out, "flavor group %s deleted\n", arg)
			}
			return nil
		}),
	}
}
