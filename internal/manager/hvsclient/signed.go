package hvsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"trustedcompute.io/tc/internal/verifier/report"
)

// ErrReportUntrusted: the verifier's signed form of a report does not verify
// as signed by the verifier's own signing identity, or it says something
// else than the report served as JSON.
var ErrReportUntrusted = errors.New("trust report is not signed by the verifier")

// signed returns the signed form of r: GET /hvs/v2/reports/{id}?format=jws,
// verified under the client's roots by report.Verify, which believes only
// the verifier's own signing identity (package signerid), never another
// certificate of the CMS. What the manager acts on is the signed content,
// not the JSON copy. A report that has expired is read as of its creation;
// the manager judges its age itself.
func (c *Client) signed(ctx context.Context, r *report.Report) (*report.Report, error) {
	var jws []byte
	path := PathReports + "/" + url.PathEscape(r.ID)
	if err := c.do(ctx, http.MethodGet, path, url.Values{"format": {"jws"}}, nil, &jws, maxReportBytes, http.StatusOK); err != nil {
		return nil, fmt.Errorf("signed report %s: %w", r.ID, err)
	}
	at := c.now()
	if !r.Expiration.After(at) {
		at = r.Created
	}
	sr, err := c.reports.Verify(strings.TrimSpace(string(jws)), at)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w: %w", r.ID, ErrReportUntrusted, err)
	}
	// The JSON copy was checked (checkReport); the signed one must be the
	// same report.
	if sr.ID != r.ID || sr.HostID != r.HostID || !sr.Created.Equal(r.Created) || !sr.Expiration.Equal(r.Expiration) {
		return nil, fmt.Errorf("report %s: %w: the signed report is %s of host %s, created %s", r.ID, ErrReportUntrusted, sr.ID, sr.HostID, sr.Created)
	}
	return sr, nil
}

// verify verifies the signed form of a report the verifier has just
// made for the host: signed by the verifier's identity, valid now, of
// that host.
func (c *Client) verify(jws, hostID string) (*report.Report, error) {
	r, err := c.reports.Verify(jws, c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReportUntrusted, err)
	}
	if err := checkReport(r, hostID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReportUntrusted, err)
	}
	return r, nil
}
