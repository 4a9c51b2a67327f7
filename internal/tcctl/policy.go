package tcctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/restapi"
)

// IMA runtime policies (docs/ima-policy.md): the digests allowed per path,
// excluded paths and trusted signing keys a node's IMA log is appraised
// against. generate makes a document locally, without the verifier; the
// other commands manage the verifier's policies.

const imaPoliciesPath = "/hvs/v2/ima-policies"

func policyTable(ps ...restapi.IMAPolicy) *table {
	t := &table{header: []string{"ID", "NAME", "VERSION", "DIGEST", "HOSTS", "FLAVOR GROUPS", "UPDATED"}}
	for _, p := range ps {
		version := strconv.FormatInt(p.Version, 10)
		if p.Version != p.LatestVersion {
			version += " (latest " + strconv.FormatInt(p.LatestVersion, 10) + ")"
		}
		t.add(p.ID, p.Name, version, shortDigest(p.Digest), listCell(p.HostIDs), listCell(p.FlavorGroupNames), timeCell(&p.Updated))
	}
	return t
}

// shortDigest shortens "sha256:<hex>" for a table.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+16 {
		return d[:len("sha256:")+16]
	}
	return d
}

// readPolicy reads a policy document from a file (- for stdin) and checks
// it as the verifier will, so that a mistake is named before it is sent.
func readPolicy(stdin io.Reader, file string) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, imapolicy.MaxDocumentBytes+1))
	} else {
		b, err = os.ReadFile(file) //nolint:gosec // G304: the operator names the file
	}
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", file, err)
	}
	if _, err := imapolicy.Parse(b); err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	return b, nil
}

// policyInput is the document file and description of create and update.
type policyInput struct {
	file, description string
	format            string
}

func (in *policyInput) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&in.file, "file", "f", "", "policy document (JSON; - for stdin)")
	_ = cmd.MarkFlagRequired("file")
	cmd.Flags().StringVar(&in.description, "description", "", "what the policy is for")
	addOutputFlag(cmd, &in.format)
}

// send reads the document and sends it; the answer is the policy.
func (a *app) sendPolicy(in *policyInput, method string, path func(args []string) string,
	body func(cmd *cobra.Command, args []string, doc json.RawMessage) restapi.IMAPolicyRequest) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		doc, err := readPolicy(cmd.InOrStdin(), in.file)
		if err != nil {
			return err
		}
		return a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			got, raw, err := callAs[restapi.IMAPolicy](ctx, c, request{method: method, path: path(args), in: body(cmd, args, doc)})
			if err != nil {
				return fmt.Errorf("%s policy %s: %w", strings.ToLower(method), args[0], err)
			}
			return render(out, in.format, raw, policyTable(got))
		})(cmd, args)
	}
}

func (a *app) policyCreate() *cobra.Command {
	var in policyInput
	cmd := &cobra.Command{
		Use:   "create <name> -f <policy.json>",
		Short: "Create a runtime policy from a document (version 1)",
		Long: `Create a runtime policy. The verifier checks the document, stores it signed and
appraises the IMA log of every host it is assigned to against it.

  tcctl policy generate --from-dir /mnt/golden-root -o kata.json
  tcctl policy create kata -f kata.json`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.sendPolicy(&in, "POST",
		func([]string) string { return imaPoliciesPath },
		func(cmd *cobra.Command, args []string, doc json.RawMessage) restapi.IMAPolicyRequest {
			return restapi.IMAPolicyRequest{Name: args[0], Description: &in.description, Policy: doc}
		})
	in.add(cmd)
	return cmd
}

func (a *app) policyUpdate() *cobra.Command {
	var in policyInput
	cmd := &cobra.Command{
		Use:   "update <name-or-id> -f <policy.json>",
		Short: "Store a document as a policy's next version, which the next report of its hosts uses",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.sendPolicy(&in, "PUT",
		func(args []string) string { return imaPoliciesPath + "/" + seg(args[0]) },
		func(cmd *cobra.Command, _ []string, doc json.RawMessage) restapi.IMAPolicyRequest {
			req := restapi.IMAPolicyRequest{Policy: doc}
			if cmd.Flags().Changed("description") {
				req.Description = &in.description
			}
			return req
		})
	in.add(cmd)
	return cmd
}

func (a *app) policyGet() *cobra.Command {
	var (
		format   string
		version  int64
		document bool
	)
	cmd := &cobra.Command{
		Use:   "get <name-or-id>",
		Short: "Show a policy (the latest version, or --version); --document prints the document alone",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			var q url.Values
			if version > 0 {
				q = url.Values{"version": {strconv.FormatInt(version, 10)}}
			}
			p, raw, err := getAs[restapi.IMAPolicy](ctx, c, imaPoliciesPath+"/"+seg(args[0]), q)
			if err != nil {
				return fmt.Errorf("get policy %s: %w", args[0], err)
			}
			if document {
				return render(out, formatJSON, p.Policy, nil)
			}
			return render(out, format, raw, policyTable(p))
		}),
	}
	cmd.Flags().Int64Var(&version, "version", 0, "the version to show (default the latest)")
	cmd.Flags().BoolVar(&document, "document", false, "print the policy document (JSON) alone")
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) policyList() *cobra.Command {
	return listing(a, "List runtime policies and where they are assigned", "policies", imaPoliciesPath,
		func(l restapi.IMAPolicyList) *table { return policyTable(l.Policies...) })
}

