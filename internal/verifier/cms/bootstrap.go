package cms

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrPinMismatch is wrapped by errors of FetchRootPinned and LoadRootFile
// when no certificate matches the pin.
var ErrPinMismatch = errors.New("no self-signed CA certificate matches the pinned SHA-384")

// parsePin decodes a hex SHA-384 pin.
func parsePin(sha384hex string) ([]byte, error) {
	pin, err := hex.DecodeString(strings.TrimSpace(sha384hex))
	if err != nil || len(pin) != sha512.Size384 {
		return nil, fmt.Errorf("root pin must be %d hex digits of SHA-384", 2*sha512.Size384)
	}
	return pin, nil
}

// matchPin returns the self-signed CA certificate among certs whose SHA-384
// over DER equals pin.
func matchPin(certs []*x509.Certificate, pin []byte) (*x509.Certificate, error) {
	for _, c := range certs {
		sum := sha512.Sum384(c.Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			continue
		}
		if !c.IsCA || !c.BasicConstraintsValid || !bytes.Equal(c.RawSubject, c.RawIssuer) {
			return nil, errors.New("the certificate matching the pin is not a self-signed CA certificate")
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			return nil, fmt.Errorf("the certificate matching the pin is not self-signed: %w", err)
		}
		return c, nil
	}
	return nil, ErrPinMismatch
}

// FetchRootPinned bootstraps trust in the CMS root from its SHA-384 pin,
// without ever skipping verification: a first TLS 1.3 handshake with an empty
// trust store fails and yields the server's unverified chain, from which the
// self-signed CA matching the pin is taken; then, trusting only that root,
// the root is fetched over a fully verified connection and compared with
// the pinned one. baseURL is like "https://cms.example:8445".
func FetchRootPinned(ctx context.Context, baseURL string, sha384hex string) (*x509.Certificate, error) {
	pin, err := parsePin(sha384hex)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse CMS URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("CMS URL %q must be https://host[:port]", baseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}

	presented, err := presentedChain(ctx, addr, u.Hostname())
	if err != nil {
		return nil, err
	}
	root, err := matchPin(presented, pin)
	if err != nil {
		return nil, fmt.Errorf("CMS at %s: %w", u.Host, err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(root)
	got, err := getRoot(ctx, u, pool)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got.Raw, root.Raw) {
		return nil, fmt.Errorf("CMS at %s serves a root CA that differs from the pinned one", u.Host)
	}
	return root, nil
}

// presentedChain handshakes with an empty trust store and returns the
// certificates the server presented, taken from the verification error.
func presentedChain(ctx context.Context, addr, serverName string) ([]*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{
			MinVersion: tls.VersionTLS13,
			RootCAs:    x509.NewCertPool(), // empty: verification must fail
			ServerName: serverName,
		},
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		_ = conn.Close()
		return nil, fmt.Errorf("CMS at %s: handshake with an empty trust store unexpectedly succeeded", addr)
	}
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		return nil, fmt.Errorf("CMS at %s: TLS handshake: %w", addr, err)
	}
	if len(verr.UnverifiedCertificates) == 0 {
		return nil, fmt.Errorf("CMS at %s presented no certificates", addr)
	}
	return verr.UnverifiedCertificates, nil
}

// getRoot fetches the root CA over a connection verified against pool.
func getRoot(ctx context.Context, base *url.URL, pool *x509.CertPool) (*x509.Certificate, error) {
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool},
			ForceAttemptHTTP2: true,
		},
	}
	defer client.CloseIdleConnections()
	target := base.JoinPath(PathCACertificates)
	target.RawQuery = url.Values{"issuingCa": {IssuingRoot}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build root request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch CMS root over a verified connection: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // the body is read in full below; a close error changes nothing
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read CMS root: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch CMS root: status %d", resp.StatusCode)
	}
	certs, err := parseCertsPEM(body)
	if err != nil {
		return nil, fmt.Errorf("CMS root response: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("CMS root response holds %d certificates, want 1", len(certs))
	}
	return certs[0], nil
}

// parseCertsPEM parses PEM CERTIFICATE blocks; any other content is an error.
func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCert {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data that is not PEM")
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates")
	}
	return certs, nil
}

// LoadRootFile reads a PEM CA file. With a pin, the self-signed CA
// certificate matching it is returned; without one, the file must hold
// exactly one certificate, a self-signed CA.
func LoadRootFile(path string, sha384hex string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the root CA file (TC_CMS_ROOT_CA_FILE)
	if err != nil {
		return nil, fmt.Errorf("read root CA file: %w", err)
	}
	certs, err := parseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("root CA file %s: %w", path, err)
	}
	if sha384hex != "" {
		pin, err := parsePin(sha384hex)
		if err != nil {
			return nil, err
		}
		root, err := matchPin(certs, pin)
		if err != nil {
			return nil, fmt.Errorf("root CA file %s: %w", path, err)
		}
		return root, nil
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("root CA file %s holds %d certificates; without a pin it must hold exactly one", path, len(certs))
	}
	pin := sha512.Sum384(certs[0].Raw)
	root, err := matchPin(certs, pin[:])
	if err != nil {
		return nil, fmt.Errorf("root CA file %s: %w", path, err)
	}
	return root, nil
}
