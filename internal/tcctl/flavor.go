package tcctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
)

func flavorTable(fs ...flavor.SignedFlavor) *table {
	t := &table{header: []string{"FLAVOR ID", "PART", "LABEL", "HARDWARE UUID", "SOURCE", "CREATED"}}
	for _, sf := range fs {
		m := sf.Flavor.Meta
		t.add(m.ID, string(m.Description.FlavorPart), orDash(m.Description.Label), orDash(m.Description.HardwareUUID),
			orDash(m.Description.Source), timeCell(&m.Description.CreatedAt))
	}
	return t
}

// signedAnswer is a signed flavor collection answer with its table.
func signedAnswer(raw json.RawMessage) (any, *table, error) {
	var coll flavor.SignedFlavorCollection
	if err := json.Unmarshal(raw, &coll); err != nil {
		return nil, nil, fmt.Errorf("decode flavors: %w", err)
	}
	return raw, flavorTable(coll.SignedFlavors...), nil
}

func partCompletion(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, p := range flavor.Parts() {
		out = append(out, string(p))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func checkParts(parts []string) error {
	var errs []error
	for _, p := range parts {
		if !flavor.Part(p).Valid() {
			errs = append(errs, fmt.Errorf("unknown flavor part %q", p))
		}
	}
	return errors.Join(errs...)
}

func (a *app) flavorList() *cobra.Command {
	var (
		hostID, group string
		parts         []string
	)
	cmd := &cobra.Command{Use: "list", Short: "List flavors", Args: cobra.NoArgs}
	cmd.Flags().StringVar(&hostID, "host", "", "only flavors of this host id")
	cmd.Flags().StringSliceVar(&parts, "part", nil, "only these parts (PLATFORM, OS, IMA, HOST_UNIQUE, SOFTWARE, ASSET_TAG)")
	cmd.Flags().StringVar(&group, "flavorgroup", "", "only flavors of this flavor group (name or id)")
	_ = cmd.RegisterFlagCompletionFunc("part", partCompletion)
	_ = cmd.RegisterFlagCompletionFunc("host", a.completeHostIDs)
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		if err := checkParts(parts); err != nil {
			return nil, nil, err
		}
		q := url.Values{}
		if hostID != "" {
			q.Set("hostId", hostID)
		}
		if len(parts) > 0 {
			q.Set("flavorParts", strings.Join(parts, ","))
		}
		if group != "" {
			id, err := groupID(ctx, c, group)
			if err != nil {
				return nil, nil, err
			}
			q.Set("flavorgroupId", id)
		}
		var raw json.RawMessage
		if err := c.get(ctx, "/hvs/v2/flavors", q, &raw); err != nil {
			return nil, nil, fmt.Errorf("list flavors: %w", err)
		}
		return signedAnswer(raw)
	})
}

func (a *app) flavorGet() *cobra.Command {
	return getting(a, &cobra.Command{Use: "get <flavor-id>", Short: "Show a signed flavor", ValidArgsFunction: a.completeFlavorIDs},
		"flavor", "/hvs/v2/flavors", nil, flavorTable)
}

// importRequest makes the POST /hvs/v2/flavors body of a file holding a
// flavor collection ({"flavors": [...]}, signed by the verifier on import)
// or a signed flavor collection ({"signed_flavors": [...]}, whose
// signatures the verifier checks).
func importRequest(b []byte, groups []string) (restapi.FlavorRequest, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return restapi.FlavorRequest{}, fmt.Errorf("not a JSON object: %w", err)
	}
	req := restapi.FlavorRequest{FlavorGroupNames: groups}
	_, plain := keys["flavors"]
	_, signed := keys["signed_flavors"]
	switch {
	case plain && !signed:
		coll, err := flavor.DecodeFlavorCollection(b)
		if err != nil {
			return req, err
		}
		req.FlavorCollection = &coll
	case signed && !plain:
		coll, err := flavor.DecodeSignedFlavorCollection(b)
		if err != nil {
			return req, err
		}
		req.SignedFlavorCollection = &coll
	default:
		return req, errors.New(`want a flavor collection {"flavors": [...]} or a signed flavor collection {"signed_flavors": [...]}`)
	}
	return req, nil
}

func (a *app) flavorImport() *cobra.Command {
	var (
		file   string
		groups []string
	)
	cmd := &cobra.Command{
		Use:   "import -f <file>",
		Short: "Import a flavor collection or a signed flavor collection",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file (- for stdin)")
	cmd.Flags().StringSliceVar(&groups, "flavorgroup", nil, "flavor group names (default: automatic)")
	_ = cmd.MarkFlagRequired("file")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		b, err := readInput(cmd.InOrStdin(), file)
		if err != nil {
			return nil, nil, err
		}
		req, err := importRequest(b, groups)
		if err != nil {
			return nil, nil, fmt.Errorf("import flavors from %s: %w", file, err)
		}
		var raw json.RawMessage
		if err := c.post(ctx, "/hvs/v2/flavors", req, &raw); err != nil {
			return nil, nil, fmt.Errorf("import flavors from %s: %w", file, err)
		}
		return signedAnswer(raw)
	})
}

func (a *app) flavorCreateFromHost() *cobra.Command {
	var (
		hostID        string
		parts, groups []string
	)
	cmd := &cobra.Command{
		Use:     "create-from-host",
		Short:   "Make flavors from a live host's current measurements",
		Example: "  tcctl flavor create-from-host --host-id edge-1 --parts PLATFORM,OS,IMA",
		Args:    cobra.NoArgs,
	}
	cmd.Flags().StringVar(&hostID, "host-id", "", "host id (required)")
	cmd.Flags().StringSliceVar(&parts, "parts", nil, "flavor parts (default: the verifier's rebaseline parts)")
	cmd.Flags().StringSliceVar(&groups, "flavorgroup", nil, "flavor group names (default: automatic)")
	_ = cmd.MarkFlagRequired("host-id")
	_ = cmd.RegisterFlagCompletionFunc("parts", partCompletion)
	_ = cmd.RegisterFlagCompletionFunc("host-id", a.completeHostIDs)
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		if err := checkParts(parts); err != nil {
			return nil, nil, err
		}
		req := restapi.FlavorRequest{HostID: hostID, FlavorGroupNames: groups}
		for _, p := range parts {
			req.PartialFlavorTypes = append(req.PartialFlavorTypes, flavor.Part(p))
		}
		var raw json.RawMessage
		if err := c.post(ctx, "/hvs/v2/flavors", req, &raw); err != nil {
			return nil, nil, fmt.Errorf("create flavors from host %s: %w", hostID, err)
		}
		return signedAnswer(raw)
	})
}

func (a *app) flavorDelete() *cobra.Command {
	cmd := a.deleting("delete <flavor-id>...", "Remove flavors", "flavor", "/hvs/v2/flavors", nil)
	cmd.ValidArgsFunction = a.completeFlavorIDs
	return cmd
}

// readInput reads a file, or stdin for "-".
func readInput(stdin io.Reader, file string) ([]byte, error) {
	if file == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, flavor.MaxCollectionSize+1))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(file) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return b, nil
}
