package restapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// maxAnswer bounds the body of an answer Send reads.
const maxAnswer = 16 << 20

// Send makes one request to the verifier at base: a JSON body when body is
// not nil, a bearer token when token is not empty. It returns the status
// and at most 16 MiB of the answer's body.
func Send(ctx context.Context, c *http.Client, base, method, path, token string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return resp.StatusCode, b, err
}
