package tcctl

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

func (a *app) hostEnroll() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "enroll <host-id>",
		Short: "Enroll a host's attestation key (its trust agent must be on the bus)",
		Long: `Enroll the attestation key (AK) of a host: the verifier asks the host's
trust agent for its EK certificate and AK, checks the EK certificate
against the configured TPM vendor CAs, proves by credential activation that
the AK lives in that TPM, and issues the AK certificate. A refusal names
its reason.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeHostIDs,
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, args []string) error {
			enr, raw, err := postAs[restapi.AKEnrollment](ctx, c, "/hvs/v2/aik-enrollments", restapi.AKEnrollmentRequest{HostID: args[0]})
			if err != nil {
				return fmt.Errorf("enroll the AK of host %s: %w", args[0], err)
			}
			t := &table{header: []string{"HOST ID", "AK NAME", "ENROLLED"}}
			t.add(enr.HostID, enr.AKName, timeCell(&enr.Created))
			return render(out, format, raw, t)
		}),
	}
	addOutputFlag(cmd, &format)
	return cmd
}
