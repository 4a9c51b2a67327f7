package tcctl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

// Key broker secrets (docs/secrets.md). A value is read from a file or
// stdin, never from a flag (it would land in the shell's history), and is
// never shown: the verifier does not give it back.

func secretTable(ss ...restapi.Secret) *table {
	t := &table{header: []string{"ID", "NAME", "VERSION", "HOSTS", "FLAVOR GROUPS", "MAX EVIDENCE AGE", "PCRS", "UPDATED"}}
	for _, s := range ss {
		p := s.Policy
		age := "default"
		if p.MaxEvidenceAgeSeconds > 0 {
			age = (time.Duration(p.MaxEvidenceAgeSeconds) * time.Second).String()
		}
		pcrs := "-"
		if p.BindPCRs {
			pcrs = "bound"
			if len(p.PCRs) > 0 {
				pcrs = fmt.Sprint(p.PCRs)
			}
		}
		t.add(s.ID, s.Name, strconv.FormatInt(s.Version, 10), listCell(p.HostIDs), listCell(p.FlavorGroupNames), age, pcrs, timeCell(&s.Updated))
	}
	return t
}

// secretID resolves a secret name to its id; an argument that names no
// secret is taken as an id.
func secretID(ctx context.Context, c *Client, nameOrID string) (string, error) {
	return idByName(ctx, c, "secret", "/hvs/v2/secrets", "secrets", nameOrID)
}

// policyFlags are the flags that make a release policy.
type policyFlags struct {
	hosts, groups        []string
	maxAge               time.Duration
	bindPCRs             bool
	pcrs                 []int
	allowSBOff, allowDEC bool
}

func (f *policyFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.hosts, "host", nil, "host id that may have the secret (repeatable)")
	fl.StringSliceVar(&f.groups, "flavorgroup", nil, "flavor group whose hosts may have the secret (repeatable)")
	fl.DurationVar(&f.maxAge, "max-evidence-age", 0, "oldest report a release may rest on, and the lease (default 10m)")
	fl.BoolVar(&f.bindPCRs, "bind-pcrs", false, "seal the secret to the attested PCR values too")
	fl.IntSliceVar(&f.pcrs, "pcrs", nil, "SHA-256 PCRs --bind-pcrs binds to (default 0-7)")
	fl.BoolVar(&f.allowSBOff, "allow-secure-boot-off", false, "release to Verified nodes with Secure Boot off")
	fl.BoolVar(&f.allowDEC, "allow-unmeasured-disk-encryption", false, "release to Verified nodes whose disk encryption is not measured")
}

func (f *policyFlags) policy() restapi.SecretPolicy {
	return restapi.SecretPolicy{
		HostIDs: f.hosts, FlavorGroupNames: f.groups, MaxEvidenceAgeSeconds: int64(f.maxAge / time.Second),
		BindPCRs: f.bindPCRs, PCRs: f.pcrs, AllowSecureBootOff: f.allowSBOff, AllowUnmeasuredDiskEncryption: f.allowDEC,
	}
}

func (a *app) secretCreate() *cobra.Command {
	var (
		file, format string
		pf           policyFlags
	)
	cmd := &cobra.Command{
		Use:   "create <name> --value-file <file> (--host <id> | --flavorgroup <name>)...",
		Short: "Create a secret with its release policy",
		Long: `Create a secret. Its value comes from --value-file (- for stdin) and is never shown again.
A Verified node named by the policy (by host id or flavor group) gets it sealed to its TPM.

  tcctl secret create volume-key --value-file key.bin --flavorgroup edge --bind-pcrs`,
		Args: cobra.ExactArgs(1),
		RunE: a.runWithValue(&file, func(ctx context.Context, c *Client, out io.Writer, args []string, value []byte) error {
			created, raw, err := postAs[restapi.Secret](ctx, c, "/hvs/v2/secrets",
				restapi.SecretRequest{Name: args[0], Value: value, Policy: pf.policy()})
			if err != nil {
				return fmt.Errorf("create secret %s: %w", args[0], err)
			}
			return render(out, format, raw, secretTable(created))
		}),
	}
	cmd.Flags().StringVar(&file, "value-file", "", "file holding the value (- for stdin)")
	_ = cmd.MarkFlagRequired("value-file")
	pf.add(cmd)
	addOutputFlag(cmd, &format)
	return cmd
}

// runWithValue is run for a command that reads a secret's value from the
// file named by *file, or stdin for "-".
func (a *app) runWithValue(file *string, f func(ctx context.Context, c *Client, out io.Writer, args []string, value []byte) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		value, err := readInput(cmd.InOrStdin(), *file)
		if err != nil {
			return err
		}
		if len(value) == 0 {
			return fmt.Errorf("the value in %s is empty", *file)
		}
		return a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			return f(ctx, c, out, args, value)
		})(cmd, args)
	}
}

func (a *app) secretList() *cobra.Command {
	return listing(a, "List secrets and their policies (never their values)", "secrets", "/hvs/v2/secrets",
		func(l restapi.SecretList) *table { return secretTable(l.Secrets...) })
}

func (a *app) secretGetPolicy() *cobra.Command {
	return getting(a, &cobra.Command{Use: "get-policy <name-or-id>", Short: "Show a secret's release policy"},
		"secret", "/hvs/v2/secrets", secretID, secretTable)
}

func (a *app) secretRotate() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "rotate <name-or-id> --value-file <file>",
		Short: "Give a secret a new value (the next version; nodes get it at their next renewal)",
		Args:  cobra.ExactArgs(1),
		RunE: a.runWithValue(&file, func(ctx context.Context, c *Client, out io.Writer, args []string, value []byte) error {
			id, err := secretID(ctx, c, args[0])
			if err != nil {
				return err
			}
			s, raw, err := callAs[restapi.Secret](ctx, c, request{method: "PUT", path: "/hvs/v2/secrets/" + seg(id), in: restapi.SecretUpdate{Value: value}})
			if err != nil {
				return fmt.Errorf("rotate secret %s: %w", args[0], err)
			}
			return render(out, format, raw, secretTable(s))
		}),
	}
	cmd.Flags().StringVar(&file, "value-file", "", "file holding the new value (- for stdin)")
	_ = cmd.MarkFlagRequired("value-file")
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) secretDelete() *cobra.Command {
	return a.deleting("delete <name-or-id>...", "Delete secrets (nodes drop them at their next renewal)", "secret", "/hvs/v2/secrets", secretID)
}
