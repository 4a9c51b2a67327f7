package tcctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/restapi"
)

func hostTable(hs ...restapi.Host) *table {
	t := &table{header: []string{"HOST ID", "NAME", "STATUS", "FLAVORGROUPS", "LAST CONNECTED", "STATE"}}
	for _, h := range hs {
		state := "enabled"
		if h.Disabled {
			state = "disabled"
		}
		t.add(h.ID, h.HostName, h.Status, listCell(h.FlavorGroupNames), timeCell(h.LastConnected), state)
	}
	return t
}

func (a *app) hostList() *cobra.Command {
	var name string
	cmd := &cobra.Command{Use: "list", Short: "List hosts", Args: cobra.NoArgs}
	cmd.Flags().StringVar(&name, "name", "", "only the host with this name")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		q := url.Values{}
		if name != "" {
			q.Set("nameEqualTo", name)
		}
		list, raw, err := getAs[restapi.HostList](ctx, c, "/hvs/v2/hosts", q)
		if err != nil {
			return nil, nil, fmt.Errorf("list hosts: %w", err)
		}
		return raw, hostTrustTable(list.Hosts, trustOf(ctx, c, time.Now())), nil
	})
}

func (a *app) hostGet() *cobra.Command {
	return getting(a, &cobra.Command{Use: "get <host-id>", Short: "Show a host", ValidArgsFunction: a.completeHostIDs},
		"host", "/hvs/v2/hosts", nil, hostTable)
}

func (a *app) hostRegister() *cobra.Command {
	var (
		in     restapi.HostRequest
		hostID string
		format string
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a host (its trust agent must be able to reach the bus)",
		Long: `Register a host by its host id (the node's SMBIOS system UUID unless the agent
was configured otherwise). The verifier enrolls its AK if the agent answers;
otherwise the host is registered with status AIK_NOT_PROVISIONED and the
reason is shown.`,
		Example: "  tcctl host register --name edge-1 --host-id 6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01 --flavorgroup automatic",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *Client, out io.Writer, _ []string) error {
			in.ConnectionString = "nats://" + hostID
			in.HostName = cmp.Or(in.HostName, hostID)
			h, raw, err := postAs[restapi.Host](ctx, c, "/hvs/v2/hosts", in)
			if err != nil {
				return fmt.Errorf("register host %s: %w", hostID, err)
			}
			if err := render(out, format, raw, hostTable(h)); err != nil {
				return err
			}
			if h.EnrollmentError != "" && format == formatTable {
				_, _ = fmt.Fprintf(out, "\nthe AK is not enrolled: %s\n", cli.Printable(h.EnrollmentError))
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&hostID, "host-id", "", "host id the trust agent uses on the bus (required)")
	f.StringVar(&in.HostName, "name", "", "host name (default: the host id)")
	f.StringVar(&in.Description, "description", "", "free text")
	f.StringSliceVar(&in.FlavorGroupNames, "flavorgroup", nil, "flavor group names (default: automatic)")
	_ = cmd.MarkFlagRequired("host-id")
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) hostEnroll() *cobra.Command {
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
	}
	return a.showing(cmd, func(ctx context.Context, c *Client, args []string) (any, *table, error) {
		enr, raw, err := postAs[restapi.AKEnrollment](ctx, c, "/hvs/v2/aik-enrollments", restapi.AKEnrollmentRequest{HostID: args[0]})
		if err != nil {
			return nil, nil, fmt.Errorf("enroll the AK of host %s: %w", args[0], err)
		}
		t := &table{header: []string{"HOST ID", "AK NAME", "ENROLLED"}}
		t.add(enr.HostID, enr.AKName, timeCell(&enr.Created))
		return raw, t, nil
	})
}

func (a *app) hostDelete() *cobra.Command {
	cmd := a.deleting("delete <host-id>...", "Remove hosts from the verifier", "host", "/hvs/v2/hosts", nil)
	cmd.ValidArgsFunction = a.completeHostIDs
	return cmd
}

// hostDisable and hostEnable switch hosts off and on again: a disabled host
// stays registered, but its agent's bus credentials are revoked and it gets
// no reports until it is enabled and given fresh credentials.
func (a *app) hostDisable() *cobra.Command {
	return a.hostSwitch("disable", "Disable hosts: revoke their agents' bus credentials and refuse their reports",
		`Disable hosts. Each stays registered with its flavors and reports, but its
agent's bus credentials are revoked at once (its connection closes), their
renewal and issue are refused, and no new report of it is made until it is
enabled again.`)
}

func (a *app) hostEnable() *cobra.Command {
	return a.hostSwitch("enable", "Enable disabled hosts again (their agents need fresh bus credentials)",
		`Enable disabled hosts. The old bus credentials of their agents stay revoked:
issue fresh ones (tcctl credentials agent <host-id> -f out.creds), install
them on the node and restart its trust agent.`)
}

// hostSwitch is POST /hvs/v2/hosts/{id}/<action> for each host id given; it
// shows the hosts as they are then.
func (a *app) hostSwitch(action, short, long string) *cobra.Command {
	cmd := &cobra.Command{
		Use: action + " <host-id>...", Short: short, Long: long, Args: cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeHostIDs,
	}
	return a.showing(cmd, func(ctx context.Context, c *Client, args []string) (any, *table, error) {
		var hosts []restapi.Host
		for _, id := range args {
			h, _, err := postAs[restapi.Host](ctx, c, "/hvs/v2/hosts/"+seg(id)+"/"+action, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("%s host %s: %w", action, id, err)
			}
			hosts = append(hosts, h)
		}
		return restapi.HostList{Hosts: hosts}, hostTable(hosts...), nil
	})
}
