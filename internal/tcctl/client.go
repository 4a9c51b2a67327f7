package tcctl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/restapi"
)

// maxResponse bounds what the client reads of an answer (signed report
// collections with IMA logs are the largest).
const maxResponse = 64 << 20

// requestTimeout bounds one request; a report waits for the agent's quote.
const requestTimeout = 2 * time.Minute

// Client talks to the verifier over TLS 1.3, trusting the CMS root only.
type Client struct {
	root  *x509.Certificate
	base  *url.URL
	http  *http.Client
	token string
}

// NewClient returns a client for the verifier at baseURL whose certificate
// must chain to root. token may be empty for public routes.
func NewClient(baseURL string, root *x509.Certificate, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("verifier url: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("verifier url %q must be https://host[:port]", baseURL)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &Client{
		root: root,
		base: u,
		http: &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool},
				ForceAttemptHTTP2:   true,
				TLSHandshakeTimeout: 15 * time.Second,
			},
		},
		token: token,
	}, nil
}

// Roots returns a pool holding the CMS root the client trusts.
func (c *Client) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.root)
	return pool
}

// APIError is a non-2xx answer of the verifier.
type APIError struct {
	Method string
	// Path is the request path without its query.
	Path string
	// Status is the HTTP status code.
	Status int
	// Message is the server's "error" field, or the start of the body when
	// the answer is not the JSON error shape.
	Message string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	msg += " (" + e.Method + " " + e.Path + ")"
	if e.Status == http.StatusUnauthorized && e.Path != "/aas/v1/token" {
		msg += "; run tcctl login"
	}
	return msg
}

// request is one call: query may be nil; in, when not nil, is sent as JSON
// (a json.RawMessage is sent as is).
type request struct {
	method, path string
	query        url.Values
	in           any
	accept       string
}

// do sends req and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, req request) ([]byte, error) {
	// req.path is escaped already (see seg).
	u, err := url.Parse(strings.TrimRight(c.base.String(), "/") + req.path)
	if err != nil {
		return nil, fmt.Errorf("request path %q: %w", req.path, err)
	}
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	var body io.Reader
	if req.in != nil {
		b, err := json.Marshal(req.in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if req.in != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.accept != "" {
		hr.Header.Set("Accept", req.accept)
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, u.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", req.method, u.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &APIError{Method: req.method, Path: u.Path, Status: resp.StatusCode, Message: errorMessage(b)}
	}
	return b, nil
}

// doJSON is do that decodes a JSON answer into out (when not nil).
func (c *Client) doJSON(ctx context.Context, req request, out any) error {
	b, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", req.method, req.path, err)
	}
	return nil
}

// errorMessage is the "error" of the verifier's error body, else the start
// of the body.
func errorMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.doJSON(ctx, request{method: http.MethodGet, path: path, query: query}, out)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	return c.doJSON(ctx, request{method: http.MethodPost, path: path, in: in}, out)
}

func (c *Client) put(ctx context.Context, path string, in, out any) error {
	return c.doJSON(ctx, request{method: http.MethodPut, path: path, in: in}, out)
}

func (c *Client) delete(ctx context.Context, path string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: path}, nil)
}

// login exchanges a password for a token.
func (c *Client) login(ctx context.Context, username, password string) (string, error) {
	b, err := c.do(ctx, request{method: http.MethodPost, path: "/aas/v1/token",
		in: restapi.TokenRequest{Username: username, Password: password}})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// getAs and postAs send one call and decode its JSON answer into a T; they
// return the answer as sent too, which render prints for -o json and -o yaml
// (fields T does not know are kept).
func getAs[T any](ctx context.Context, c *Client, path string, query url.Values) (T, json.RawMessage, error) {
	return callAs[T](ctx, c, request{method: http.MethodGet, path: path, query: query})
}

func postAs[T any](ctx context.Context, c *Client, path string, in any) (T, json.RawMessage, error) {
	return callAs[T](ctx, c, request{method: http.MethodPost, path: path, in: in})
}

func callAs[T any](ctx context.Context, c *Client, req request) (T, json.RawMessage, error) {
	var (
		v   T
		raw json.RawMessage
	)
	if err := c.doJSON(ctx, req, &raw); err != nil {
		return v, nil, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, nil, fmt.Errorf("%s %s: decode answer: %w", req.method, req.path, err)
	}
	return v, raw, nil
}