func (a *app) policyDelete() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete <name-or-id>...",
		Short: "Delete policies with all their versions (refused while assigned, unless --force)",
		Args:  cobra.MinimumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			var q url.Values
			if force {
				q = url.Values{"force": {"true"}}
			}
			for _, arg := range args {
				if err := c.doJSON(ctx, request{method: "DELETE", path: imaPoliciesPath + "/" + seg(arg), query: q}, nil); err != nil {
					return fmt.Errorf("delete policy %s: %w", arg, err)
				}
				_, _ = fmt.Fprintf(out, "policy %s deleted\n", arg)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even when assigned (its hosts and groups are left without a policy)")
	return cmd
}

// assignment is the flags of assign and unassign.
type assignment struct {
	hosts, hostNames, groups []string
	format                   string
}

func (a *app) assigning(use, short, action string) *cobra.Command {
	var as assignment
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			if len(as.hosts)+len(as.hostNames)+len(as.groups) == 0 {
				return errors.New("name hosts (--host, --host-name) or flavor groups (--flavorgroup)")
			}
			p, raw, err := postAs[restapi.IMAPolicy](ctx, c, imaPoliciesPath+"/"+seg(args[0])+"/"+action,
				restapi.IMAPolicyAssignment{HostIDs: as.hosts, HostNames: as.hostNames, FlavorGroupNames: as.groups})
			if err != nil {
				return fmt.Errorf("%s policy %s: %w", action, args[0], err)
			}
			return render(out, as.format, raw, policyTable(p))
		}),
	}
	cmd.Flags().StringSliceVar(&as.hosts, "host", nil, "host id (repeatable)")
	cmd.Flags().StringSliceVar(&as.hostNames, "host-name", nil, "host name (repeatable)")
	cmd.Flags().StringSliceVar(&as.groups, "flavorgroup", nil, "flavor group name (repeatable)")
	addOutputFlag(cmd, &as.format)
	return cmd
}

func (a *app) policyAssign() *cobra.Command {
	return a.assigning("assign <name-or-id> (--host <id> | --host-name <name> | --flavorgroup <name>)...",
		"Make the policy the one of hosts or flavor groups (a host's own wins over its groups')", "assign")
}

func (a *app) policyUnassign() *cobra.Command {
	return a.assigning("unassign <name-or-id> (--host <id> | --host-name <name> | --flavorgroup <name>)...",
		"Take the policy from hosts or flavor groups (their IMA log is then appraised against the golden log)", "unassign")
}

