package tcctl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Formats of report get beyond table, json and yaml.
const (
	formatEAR = "ear"
	formatJWS = "jws"
)

func reportTable(rs ...report.Report) *table {
	t := &table{header: []string{"REPORT ID", "HOST ID", "HOST NAME", "TRUSTED", "HOST STATUS", "CREATED", "EXPIRES", "FAULTS"}}
	for _, r := range rs {
		var faults []string
		for _, f := range r.Faults {
			faults = append(faults, f.Name)
		}
		faults = append(faults, r.FailedParts()...)
		t.add(r.ID, r.HostID, r.HostName, boolCell(r.Trusted()), orDash(r.HostStatus),
			timeCell(&r.Created), timeCell(&r.Expiration), listCell(faults))
	}
	return t
}

func (a *app) reportCreate() *cobra.Command {
	var in restapi.ReportRequest
	cmd := &cobra.Command{Use: "create", Short: "Attest a host now and show its new report", Args: cobra.NoArgs}
	cmd.Flags().StringVar(&in.HostID, "host-id", "", "host id")
	cmd.Flags().StringVar(&in.HostName, "host-name", "", "host name")
	cmd.MarkFlagsMutuallyExclusive("host-id", "host-name")
	_ = cmd.RegisterFlagCompletionFunc("host-id", a.completeHostIDs)
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		if (in.HostID == "") == (in.HostName == "") {
			return nil, nil, errors.New("give exactly one of --host-id and --host-name")
		}
		r, raw, err := postAs[report.Report](ctx, c, "/hvs/v2/reports", in)
		if err != nil {
			return nil, nil, fmt.Errorf("create report of host %s%s: %w", in.HostID, in.HostName, err)
		}
		return raw, reportTable(r), nil
	})
}

func (a *app) reportList() *cobra.Command {
	var (
		hostID, hostName string
		latest           bool
		limit            int
	)
	cmd := &cobra.Command{Use: "list", Short: "List reports, newest first", Args: cobra.NoArgs}
	cmd.Flags().StringVar(&hostID, "host-id", "", "only reports of this host id")
	cmd.Flags().StringVar(&hostName, "host-name", "", "only reports of this host name")
	cmd.Flags().BoolVar(&latest, "latest", false, "only the latest report of each host")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many reports (verifier default 100, at most 1000)")
	return a.showing(cmd, func(ctx context.Context, c *Client, _ []string) (any, *table, error) {
		q := url.Values{}
		if hostID != "" {
			q.Set("hostId", hostID)
		}
		if hostName != "" {
			q.Set("hostName", hostName)
		}
		if latest {
			q.Set("latestPerHost", "true")
		}
		if limit > 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		list, raw, err := getAs[restapi.ReportList](ctx, c, "/hvs/v2/reports", q)
		if err != nil {
			return nil, nil, fmt.Errorf("list reports: %w", err)
		}
		rs, err := decodeReports(list)
		if err != nil {
			return nil, nil, fmt.Errorf("list reports: %w", err)
		}
		return raw, reportTable(rs...), nil
	})
}

func (a *app) reportGet() *cobra.Command {
	var (
		format string
		verify bool
	)
	cmd := &cobra.Command{
		Use:   "get <report-id | its first or last characters>",
		Short: "Show a report; --verify checks its signature offline against the CMS root",
		Long: `Show a report, given by its id or by the first or last characters of it (the
sandbox prints the last 8) when one of the latest 1000 reports alone matches.

With --verify the signed report (compact JWS) is fetched and
checked here, against the CMS root pinned at login: the x5c chain must be the
verifier's own signing identity (CN=HVS Signing under the Trusted Compute
Verifier Signing CA; no certificate the CMS signs from a CSR qualifies), the
signature must verify and the report must not have expired. What is shown
is then the signed content, not the server's copy.

-o ear prints the report as an EAT Attestation Result (a signed JWT), -o jws
the signed report itself; with --verify either is checked before it is
printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := resolveReportID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return a.getReport(cmd, c, id, format, verify)
		},
		ValidArgsFunction: a.completeReportIDs,
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "verify the report's signature against the CMS root")
	addOutputFlag(cmd, &format, formatEAR, formatJWS)
	return cmd
}

func (a *app) getReport(cmd *cobra.Command, c *Client, id, format string, verify bool) error {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	path := "/hvs/v2/reports/" + seg(id)
	switch {
	case format == formatEAR || format == formatJWS:
		token, err := getToken(ctx, c, path, format)
		if err != nil {
			return fmt.Errorf("get report %s: %w", id, err)
		}
		if verify {
			var err error
			if format == formatEAR {
				_, err = report.VerifyEAR(token, c.Roots(), a.env.Now())
			} else {
				_, err = report.Verify(token, c.Roots(), a.env.Now())
			}
			if err != nil {
				return fmt.Errorf("report %s: %w", id, err)
			}
			_, _ = fmt.Fprintln(cmd.ErrOrStderr(), signatureLine(token))
		}
		_, _ = fmt.Fprintln(out, token)
		return nil
	case verify:
		jws, err := getToken(ctx, c, path, formatJWS)
		if err != nil {
			return fmt.Errorf("get report %s: %w", id, err)
		}
		r, err := report.Verify(jws, c.Roots(), a.env.Now())
		if err != nil {
			return fmt.Errorf("report %s: %w", id, err)
		}
		if r.ID != id {
			return fmt.Errorf("report %s: the verifier served the signed report %s", id, r.ID)
		}
		if err := render(out, format, r, reportTable(*r)); err != nil {
			return err
		}
		line := signatureLine(jws)
		if format == formatTable {
			_, _ = fmt.Fprintln(out, line)
		} else {
			_, _ = fmt.Fprintln(cmd.ErrOrStderr(), line) // stdout stays machine-readable
		}
		return nil
	}
	r, raw, err := getAs[report.Report](ctx, c, path, nil)
	if err != nil {
		return fmt.Errorf("get report %s: %w", id, err)
	}
	return render(out, format, raw, reportTable(r))
}

// getToken fetches the report at path as a signed token: format is ear or
// jws.
func getToken(ctx context.Context, c *Client, path, format string) (string, error) {
	b, err := c.do(ctx, request{method: http.MethodGet, path: path, query: url.Values{"format": {format}}})
	return strings.TrimSpace(string(b)), err
}

// signatureLine names the signer of a JWS that has been verified.
func signatureLine(jws string) string {
	return "signature: valid (signed by " + signer(jws) + ")"
}

// signer is the subject of the leaf certificate in a JWS header's x5c;
// call it only on a verified token.
func signer(jws string) string {
	h64, _, _ := strings.Cut(jws, ".")
	var h signerid.JWSHeader
	if b, err := base64.RawURLEncoding.DecodeString(h64); err != nil || json.Unmarshal(b, &h) != nil {
		return "?"
	}
	chain, err := signerid.ParseX5C(h.X5C, len(h.X5C))
	if err != nil {
		return "?"
	}
	return chain[0].Subject.String()
}

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
