package tcctl

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

func (a *app) credentialsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "credentials", Short: "Issue bus credentials"}
	cmd.AddCommand(a.credentialsAgent())
	return cmd
}

func (a *app) credentialsAgent() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "agent <host-id> -f <out.creds>",
		Short: "Issue a trust agent's NATS credentials into a file (mode 0600)",
		Long: `Issue the NATS credentials of the trust agent of one host. They hold a
private key: they are written to the file with mode 0600 and never printed.
Install the file on the node with the CMS root.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeHostIDs,
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			body := restapi.CredentialsRequest{Type: restapi.CredentialsAgent, Parameters: map[string]string{restapi.ParamHostID: args[0]}}
			creds, err := c.do(ctx, request{method: http.MethodPost, path: "/aas/v1/credentials", in: body})
			if err != nil {
				return fmt.Errorf("issue credentials of host %s: %w", args[0], err)
			}
			if err := writeFileAtomic(file, creds, 0o600); err != nil {
				return err
			}
			_, _ = fmt.Fprintf(out, "credentials of host %s written to %s (mode 0600)\n", args[0], file)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to write (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
