package cms

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/api"
)

// Categories of refused requests. Errors returned by the CA are *api.Error
// values whose cause wraps one of these.
var (
	ErrUnknownCertType = errors.New("unknown certificate type")
	ErrUnknownCA       = errors.New("unknown issuing CA")
	ErrBadCSR          = errors.New("bad certificate signing request")
	ErrKeyNotAllowed   = errors.New("public key not allowed")
	ErrBadName         = errors.New("bad certificate name")
	ErrNotApproved     = errors.New("certificate not approved")
	// ErrReservedName: the CSR names one of the verifier's own TLS names.
	ErrReservedName = errors.New("name reserved for the verifier")
)

func badRequest(cause error, format string, args ...any) *api.Error {
	return &api.Error{Kind: api.KindBadRequest, Message: fmt.Sprintf(format, args...), Err: cause}
}

func allowedTypes() string { return strings.Join(certTypes, ", ") }

// checkCertType returns a bad-request error unless t is a known type.
func checkCertType(t string) error {
	for _, k := range certTypes {
		if t == k {
			return nil
		}
	}
	return badRequest(ErrUnknownCertType, "certificate type %q is unknown (allowed: %s)", t, allowedTypes())
}

// IssueTLSServer issues a TLS server certificate for pub, valid for the given
// DNS names and IP addresses (at least one), for ttl (LeafValidity when 0).
// The chain is leaf, intermediate, root.
func (ca *CA) IssueTLSServer(pub crypto.PublicKey, cn string, dnsNames []string, ips []net.IP, ttl time.Duration) ([]*x509.Certificate, error) {
	return ca.issue(TypeTLS, pub, cn, dnsNames, ips, ttl)
}

// IssueTLSClient issues a TLS client certificate for pub.
func (ca *CA) IssueTLSClient(pub crypto.PublicKey, cn string, ttl time.Duration) ([]*x509.Certificate, error) {
	return ca.issue(TypeTLSClient, pub, cn, nil, nil, ttl)
}

// IssueSigning issues a signing certificate for pub under the Signing CA
// (token signing; the same CA signs Signing CSRs). Its only extended key
// usage is OIDExtKeyUsageDocumentSigning. Reports, EARs and flavors signed
// with it do not verify: they need IssueVerifierSigning.
func (ca *CA) IssueSigning(pub crypto.PublicKey, cn string, ttl time.Duration) ([]*x509.Certificate, error) {
	return ca.issue(TypeSigning, pub, cn, nil, nil, ttl)
}

// IssueVerifierSigning issues the verifier's own report and flavor signing
// certificate for pub, named signerid.LeafCommonName, under the verifier
// signing CA. Only the verifier calls it, in process: no CSR, role or HTTP
// request reaches this CA. The chain is leaf, verifier signing CA, root.
func (ca *CA) IssueVerifierSigning(pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
	return ca.issueUnder(ca.verifier, TypeSigning, pub, signerid.LeafCommonName, nil, nil, ttl)
}

// ServerCertificate generates a P-384 key and issues a TLS server certificate
// for it. The chain holds leaf, intermediate and root, so that clients can
// bootstrap from a pinned root (FetchRootPinned).
func (ca *CA) ServerCertificate(cn string, dnsNames []string, ips []net.IP) (*tls.Certificate, error) {
	key, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	chain, err := ca.IssueTLSServer(key.Public(), cn, dnsNames, ips, 0)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, cert := range chain {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c, nil
}

// SignCSR signs csr as a certificate of the given type (TypeTLS,
// TypeTLSClient or TypeSigning), valid for LeafValidity. It takes the common
// name, DNS names and IP addresses of the CSR and nothing else; it does not
// authorize: the HTTP handler checks the caller's CertApprover roles.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, certType string) ([]*x509.Certificate, error) {
	if err := checkCertType(certType); err != nil {
		return nil, err
	}
	if csr == nil {
		return nil, badRequest(ErrBadCSR, "certificate signing request is missing")
	}
	if err := checkCSR(csr); err != nil {
		return nil, err
	}
	if err := ca.checkNotReserved(csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses); err != nil {
		return nil, err
	}
	return ca.issue(certType, csr.PublicKey, csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses, 0)
}

// checkNotReserved refuses a common name, DNS name or IP address that names
// one of the verifier's own TLS names, whatever the certificate type: a
// certificate for them would let its holder pose as the verifier to agents,
// the manager and tcctl, which trust the CMS root.
func (ca *CA) checkNotReserved(cn string, dnsNames []string, ips []net.IP) error {
	var hits []string
	for _, name := range append([]string{cn}, dnsNames...) {
		for _, r := range ca.cfg.ReservedNames {
			if namesOverlap(name, r) {
				hits = append(hits, strconv.Quote(name))
				break
			}
		}
	}
	if ip := net.ParseIP(cn); ip != nil {
		ips = append([]net.IP{ip}, ips...)
	}
	for _, ip := range ips {
		for _, r := range ca.cfg.ReservedIPs {
			if ip.Equal(r) {
				hits = append(hits, strconv.Quote(ip.String()))
				break
			}
		}
	}
	if len(hits) == 0 {
		return nil
	}
	return &api.Error{Kind: api.KindForbidden, Err: ErrReservedName,
		Message: "the certificate signing request names " + strings.Join(slices.Compact(hits), ", ") +
			": the verifier's own TLS names are never issued through CSR signing"}
}

