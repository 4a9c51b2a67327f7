package tcctl

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// defaultManagerName is the name of the manager credentials AAS issues
// (tcctl credentials manager).
const defaultManagerName = "attestation-manager"

func (a *app) credentialsRevokeManager() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-manager [name]",
		Short: "Revoke every bus credential issued so far to an attestation manager",
		Long: `Revoke every bus credential issued so far to the attestation manager of
that name (default attestation-manager, the name tcctl credentials manager
issues): its connections close at once and the credentials are refused from
then on, after a verifier restart too. Credentials issued later work: give
the manager fresh ones (tcctl credentials manager -f out.creds, then update
the Secret it reads).`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			name := defaultManagerName
			if len(args) == 1 {
				name = args[0]
			}
			if err := c.delete(ctx, "/aas/v1/credentials/managers/"+seg(name)); err != nil {
				return fmt.Errorf("revoke the credentials of manager %s: %w", name, err)
			}
			_, _ = fmt.Fprintf(out, "bus credentials of manager %s revoked\n", name)
			return nil
		}),
	}
}
