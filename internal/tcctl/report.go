package tcctl

import (
	"context"
	"crypto/x509"
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
	"trustedcompute.io/tc/internal/verifier/report"
)

// Formats of report get beyond table, json and yaml.
const (
	formatEAR = "ear"
	formatJWS = "jws"
)

func (a *app) reportCmd() *cobra.Command {
	return group("report", "Attest hosts and read their signed trust reports", a.reportCreate(), a.reportList(), a.reportGet())
}

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
		b, err := c.do(ctx, request{method: http.MethodGet, path: path, query: url.Values{"format": {format}}})
		if err != nil {
			return fmt.Errorf("get report %s: %w", id, err)
		}
		token := strings.TrimSpace(string(b))
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
		b, err := c.do(ctx, request{method: http.MethodGet, path: path, query: url.Values{"format": {formatJWS}}})
		if err != nil {
			return fmt.Errorf("get report %s: %w", id, err)
		}
		jws := strings.TrimSpace(string(b))
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

// signatureLine names the signer of a JWS that has been verified.
func signatureLine(jws string) string {
	return "signature: valid (signed by " + signer(jws) + ")"
}

// signer is the subject of the leaf certificate in a JWS header's x5c;
// call it only on a verified token.
func signer(jws string) string {
	h64, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return "?"
	}
	var h struct {
		X5C []string `json:"x5c"`
	}
	if json.Unmarshal(b, &h) != nil || len(h.X5C) == 0 {
		return "?"
	}
	der, err := base64.StdEncoding.DecodeString(h.X5C[0])
	if err != nil {
		return "?"
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "?"
	}
	return cert.Subject.String()
}
