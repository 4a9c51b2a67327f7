// Package hvsclient is the attestation manager's REST client of the
// verifier: host registration, re-baselining of the golden flavors and trust
// reports under /hvs/v2, authenticated by a JWT from AAS (/aas/v1/token).
//
// Every call goes over TLS 1.3 verified against the CMS root only. A report
// is believed only in its signed form (?format=jws), signed by the
// verifier's own signing identity, never by another certificate of the CMS
// (signed.go). Every HTTP status code is checked: a response other than the
// documented success is an *HTTPError carrying the method, path, status and
// the server's message. A network failure is wrapped as it came. The AAS
// token is fetched on first use and renewed once 80% of its lifetime has
// passed (from its exp and iat claims, read without trusting them for
// anything else); a 401 from HVS drops the token and repeats the call once
// with a new one.
//
// The password is read from its file at every login, so a rotated password
// is used at once; it is never logged and never part of an error.
package hvsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Paths of the verifier API this client uses.
const (
	PathToken   = "/aas/v1/token" //nolint:gosec // G101: a URL path, not a credential
	PathHosts   = "/hvs/v2/hosts"
	PathFlavors = "/hvs/v2/flavors"
	PathReports = "/hvs/v2/reports"
)

// FlavorGroupAutomatic is the flavor group hosts are registered in and that
// re-baselining writes to.
const FlavorGroupAutomatic = "automatic"

// Limits on response bodies.
const (
	maxTokenBytes  = 64 << 10
	maxReportBytes = 32 << 20 // an IMA part can list many files
	maxSmallBytes  = 1 << 20
	maxErrorBytes  = 4 << 10
)

// DefaultTimeout bounds one HTTP exchange (a report waits for a quote).
const DefaultTimeout = 2 * time.Minute

// Errors callers tell apart with errors.Is.
var (
	// ErrHostNotFound: the verifier has no host of that name.
	ErrHostNotFound = errors.New("host not found in verifier")
	// ErrNoReport: the verifier has no report of the host yet.
	ErrNoReport = errors.New("no trust report for host")
	// ErrHostBound: the host id is registered under another name, or the
	// name under another host id.
	ErrHostBound = errors.New("host id and node name are bound otherwise in the verifier")
)

