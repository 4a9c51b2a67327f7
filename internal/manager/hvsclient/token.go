package hvsclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/restapi"
)

// maxUnix bounds the claim times read (year 9999).
const maxUnix = 253402300799

// RenewFraction is the part of a token's lifetime after which it is renewed.
const RenewFraction = 0.8

// TokenError is a failed AAS login. StatusCode is 0 when no response came.
type TokenError struct {
	StatusCode int
	Err        error
}

func (e *TokenError) Error() string { return "aas token: " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// Backoff after a refused login. AAS locks an account after 5 failed logins
// within 5 minutes: a wrong password must not turn every node's attestation
// into another failed login.
const (
	loginBackoffMin = time.Minute
	loginBackoffMax = 16 * time.Minute
)

// bearer returns a token that is not due for renewal, logging in when needed.
// Logins are serialised so that concurrent calls share one token. After AAS
// refused the credentials, no login is tried again before the backoff ends;
// the refusal is returned instead.
func (c *Client) bearer(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.token != "" && now.Before(c.renewAt) && now.Before(c.expireAt) {
		return c.token, nil
	}
	if c.loginErr != nil && now.Before(c.loginRetryAt) {
		return "", c.loginErr
	}
	tok, err := c.login(ctx)
	var te *TokenError
	if errors.As(err, &te) && refused(te.StatusCode) {
		c.loginBackoff = min(max(2*c.loginBackoff, loginBackoffMin), loginBackoffMax)
		c.loginRetryAt = now.Add(c.loginBackoff)
		c.loginErr = &TokenError{StatusCode: te.StatusCode,
			Err: fmt.Errorf("%w (no new login before %s)", te.Err, c.loginRetryAt.UTC().Format(time.RFC3339))}
		return "", c.loginErr
	}
	if err != nil {
		return "", err
	}
	c.loginErr, c.loginBackoff = nil, 0
	issued, exp, err := tokenTimes(tok)
	if err != nil {
		return "", &TokenError{Err: err}
	}
	if issued.IsZero() || issued.After(now) || issued.Before(exp.Add(-48*time.Hour)) {
		issued = now // clocks differ: count the lifetime from our receipt
	}
	if !exp.After(now) {
		return "", &TokenError{Err: fmt.Errorf("token expired at %s on receipt", exp.UTC().Format(time.RFC3339))}
	}
	life := exp.Sub(issued)
	c.token = tok
	c.expireAt = exp
	c.renewAt = issued.Add(time.Duration(float64(life) * RenewFraction))
	return tok, nil
}

// refused tells whether AAS refused the credentials themselves (or locked
// the account), as opposed to failing.
func refused(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusLocked, http.StatusTooManyRequests:
		return true
	}
	return false
}

// dropToken forgets tok (after a 401) unless another call renewed it already.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

func (c *Client) login(ctx context.Context) (string, error) {
	pw, err := os.ReadFile(c.creds.PasswordFile)
	if err != nil {
		// The path is configuration, not a secret; the error never holds the contents.
		return "", &TokenError{Err: fmt.Errorf("read password file: %w", err)}
	}
	password := strings.TrimSpace(string(pw))
	if password == "" {
		return "", &TokenError{Err: fmt.Errorf("password file %s is empty", c.creds.PasswordFile)}
	}
	body, err := json.Marshal(restapi.TokenRequest{Username: c.creds.Username, Password: password}) //nolint:gosec // G117: the login request carries the password by design, to the pinned verifier over TLS
	if err != nil {
		return "", &TokenError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.aasURL+PathToken, bytes.NewReader(body))
	if err != nil {
		return "", &TokenError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/jwt")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", &TokenError{Err: fmt.Errorf("POST %s: %w", PathToken, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	if err := checkStatus(resp, http.MethodPost, PathToken, []int{http.StatusOK, http.StatusCreated}); err != nil {
		return "", &TokenError{StatusCode: resp.StatusCode, Err: err}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes+1))
	if err != nil {
		return "", &TokenError{StatusCode: resp.StatusCode, Err: fmt.Errorf("read token: %w", err)}
	}
	if len(b) > maxTokenBytes {
		return "", &TokenError{StatusCode: resp.StatusCode, Err: errors.New("token too large")}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", &TokenError{StatusCode: resp.StatusCode, Err: errors.New("empty token")}
	}
	return tok, nil
}

// tokenTimes reads the iat and exp claims of a JWT without checking its
// signature: they only say when to fetch the next token. The verifier checks
// the token; this client never trusts its claims for anything else.
func tokenTimes(tok string) (issued, exp time.Time, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, time.Time{}, errors.New("token is not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		Exp *float64 `json:"exp"`
		Iat *float64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("token claims: %w", err)
	}
	if claims.Exp == nil {
		return time.Time{}, time.Time{}, errors.New("token has no exp claim")
	}
	if e := *claims.Exp; e <= 0 || e > maxUnix {
		return time.Time{}, time.Time{}, fmt.Errorf("token exp %v is not a time", e)
	}
	exp = time.Unix(int64(*claims.Exp), 0)
	if i := claims.Iat; i != nil && *i > 0 && *i <= maxUnix {
		issued = time.Unix(int64(*i), 0)
	}
	return issued, exp, nil
}
