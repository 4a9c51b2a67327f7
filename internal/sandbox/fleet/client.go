package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Client speaks the verifier's REST API as an operator or the manager does:
// TLS 1.3 pinned to the CMS root, a login token renewed when refused.
type Client struct {
	base     string
	http     *http.Client
	user     string
	password string

	mu    sync.Mutex
	token string
}

// NewClient returns a client of the verifier at base (https://host:port).
func NewClient(base string, roots *x509.CertPool, user, password string) *Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}}
	return &Client{base: base, user: user, password: password,
		http: &http.Client{Timeout: 90 * time.Second, Transport: tr}}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// APIError is a refused request.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

func (c *Client) login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": c.user, "password": c.password})
	status, b, err := c.send(ctx, http.MethodPost, "/aas/v1/token", "", body)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", &APIError{http.MethodPost, "/aas/v1/token", status, string(b)}
	}
	return string(bytes.TrimSpace(b)), nil
}

// Do sends a JSON request with the admin token and decodes a 2xx answer into
// out (when non-nil); any other status is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		tok := c.token
		c.mu.Unlock()
		if tok == "" {
			t, err := c.login(ctx)
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			c.mu.Lock()
			c.token, tok = t, t
			c.mu.Unlock()
		}
		status, b, err := c.send(ctx, method, path, tok, body)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
			continue
		}
		if status < 200 || status > 299 {
			return &APIError{method, path, status, string(b)}
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
			}
		}
		return nil
	}
}

func (c *Client) send(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	return restapi.Send(ctx, c.http, c.base, method, path, token, body)
}

// Report attests the host now (POST /hvs/v2/reports).
func (c *Client) Report(ctx context.Context, hostID string) (*report.Report, error) {
	var r report.Report
	if err := c.Do(ctx, http.MethodPost, "/hvs/v2/reports", map[string]string{"host_id": hostID}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
