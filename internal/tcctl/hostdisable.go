package tcctl

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
)

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
