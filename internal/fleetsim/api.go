package fleetsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/restapi"
)

// API is the verifier's REST API as the fleet's operator uses it: TLS 1.3
// pinned to the CMS root, an admin token fetched on first use and again
// when refused.
type API struct {
	base     string
	client   *http.Client
	user     string
	password string

	mu    sync.Mutex
	token string
}

// NewAPI returns a client of the verifier at base (https://host:port).
// conns bounds the connections it keeps open (at least 2).
func NewAPI(base string, roots *x509.CertPool, user, password string, conns int) *API {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots},
		MaxIdleConnsPerHost: max(conns, 2),
		MaxConnsPerHost:     max(conns, 2),
	}
	return &API{base: strings.TrimSuffix(base, "/"), user: user, password: password,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: tr}}
}

// Close drops idle connections.
func (a *API) Close() { a.client.CloseIdleConnections() }

// StatusError is an answer outside 2xx.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// Call sends in as JSON (nil: no body) with the admin token and returns
// the 2xx answer's body; other answers are a *StatusError.
func (a *API) Call(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	for retried := false; ; retried = true {
		token, err := a.bearer(ctx)
		if err != nil {
			return nil, err
		}
		status, b, err := restapi.Send(ctx, a.client, a.base, method, path, token, body)
		if err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized && !retried {
			a.mu.Lock()
			a.token = ""
			a.mu.Unlock()
			continue
		}
		if status/100 != 2 {
			return nil, &StatusError{method, path, status, string(b)}
		}
		return b, nil
	}
}

// JSON is Call with the answer decoded into out.
func (a *API) JSON(ctx context.Context, method, path string, in, out any) error {
	b, err := a.Call(ctx, method, path, in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (a *API) bearer(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" {
		return a.token, nil
	}
	body, err := json.Marshal(restapi.TokenRequest{Username: a.user, Password: a.password}) //nolint:gosec // G117: the login carries the password by design, over TLS to the pinned verifier
	if err != nil {
		return "", err
	}
	status, b, err := restapi.Send(ctx, a.client, a.base, http.MethodPost, "/aas/v1/token", "", body)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("login: %w", &StatusError{http.MethodPost, "/aas/v1/token", status, string(b)})
	}
	a.token = string(bytes.TrimSpace(b))
	return a.token, nil
}

// Credentials asks AAS for bus credentials (restapi.CredentialsAgent with
// a host id, of the two-prefix grammar the fleet's agents speak, or
// restapi.CredentialsManager).
func (a *API) Credentials(ctx context.Context, typ, hostID string) ([]byte, error) {
	req := restapi.CredentialsRequest{Type: typ}
	if hostID != "" {
		req.Parameters = map[string]string{restapi.ParamHostID: hostID, restapi.ParamBusGrammar: "2"}
	}
	return a.Call(ctx, http.MethodPost, "/aas/v1/credentials", req)
}

// Report is the part of a trust report the fleet reads.
type Report struct {
	ID         string `json:"id"`
	HostID     string `json:"host_id"`
	HostStatus string `json:"host_status"`
	// Created is when the verifier started the report: the time its
	// host's last_success then records.
	Created    time.Time `json:"created"`
	ResetCount uint32    `json:"reset_count"`
	Rebooted   bool      `json:"rebooted"`
	Trust      struct {
		Overall bool `json:"OVERALL"`
	} `json:"trust_information"`
	Faults []struct {
		Name string `json:"fault_name"`
	} `json:"faults"`
}

// Trusted is the report's verdict: every part trusted, no evidence fault.
func (r *Report) Trusted() bool { return r.Trust.Overall && len(r.Faults) == 0 }

// CreateReport attests a host now (POST /hvs/v2/reports).
func (a *API) CreateReport(ctx context.Context, hostID string) (*Report, error) {
	var r Report
	if err := a.JSON(ctx, http.MethodPost, "/hvs/v2/reports", restapi.ReportRequest{HostID: hostID}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
