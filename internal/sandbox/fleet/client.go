package fleet

import (
	"context"
	"crypto/x509"
	"net/http"

	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Client speaks the verifier's REST API as an operator or the manager does:
// the fleet simulator's client (TLS 1.3 pinned to the CMS root, a login
// token renewed when refused) with the sandbox's answers decoded.
type Client struct {
	*fleetsim.API
}

// APIError is a refused request.
type APIError = fleetsim.StatusError

// NewClient returns a client of the verifier at base (https://host:port)
// that keeps up to conns connections open.
func NewClient(base string, roots *x509.CertPool, user, password string, conns int) *Client {
	return &Client{API: fleetsim.NewAPI(base, roots, user, password, conns)}
}

// Do sends a JSON request with the admin token and decodes a 2xx answer into
// out (when non-nil); any other status is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	if out == nil {
		_, err := c.Call(ctx, method, path, in)
		return err
	}
	return c.JSON(ctx, method, path, in, out)
}

// Report attests the host now (POST /hvs/v2/reports).
func (c *Client) Report(ctx context.Context, hostID string) (*report.Report, error) {
	var r report.Report
	if err := c.Do(ctx, http.MethodPost, "/hvs/v2/reports", map[string]string{"host_id": hostID}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