// namesOverlap reports whether two host names (either may be a "*." wildcard)
// can name the same host, ignoring case and a trailing dot.
func namesOverlap(a, b string) bool {
	a = strings.TrimSuffix(strings.ToLower(a), ".")
	b = strings.TrimSuffix(strings.ToLower(b), ".")
	if a == b {
		return true
	}
	covers := func(wild, host string) bool {
		suffix, ok := strings.CutPrefix(wild, "*")
		if !ok || !strings.HasPrefix(suffix, ".") {
			return false
		}
		label, ok := strings.CutSuffix(host, suffix)
		return ok && label != "" && !strings.Contains(label, ".")
	}
	return covers(a, b) || covers(b, a)
}

// checkCSR checks the signature, the key and the names of a CSR.
func checkCSR(csr *x509.CertificateRequest) error {
	if err := csr.CheckSignature(); err != nil {
		return &api.Error{Kind: api.KindBadRequest, Message: "certificate signing request signature is invalid",
			Err: fmt.Errorf("%w: %w", ErrBadCSR, err)}
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return badRequest(ErrBadCSR, "certificate signing request may name only DNS names and IP addresses, not e-mail addresses or URIs")
	}
	return checkKey(csr.PublicKey)
}

// checkKey accepts ECDSA P-256 and P-384 keys and RSA keys of 2048 to 8192
// bits.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return badRequest(ErrKeyNotAllowed, "ECDSA key on curve %s is not allowed (allowed: P-256, P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return badRequest(ErrKeyNotAllowed, "RSA key of %d bits is not allowed (allowed: 2048 to 8192 bits)", bits)
		}
		return nil
	default:
		return badRequest(ErrKeyNotAllowed, "public key of type %T is not allowed (allowed: ECDSA P-256, P-384, RSA of 2048 bits or more)", pub)
	}
}

func (ca *CA) issue(kind string, pub crypto.PublicKey, cn string, dnsNames []string, ips []net.IP, ttl time.Duration) ([]*x509.Certificate, error) {
	issuer, ok := ca.inter[kind]
	if !ok {
		return nil, checkCertType(kind)
	}
	return ca.issueUnder(issuer, kind, pub, cn, dnsNames, ips, ttl)
}

// issueUnder issues a leaf of the given type under issuer.
func (ca *CA) issueUnder(issuer authority, kind string, pub crypto.PublicKey, cn string, dnsNames []string, ips []net.IP, ttl time.Duration) ([]*x509.Certificate, error) {
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	if err := checkCommonName(cn); err != nil {
		return nil, err
	}
	for _, d := range dnsNames {
		if err := checkDNSName(d); err != nil {
			return nil, err
		}
	}
	if kind == TypeTLS && len(dnsNames) == 0 && len(ips) == 0 {
		return nil, badRequest(ErrBadName, "a TLS server certificate needs at least one DNS name or IP address")
	}
	if ttl < 0 {
		return nil, badRequest(ErrBadName, "certificate lifetime must not be negative")
	}
	tmpl, err := NewTemplate(cn, ca.cfg.Now(), cmp.Or(ttl, ca.cfg.LeafValidity), issuer.cert)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage, tmpl.DNSNames, tmpl.IPAddresses = x509.KeyUsageDigitalSignature, dnsNames, ips
	switch kind {
	case TypeTLS:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if _, isRSA := pub.(*rsa.PublicKey); isRSA {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	case TypeTLSClient:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case TypeSigning:
		tmpl.KeyUsage |= x509.KeyUsageContentCommitment
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageDocumentSigning}
	}
	leaf, err := Certify(tmpl, issuer.cert, pub, issuer.key)
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", kind, err)
	}
	return []*x509.Certificate{leaf, issuer.cert, ca.root.cert}, nil
}

// checkCommonName accepts 1 to 64 printable UTF-8 characters.
func checkCommonName(cn string) error {
	if cn == "" {
		return badRequest(ErrBadName, "common name is empty")
	}
	if !utf8.ValidString(cn) || utf8.RuneCountInString(cn) > 64 {
		return badRequest(ErrBadName, "common name must be valid UTF-8 of at most 64 characters")
	}
	for _, r := range cn {
		if !unicode.IsPrint(r) {
			return badRequest(ErrBadName, "common name %q holds a non-printable character", cn)
		}
	}
	return nil
}

// checkDNSName accepts host names of letters, digits, '-' and '.', with an
// optional leading "*." wildcard label.
func checkDNSName(name string) error {
	bad := func() error { return badRequest(ErrBadName, "DNS name %q is not a valid host name", name) }
	if len(name) == 0 || len(name) > 253 {
		return bad()
	}
	labels := strings.Split(strings.TrimPrefix(name, "*."), ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad()
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isASCIIAlnum(c) && c != '-' {
				return bad()
			}
		}
	}
	return nil
}

// isASCIIAlnum reports whether c is an ASCII letter or digit.
func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ParseCSR parses one PEM "CERTIFICATE REQUEST" block (nothing else may
// follow it), checks its signature and its key.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, badRequest(ErrBadCSR, "request body is not PEM")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, badRequest(ErrBadCSR, "PEM block is %q, want \"CERTIFICATE REQUEST\"", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, badRequest(ErrBadCSR, "request body must hold exactly one PEM block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, &api.Error{Kind: api.KindBadRequest, Message: "certificate signing request is malformed",
			Err: fmt.Errorf("%w: %w", ErrBadCSR, err)}
	}
	if err := checkCSR(csr); err != nil {
		return nil, err
	}
	return csr, nil
}

// EncodeChainPEM encodes certificates as consecutive PEM CERTIFICATE blocks.
func EncodeChainPEM(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: c.Raw})...)
	}
	return out
}