// HTTPError is a response whose status code was not the expected one.
type HTTPError struct {
	Method string
	Path   string
	// StatusCode is the HTTP status received.
	StatusCode int
	// Message is the server's error message (the "error" field of its JSON
	// error body) or the start of the body.
	Message string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Credentials are the manager's AAS user. The password is read from
// PasswordFile at every login and never kept longer than the request.
type Credentials struct {
	Username     string
	PasswordFile string
}

// Option configures a Client.
type Option func(*Client)

// WithAASURL sets the AAS base URL when AAS is not served at the HVS base URL.
func WithAASURL(u string) Option { return func(c *Client) { c.aasURL = strings.TrimRight(u, "/") } }

// WithClock sets the clock used for token renewal (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithTimeout bounds each HTTP exchange (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.http.Timeout = d } }

// WithTransport replaces the HTTP transport (tests). The TLS settings of New
// are then the transport's business.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.http.Transport = rt } }

// Client talks to one verifier. It is safe for concurrent use.
type Client struct {
	baseURL string
	aasURL  string
	creds   Credentials
	http    *http.Client
	now     func() time.Time
	// reports verifies the signed form of every report (signed.go).
	reports *report.Verifier

	mu           sync.Mutex
	token        string
	renewAt      time.Time
	expireAt     time.Time
	loginErr     error // last refused login, returned until loginRetryAt
	loginRetryAt time.Time
	loginBackoff time.Duration
}

// New returns a client of the verifier at baseURL ("https://verifier:8443")
// trusting only roots.
func New(baseURL string, roots *x509.CertPool, creds Credentials, opts ...Option) (*Client, error) {
	var errs []error
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("verifier url: %w", err))
	case u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("verifier url %q: want https://host[:port]", baseURL))
	}
	if roots == nil {
		errs = append(errs, errors.New("verifier root CAs are required"))
	}
	if creds.Username == "" {
		errs = append(errs, errors.New("aas username is required"))
	}
	if creds.PasswordFile == "" {
		errs = append(errs, errors.New("aas password file is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	base := strings.TrimRight(baseURL, "/")
	c := &Client{
		baseURL: base,
		aasURL:  base,
		creds:   creds,
		now:     time.Now,
		reports: report.NewVerifier(roots),
		http: &http.Client{
			Timeout: DefaultTimeout,
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13},
				TLSHandshakeTimeout: 10 * time.Second,
				MaxIdleConnsPerHost: 8,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   true,
			},
			// Never follow a redirect: it would carry the token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// RegisterHost registers a host in the automatic flavor group, reaching its
// agent over NATS as hostID. A host already registered (409 Conflict) is
// returned only when it is registered under this very name and host id: the
// verifier's host record binds a host id to the first node name registered
// with it, so a second node claiming the id, or a node claiming another id,
// is ErrHostBound, never the existing host. The host's
// EnrollmentError says why HVS could not enroll its AK; attestation fails
// until that is fixed.
func (c *Client) RegisterHost(ctx context.Context, name, hostID string) (restapi.Host, error) {
	if name == "" || hostID == "" {
		return restapi.Host{}, errors.New("register host: name and host id are required")
	}
	body := restapi.HostRequest{
		HostName:         name,
		ConnectionString: "nats://" + hostID,
		Description:      "registered by the attestation manager",
		FlavorGroupNames: []string{FlavorGroupAutomatic},
	}
	var h restapi.Host
	err := c.do(ctx, http.MethodPost, PathHosts, nil, body, &h, maxSmallBytes, http.StatusCreated, http.StatusOK)
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusConflict {
		return c.registered(ctx, name, hostID)
	}
	if err != nil {
		return restapi.Host{}, fmt.Errorf("register host %s: %w", name, err)
	}
	if h.ID == "" {
		return restapi.Host{}, fmt.Errorf("register host %s: response has no host id", name)
	}
	return h, nil
}

// registered returns the host a 409 Conflict is about when it is this
// name's and this id's, and ErrHostBound otherwise.
func (c *Client) registered(ctx context.Context, name, hostID string) (restapi.Host, error) {
	h, err := c.HostByID(ctx, hostID)
	switch {
	case err == nil && h.HostName == name:
		return h, nil
	case err == nil:
		return restapi.Host{}, fmt.Errorf("register host %s: %w: host id %s is registered as %q", name, ErrHostBound, hostID, h.HostName)
	case !errors.Is(err, ErrHostNotFound):
		return restapi.Host{}, fmt.Errorf("register host %s: %w", name, err)
	}
	h, err = c.HostByName(ctx, name)
	if err != nil {
		return restapi.Host{}, fmt.Errorf("register host %s: conflict, but: %w", name, err)
	}
	return restapi.Host{}, fmt.Errorf("register host %s: %w: the name is registered for host id %s, not %s", name, ErrHostBound, h.ID, hostID)
}

// HostByName finds a registered host by its exact name (ErrHostNotFound).
func (c *Client) HostByName(ctx context.Context, name string) (restapi.Host, error) {
	var out restapi.HostList
	q := url.Values{"nameEqualTo": {name}}
	if err := c.do(ctx, http.MethodGet, PathHosts, q, nil, &out, maxSmallBytes, http.StatusOK); err != nil {
		return restapi.Host{}, fmt.Errorf("find host %s: %w", name, err)
	}
	for _, h := range out.Hosts {
		if h.HostName == name && h.ID != "" {
			return h, nil
		}
	}
	return restapi.Host{}, fmt.Errorf("find host %s: %w", name, ErrHostNotFound)
}

// HostByID returns a registered host (ErrHostNotFound).
func (c *Client) HostByID(ctx context.Context, hostID string) (restapi.Host, error) {
	var h restapi.Host
	err := c.do(ctx, http.MethodGet, PathHosts+"/"+url.PathEscape(hostID), nil, nil, &h, maxSmallBytes, http.StatusOK)
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		return restapi.Host{}, fmt.Errorf("get host %s: %w", hostID, ErrHostNotFound)
	}
	if err != nil {
		return restapi.Host{}, fmt.Errorf("get host %s: %w", hostID, err)
	}
	return h, nil
}

// Rebaseline replaces the host's automatic flavors of the given parts
// (PLATFORM, OS, IMA) with flavors made from its current measurements.
func (c *Client) Rebaseline(ctx context.Context, hostID string, parts []string) error {
	if hostID == "" || len(parts) == 0 {
		return errors.New("rebaseline: host id and parts are required")
	}
	var body restapi.RebaselineRequest
	for _, p := range parts {
		body.PartialFlavorTypes = append(body.PartialFlavorTypes, flavor.Part(p))
	}
	p := PathHosts + "/" + url.PathEscape(hostID) + "/rebaseline"
	if err := c.do(ctx, http.MethodPost, p, nil, body, nil, 0, http.StatusOK, http.StatusCreated, http.StatusNoContent); err != nil {
		return fmt.Errorf("rebaseline host %s: %w", hostID, err)
	}
	return nil
}

// HasAutomaticFlavors reports whether HVS holds flavors made from this host
// (bound to it by host id, as rebaselining makes them).
func (c *Client) HasAutomaticFlavors(ctx context.Context, hostID string) (bool, error) {
	var out struct {
		SignedFlavors []json.RawMessage `json:"signed_flavors"`
	}
	q := url.Values{"hostId": {hostID}}
	if err := c.do(ctx, http.MethodGet, PathFlavors, q, nil, &out, maxReportBytes, http.StatusOK); err != nil {
		return false, fmt.Errorf("flavors of host %s: %w", hostID, err)
	}
	return len(out.SignedFlavors) > 0, nil
}

// CreateReport has the verifier attest the host now (fresh quote,
// synchronous appraisal) and returns the new report, as signed. It asks
// for the signed form in the answer (?format=jws); a verifier that
// answers in JSON (before it served that) is asked for the signed form
// again.
func (c *Client) CreateReport(ctx context.Context, hostID string) (*report.Report, error) {
	var raw []byte
	body := restapi.ReportRequest{HostID: hostID}
	q := url.Values{"format": {"jws"}}
	if err := c.do(ctx, http.MethodPost, PathReports, q, body, &raw, maxReportBytes, http.StatusCreated, http.StatusOK); err != nil {
		return nil, fmt.Errorf("create report for host %s: %w", hostID, err)
	}
	if raw = bytes.TrimSpace(raw); len(raw) > 0 && raw[0] != '{' {
		r, err := c.verify(string(raw), hostID)
		if err != nil {
			return nil, fmt.Errorf("create report for host %s: %w", hostID, err)
		}
		return r, nil
	}
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("create report for host %s: decode response: %w", hostID, err)
	}
	if err := checkReport(&r, hostID); err != nil {
		return nil, fmt.Errorf("create report for host %s: %w", hostID, err)
	}
	return c.signed(ctx, &r)
}

// LatestReport returns the newest report of the host (ErrNoReport).
func (c *Client) LatestReport(ctx context.Context, hostID string) (*report.Report, error) {
	var out restapi.ReportList
	q := url.Values{"hostId": {hostID}, "latestPerHost": {"true"}}
	if err := c.do(ctx, http.MethodGet, PathReports, q, nil, &out, maxReportBytes, http.StatusOK); err != nil {
		return nil, fmt.Errorf("latest report of host %s: %w", hostID, err)
	}
	var latest *report.Report
	for _, raw := range out.Reports {
		r := new(report.Report)
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("latest report of host %s: %w", hostID, err)
		}
		if r.HostID == hostID && (latest == nil || r.Created.After(latest.Created)) {
			latest = r
		}
	}
	if latest == nil {
		return nil, fmt.Errorf("latest report of host %s: %w", hostID, ErrNoReport)
	}
	if err := checkReport(latest, hostID); err != nil {
		return nil, fmt.Errorf("latest report of host %s: %w", hostID, err)
	}
	return c.signed(ctx, latest)
}

