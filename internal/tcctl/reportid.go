package tcctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Short report ids. Report ids are UUIDv7: their first characters are a
// millisecond timestamp that the reports of a minute share, so the short id
// the sandbox prints (tcctl sandbox --scenario) is the end of the id, its
// last 8 characters. tcctl takes either end back.

// fullIDLen is the length of a full report id.
const fullIDLen = 36

// shortIDSearch is how many of the latest reports a short id is looked up
// in (the verifier's most).
const shortIDSearch = 1000

// recentReports lists the latest reports, newest first.
func recentReports(ctx context.Context, c *Client) ([]report.Report, error) {
	list, _, err := getAs[restapi.ReportList](ctx, c, "/hvs/v2/reports", url.Values{"limit": {strconv.Itoa(shortIDSearch)}})
	if err != nil {
		return nil, err
	}
	return decodeReports(list)
}

// decodeReports decodes the reports of a list.
func decodeReports(list restapi.ReportList) ([]report.Report, error) {
	rs := make([]report.Report, 0, len(list.Reports))
	for _, b := range list.Reports {
		var r report.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// resolveReportID returns the full id of a report given by its full id or
// by the start or the end of it, as long as one report alone matches among
// the latest 1000. An ambiguous short id is refused with the candidates.
func resolveReportID(ctx context.Context, c *Client, id string) (string, error) {
	if len(id) >= fullIDLen || id == "" {
		return id, nil
	}
	rs, err := recentReports(ctx, c)
	if err != nil {
		return "", fmt.Errorf("resolve report id %s: %w", id, err)
	}
	short := strings.ToLower(id)
	var matches []string
	for _, r := range rs {
		if strings.HasPrefix(r.ID, short) || strings.HasSuffix(r.ID, short) {
			matches = append(matches, r.ID)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", fmt.Errorf("no report among the latest %d has an id that starts or ends with %q", shortIDSearch, id)
	}
	const shown = 5
	n, more := len(matches), ""
	if n > shown {
		more = fmt.Sprintf(" and %d more", n-shown)
		matches = matches[:shown]
	}
	return "", fmt.Errorf("report id %q is ambiguous: %d reports match (%s%s); give more characters",
		id, n, strings.Join(matches, ", "), more)
}

// completeReportIDs completes report ids (the latest reports, with their
// host and trust) from the verifier when logged in.
func (a *app) completeReportIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	rs, err := recentReports(cmd.Context(), c)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		trust := "untrusted"
		if r.Trusted() {
			trust = "trusted"
		}
		out = append(out, r.ID+"\t"+r.HostID+" "+trust+" "+r.Created.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}