// policyGenerate makes a document locally; it needs no verifier.
func policyGenerate() *cobra.Command {
	var (
		fromDir, fromLog, out, alg string
		merge, allFiles            bool
		dirs, excludes             []string
	)
	cmd := &cobra.Command{
		Use:   "generate (--from-dir <root> | --from-log <file> | --merge <policy.json>...) [-o <file>]",
		Short: "Make a policy document from a root file system, a known-good node's IMA log, or by merging policies",
		Long: `Make a runtime policy document (JSON) on stdout, or in the file -o names.

  --from-dir <root>   hash the programs and shared libraries under the usual
                      directories of a root file system (--dir to choose them,
                      --all-files for every regular file), as the node's IMA
                      policy would measure them
  --from-log <file>   take every measured file of a known-good node's
                      /sys/kernel/security/ima/ascii_runtime_measurements
  --merge <file>...   the union of policy documents

  tcctl policy generate --from-dir /mnt/golden-root --exclude '/var/log/.*' -o base.json
  tcctl policy generate --merge base.json kata.json -o kata-nodes.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			set := 0
			for _, on := range []bool{fromDir != "", fromLog != "", merge} {
				if on {
					set++
				}
			}
			if set != 1 {
				return errors.New("give exactly one of --from-dir, --from-log and --merge")
			}
			if !merge && len(args) > 0 {
				return fmt.Errorf("unexpected arguments %v (only --merge takes files)", args)
			}
			var (
				p   *imapolicy.Policy
				err error
			)
			switch {
			case fromDir != "":
				p, err = imapolicy.FromDir(fromDir, imapolicy.DirOptions{Dirs: dirs, Alg: alg, AllFiles: allFiles,
					Excludes: excludes, Generator: "tcctl policy generate --from-dir"})
			case fromLog != "":
				p, err = policyFromLog(fromLog, excludes)
			default:
				p, err = mergePolicies(cmd.InOrStdin(), args, excludes)
			}
			if err != nil {
				return err
			}
			return writePolicy(cmd.OutOrStdout(), out, p)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&fromDir, "from-dir", "", "root file system directory to hash")
	fl.StringVar(&fromLog, "from-log", "", "IMA log (ascii_runtime_measurements) of a known-good node")
	fl.BoolVar(&merge, "merge", false, "merge the policy documents given as arguments")
	fl.StringVarP(&out, "output", "o", "", "write the document to this file (default stdout)")
	fl.StringSliceVar(&dirs, "dir", nil, "directory of the root to walk, as an absolute path inside it (repeatable; default the usual program and library directories)")
	fl.BoolVar(&allFiles, "all-files", false, "with --from-dir: hash every regular file, not only programs and shared libraries")
	fl.StringVar(&alg, "alg", "sha256", "with --from-dir: the digest algorithm of the nodes' IMA")
	fl.StringSliceVar(&excludes, "exclude", nil, "path expression (RE2, whole path) to exclude (repeatable)")
	return cmd
}

func policyFromLog(file string, excludes []string) (*imapolicy.Policy, error) {
	b, err := os.ReadFile(file) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return nil, fmt.Errorf("read ima log: %w", err)
	}
	p, err := imapolicy.FromIMALog(string(b))
	if err != nil {
		return nil, err
	}
	p.Meta.Generator = "tcctl policy generate --from-log"
	p.Excludes = append(p.Excludes, excludes...)
	return p, p.Normalize()
}

func mergePolicies(stdin io.Reader, files, excludes []string) (*imapolicy.Policy, error) {
	if len(files) < 1 {
		return nil, errors.New("--merge needs policy documents to merge")
	}
	ps := make([]*imapolicy.Policy, 0, len(files)+1)
	for _, f := range files {
		b, err := readPolicy(stdin, f)
		if err != nil {
			return nil, err
		}
		p, err := imapolicy.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", f, err)
		}
		ps = append(ps, p)
	}
	if len(excludes) > 0 {
		no := false // the excludes alone do not turn the boot_aggregate check on
		ps = append(ps, &imapolicy.Policy{Meta: imapolicy.Meta{Version: imapolicy.CurrentMetaVersion}, Excludes: excludes, BootAggregate: &no})
	}
	p, err := imapolicy.Merge(ps...)
	if err != nil {
		return nil, err
	}
	p.Meta.Generator = "tcctl policy generate --merge"
	return p, nil
}

// writePolicy writes the canonical document to file, or w when file is "".
func writePolicy(w io.Writer, file string, p *imapolicy.Policy) error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if file == "" {
		_, err = w.Write(b)
		return err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	return nil
}