func checkReport(r *report.Report, hostID string) error {
	if r.ID == "" {
		return errors.New("report has no id")
	}
	if r.HostID != hostID {
		return fmt.Errorf("report %s is of host %q", r.ID, r.HostID)
	}
	return nil
}

// do sends one authenticated JSON request and decodes the response into out
// (unless out is nil) when its status is one of ok. A 401 drops the token
// and tries once more.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, limit int64, ok ...int) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.bearer(ctx)
		if err != nil {
			return err
		}
		err = c.exchange(ctx, method, path, q, body, tok, out, limit, ok)
		var he *HTTPError
		if attempt == 0 && errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized {
			c.dropToken(tok)
			continue
		}
		return err
	}
}

func (c *Client) exchange(ctx context.Context, method, path string, q url.Values, body []byte, tok string, out any, limit int64, ok []int) error {
	u := c.baseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := checkStatus(resp, method, path, ok); err != nil {
		return err
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSmallBytes))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%s %s: response exceeds %d bytes", method, path, limit)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// checkStatus turns an unexpected status into an *HTTPError with the
// server's message.
func checkStatus(resp *http.Response, method, path string, ok []int) error {
	for _, s := range ok {
		if resp.StatusCode == s {
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	msg := strings.TrimSpace(string(b))
	var eb struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	return &HTTPError{Method: method, Path: path, StatusCode: resp.StatusCode, Message: truncate(msg, 512)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
