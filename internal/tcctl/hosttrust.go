package tcctl

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Trust cells of the host list.
const (
	trustTrusted   = "trusted"
	trustUntrusted = "untrusted"
	trustExpired   = "expired" // the latest report is past its expiry: nothing is vouched for
	trustNone      = "-"       // no report yet
	trustUnknown   = "?"       // the reports could not be read (e.g. no reports:search permission)
	trustOverdue   = "overdue" // the last successful attestation is too old: nothing is vouched for
)

// trustOf reads the latest report of every host and says, per host id,
// what it vouches for now. Without the reports it returns nil: the list is
// still shown, with trustUnknown.
func trustOf(ctx context.Context, c *Client, now time.Time) map[string]string {
	list, _, err := getAs[restapi.ReportList](ctx, c, "/hvs/v2/reports", url.Values{"latestPerHost": {"true"}})
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(list.Reports))
	for _, b := range list.Reports {
		var r report.Report
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		out[r.HostID] = trustCell(r, now)
	}
	return out
}

// trustCell is what a host's latest report vouches for at now: an expired
// report never reads as trusted.
func trustCell(r report.Report, now time.Time) string {
	switch {
	case !r.Expiration.IsZero() && !now.Before(r.Expiration):
		return trustExpired
	case r.Trusted():
		return trustTrusted
	default:
		return trustUntrusted
	}
}

// hostTrustTable is the host table with each host's last successful
// attestation and the trust of its latest report. An overdue host (issue
// 14: its last success is older than 1.5 × the verifier's interval) never
// reads as trusted, whatever its latest report says: it reads overdue,
// unless that report is untrusted.
func hostTrustTable(hs []restapi.Host, trust map[string]string) *table {
	t := hostTable(hs...)
	t.header = append(t.header, "LAST SUCCESS", "TRUST")
	for i, h := range hs {
		cell := trustUnknown
		if trust != nil {
			cell = trustNone
			if v, ok := trust[h.ID]; ok {
				cell = v
			}
		}
		if h.Overdue && cell != trustUntrusted {
			cell = trustOverdue
		}
		t.rows[i] = append(t.rows[i], timeCell(h.LastSuccess), cell)
	}
	return t
}
