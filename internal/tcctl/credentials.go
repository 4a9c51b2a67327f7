package tcctl

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

func (a *app) credentialsAgent() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent <host-id> -f <out.creds> [--bus-grammar 2]",
		Short: "Issue a trust agent's NATS credentials into a file (mode 0600)",
		Long: `Issue the NATS credentials of the trust agent of one host. They hold a
private key: they are written to the file with mode 0600 and never printed.
Install the file on the node with the CMS root.

--bus-grammar 2 issues credentials of the two-prefix grammar
(trust-agent.<host-id>.> and trust-events.<host-id>.> only), which agents
from 2026-12 on use; without it they are of the split grammar every agent
knows, and an agent from 2026-12 on renews them into two prefixes when
they are due.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeHostIDs,
	}
	var grammar string
	cmd.Flags().StringVar(&grammar, "bus-grammar", "", "grammar of the agent's bus subjects: 1 (split) or 2 (two prefixes); default: the verifier's, 1")
	return a.issueCredentials(cmd, func(args []string) (restapi.CredentialsRequest, string) {
		params := map[string]string{restapi.ParamHostID: args[0]}
		if grammar != "" {
			params[restapi.ParamBusGrammar] = grammar
		}
		return restapi.CredentialsRequest{Type: restapi.CredentialsAgent, Parameters: params}, "host " + args[0]
	})
}

func (a *app) credentialsManager() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manager -f <out.creds>",
		Short: "Issue the attestation manager's NATS credentials into a file (mode 0600)",
		Long: `Issue the NATS credentials of the attestation manager: it may subscribe
to trust reports only. They hold a private key: they are written to the
file with mode 0600 and never printed. Put the file into the Secret the
manager reads (attestationManager.nats.credsSecret).`,
		Args: cobra.NoArgs,
	}
	return a.issueCredentials(cmd, func([]string) (restapi.CredentialsRequest, string) {
		return restapi.CredentialsRequest{Type: restapi.CredentialsManager}, "the attestation manager"
	})
}

// issueCredentials completes cmd: it asks AAS for the credentials that
// describe names and writes them to the file of -f with mode 0600.
func (a *app) issueCredentials(cmd *cobra.Command, describe func(args []string) (restapi.CredentialsRequest, string)) *cobra.Command {
	var file string
	cmd.RunE = a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
		body, whose := describe(args)
		creds, err := c.do(ctx, request{method: http.MethodPost, path: "/aas/v1/credentials", in: body})
		if err != nil {
			return fmt.Errorf("issue credentials of %s: %w", whose, err)
		}
		if err := writeFileAtomic(file, creds, 0o600); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(out, "credentials of %s written to %s (mode 0600)\n", whose, file)
		return nil
	})
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to write (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// Default names of the credentials AAS issues: tcctl credentials manager,
// and POST /aas/v1/credentials {"type":"HVS"}.
const (
	defaultManagerName = "attestation-manager"
	defaultServiceName = "HVS"
)

func (a *app) credentialsRevokeManager() *cobra.Command {
	return a.revokeCredentials("manager", defaultManagerName, `Revoke every bus credential issued so far to the attestation manager of
that name (default attestation-manager, the name tcctl credentials manager
issues): its connections close at once and the credentials are refused from
then on, after a verifier restart too. Credentials issued later work: give
the manager fresh ones (tcctl credentials manager -f out.creds, then update
the Secret it reads).`, "/aas/v1/credentials/managers/")
}

func (a *app) credentialsRevokeService() *cobra.Command {
	return a.revokeCredentials("service", defaultServiceName, `Revoke every bus credential issued so far to the verifier service of that
name: HVS (the default) for those POST /aas/v1/credentials {"type":"HVS"}
issued, hvs for those verifier nats-export wrote. Their connections close at
once and the credentials are refused from then on, after a verifier restart
too; the verifier's own connection to its embedded server is not touched.
Credentials issued later work. With an external NATS cluster the revocation
is recorded but reaches the cluster only with the next verifier nats-export.`, "/aas/v1/credentials/services/")
}

// revokeCredentials is "credentials revoke-<kind> [name]": it revokes the
// bus credentials of the kind's name (default defaultName) with DELETE
// path<name>.
func (a *app) revokeCredentials(kind, defaultName, long, path string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-" + kind + " [name]",
		Short: "Revoke every bus credential issued so far to a " + kind + " (default " + defaultName + ")",
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			name := defaultName
			if len(args) == 1 {
				name = args[0]
			}
			if err := c.delete(ctx, path+seg(name)); err != nil {
				return fmt.Errorf("revoke the credentials of %s %s: %w", kind, name, err)
			}
			_, _ = fmt.Fprintf(out, "bus credentials of %s %s revoked\n", kind, name)
			return nil
		}),
	}
}
