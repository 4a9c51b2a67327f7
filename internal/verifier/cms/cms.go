// Package cms is the verifier's certificate management service: a root CA
// with intermediates for TLS servers, TLS clients and signing, kept in the
// verifier's store, that issues certificates in process and signs CSRs over
// HTTP for callers whose CMS:CertApprover role allows exactly that CSR.
//
// A fifth intermediate, the verifier signing CA (signerid.CACommonName),
// issues only the verifier's own report and flavor signing certificate
// (IssueVerifierSigning); CSR signing never reaches it, and never issues a
// certificate for the verifier's own TLS names (Config.ReservedNames).
package cms

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/signerid"
)

// Issuing CAs and certificate types. IssuingRoot names the root CA; the
// Type* values name both an intermediate CA and the kind of certificate it
// issues.
const (
	IssuingRoot   = "root"
	TypeTLS       = "TLS"
	TypeTLSClient = "TLS-Client"
	TypeSigning   = "Signing"
)

// RootCommonName is the subject common name of the root CA.
const RootCommonName = "Trusted Compute Root CA"

// issuingVerifierSigning names the verifier signing CA among the CAs. It is
// not a certificate type: no CSR and no role context can name it.
const issuingVerifierSigning = "Verifier-Signing"

// OIDExtKeyUsageDocumentSigning is id-kp-documentSigning (RFC 9336). Signing
// certificates (flavors, trust reports, token signing) carry it as their only
// extended key usage, so that they are not usable as TLS certificates.
var OIDExtKeyUsageDocumentSigning = signerid.OIDExtKeyUsageDocumentSigning

// certTypes lists the certificate types in the order shown to callers.
var certTypes = []string{TypeTLS, TypeTLSClient, TypeSigning}

// Log field keys.
const (
	keyCA         = "ca"
	keySecret     = "secret"
	keyRootSHA384 = "root_sha384"
	keyNotAfter   = "not_after"
	keyPath       = "path"
)

// Store keeps named secrets. A missing secret yields an error wrapping
// Config.NotFound; creating an existing one yields an error wrapping
// Config.Conflict.
type Store interface {
	GetSecret(ctx context.Context, name string) ([]byte, error)
	CreateSecret(ctx context.Context, name string, value []byte) error
}

// Config configures the CA. NotFound and Conflict are required; the rest
// has defaults.
type Config struct {
	// NotFound and Conflict are the store's sentinel errors.
	NotFound error
	Conflict error
	// ExportDir, when set, receives <ca>.crt and <ca>.key (PKCS#8 PEM,
	// mode 0600) for every CA at start. Off by default.
	ExportDir string
	// RootValidity is the validity of a new root CA (default 10 years).
	RootValidity time.Duration
	// IntermediateValidity is the validity of a new intermediate CA (default
	// 10 years, never past the root).
	IntermediateValidity time.Duration
	// LeafValidity is the validity of certificates issued with a ttl of 0 and
	// of certificates signed from CSRs (default 365 days).
	LeafValidity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ReservedNames and ReservedIPs are the verifier's own TLS names: CSR
	// signing refuses any CSR whose common name, DNS names or IP addresses
	// name one of them (a wildcard covering one included), so that nobody
	// can obtain a certificate to pose as the verifier. The verifier issues
	// its own TLS certificates in process.
	ReservedNames []string
	ReservedIPs   []net.IP
}

const (
	defaultRootValidity         = 10 * 365 * 24 * time.Hour
	defaultIntermediateValidity = 10 * 365 * 24 * time.Hour
	defaultLeafValidity         = 365 * 24 * time.Hour
	// backdate is how far NotBefore lies before now, for clock skew.
	backdate = 5 * time.Minute
)

func (c *Config) validate() error {
	var errs []error
	if c.NotFound == nil {
		errs = append(errs, errors.New("config: NotFound sentinel of the store is required"))
	}
	if c.Conflict == nil {
		errs = append(errs, errors.New("config: Conflict sentinel of the store is required"))
	}
	errs = append(errs, config.DefaultDurations("config",
		config.Duration("RootValidity", &c.RootValidity, defaultRootValidity),
		config.Duration("IntermediateValidity", &c.IntermediateValidity, defaultIntermediateValidity),
		config.Duration("LeafValidity", &c.LeafValidity, defaultLeafValidity)))
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// authority is one CA: its certificate and key.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// CA is the certificate authority hierarchy. It is immutable after New and
// safe for concurrent use.
type CA struct {
	cfg   Config
	log   *slog.Logger
	root  authority
	inter map[string]authority
	// verifier is the verifier signing CA; it is not in inter, so that
	// nothing that takes a certificate type can issue under it.
	verifier authority
	rootPool *x509.CertPool
	rootSum  string
}

// secret names in the store, one per CA: a PEM PKCS#8 key and a certificate.
var secretName = map[string]string{
	IssuingRoot:   "cms/ca/root",
	TypeTLS:       "cms/ca/tls",
	TypeTLSClient: "cms/ca/tls-client",
	TypeSigning:   "cms/ca/signing",

	issuingVerifierSigning: "cms/ca/verifier-signing",
}

var intermediateSubject = map[string]string{
	TypeTLS:       "Trusted Compute TLS CA",
	TypeTLSClient: "Trusted Compute TLS Client CA",
	TypeSigning:   "Trusted Compute Signing CA",

	issuingVerifierSigning: signerid.CACommonName,
}

// New loads the CA hierarchy from the store, creating whatever is missing.
// Two replicas starting together on an empty store end up with the same
// hierarchy: the loser of CreateSecret reads the winner's CA.
func New(ctx context.Context, cfg Config, store Store, logger *slog.Logger) (*CA, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("cms: store is nil")
	}
	if logger == nil {
		return nil, errors.New("cms: logger is nil")
	}
	ca := &CA{cfg: cfg, log: logger, inter: make(map[string]authority, len(certTypes))}

	root, err := ca.obtain(ctx, store, IssuingRoot, ca.newRoot, checkRoot)
	if err != nil {
		return nil, err
	}
	ca.root = root
	for _, t := range certTypes {
		a, err := ca.obtain(ctx, store, t,
			func() (authority, error) { return ca.newIntermediate(t) },
			func(a authority) error { return checkIntermediate(a, root.cert) })
		if err != nil {
			return nil, err
		}
		ca.inter[t] = a
	}
	// The verifier signing CA is created on the first start of a version
	// that knows it, under the existing root.
	ca.verifier, err = ca.obtain(ctx, store, issuingVerifierSigning,
		func() (authority, error) { return ca.newIntermediate(issuingVerifierSigning) },
		func(a authority) error {
			if err := checkIntermediate(a, root.cert); err != nil {
				return err
			}
			if !signerid.IsVerifierCA(a.cert) {
				return errors.New("certificate lacks the marks of the verifier signing CA")
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	ca.rootPool = x509.NewCertPool()
	ca.rootPool.AddCert(root.cert)
	ca.rootSum = Fingerprint(root.cert)
	logger.LogAttrs(ctx, slog.LevelInfo, "CA ready", slog.String(keyRootSHA384, ca.rootSum),
		slog.Time(keyNotAfter, root.cert.NotAfter))

	if cfg.ExportDir != "" {
		if err := ca.export(ctx, cfg.ExportDir); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// obtain reads the CA of the given kind from the store, or creates and
// stores it; on a conflict with a concurrent creator it reads theirs.
func (ca *CA) obtain(ctx context.Context, store Store, kind string, create func() (authority, error), check func(authority) error) (authority, error) {
	name := secretName[kind]
	b, err := store.GetSecret(ctx, name)
	switch {
	case err == nil:
		return ca.decodeChecked(kind, b, check)
	case !errors.Is(err, ca.cfg.NotFound):
		return authority{}, fmt.Errorf("read %s CA from secret %q: %w", kind, name, err)
	}
	a, err := create()
	if err != nil {
		return authority{}, fmt.Errorf("create %s CA: %w", kind, err)
	}
	enc, err := encodeAuthority(a)
	if err != nil {
		return authority{}, fmt.Errorf("encode %s CA: %w", kind, err)
	}
	err = store.CreateSecret(ctx, name, enc)
	switch {
	case err == nil:
		ca.log.LogAttrs(ctx, slog.LevelInfo, "created CA", slog.String(keyCA, kind),
			slog.String(keySecret, name), slog.Time(keyNotAfter, a.cert.NotAfter))
		return a, nil
	case !errors.Is(err, ca.cfg.Conflict):
		return authority{}, fmt.Errorf("store %s CA in secret %q: %w", kind, name, err)
	}
	// Another replica created it first: use theirs.
	b, err = store.GetSecret(ctx, name)
	if err != nil {
		return authority{}, fmt.Errorf("read %s CA from secret %q after a conflict: %w", kind, name, err)
	}
	return ca.decodeChecked(kind, b, check)
}

func (ca *CA) decodeChecked(kind string, b []byte, check func(authority) error) (authority, error) {
	a, err := decodeAuthority(b)
	if err != nil {
		return authority{}, fmt.Errorf("decode stored %s CA: %w", kind, err)
	}
	if err := check(a); err != nil {
		return authority{}, fmt.Errorf("stored %s CA: %w", kind, err)
	}
	if now := ca.cfg.Now(); now.After(a.cert.NotAfter) {
		return authority{}, fmt.Errorf("stored %s CA expired at %s", kind, a.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return a, nil
}

func (ca *CA) newRoot() (authority, error) {
	now := ca.cfg.Now()
	return newAuthority("root", now, &x509.Certificate{
		Subject:    pkix.Name{CommonName: RootCommonName, Organization: []string{signerid.Organization}},
		NotAfter:   now.Add(ca.cfg.RootValidity),
		MaxPathLen: 1,
	}, nil)
}

func (ca *CA) newIntermediate(kind string) (authority, error) {
	now := ca.cfg.Now()
	notAfter := now.Add(ca.cfg.IntermediateValidity)
	if notAfter.After(ca.root.cert.NotAfter) {
		notAfter = ca.root.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:        pkix.Name{CommonName: intermediateSubject[kind], Organization: []string{signerid.Organization}},
		NotAfter:       notAfter,
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	// The intermediate's extended key usage bounds what its leaves may do.
	switch kind {
	case TypeTLS:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case TypeTLSClient:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case TypeSigning, issuingVerifierSigning:
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageDocumentSigning}
	}
	return newAuthority("intermediate", now, tmpl, &ca.root)
}

// newAuthority makes a P-384 key and a CA certificate of it from tmpl (its
// subject, end, path length and extended key usage), signed by parent, or by
// the new key itself when parent is nil.
func newAuthority(what string, now time.Time, tmpl *x509.Certificate, parent *authority) (authority, error) {
	key, err := NewKey()
	if err != nil {
		return authority{}, err
	}
	if tmpl.SerialNumber, err = NewSerial(); err != nil {
		return authority{}, err
	}
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = true
	issuer := authority{cert: tmpl, key: key}
	if parent != nil {
		issuer = *parent
	}
	cert, err := Certify(tmpl, issuer.cert, key.Public(), issuer.key)
	if err != nil {
		return authority{}, fmt.Errorf("%s certificate: %w", what, err)
	}
	return authority{cert: cert, key: key}, nil
}

func checkRoot(a authority) error {
	if err := checkCA(a); err != nil {
		return err
	}
	if err := a.cert.CheckSignatureFrom(a.cert); err != nil {
		return fmt.Errorf("root certificate is not self-signed: %w", err)
	}
	return nil
}

func checkIntermediate(a authority, root *x509.Certificate) error {
	if err := checkCA(a); err != nil {
		return err
	}
	if err := a.cert.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("intermediate certificate is not signed by the root: %w", err)
	}
	return nil
}

func checkCA(a authority) error {
	if !a.cert.IsCA || !a.cert.BasicConstraintsValid {
		return errors.New("certificate is not a CA certificate")
	}
	pub, ok := a.cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(a.key.Public()) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// encodeAuthority encodes a CA as PEM: the PKCS#8 key, then the certificate.
func encodeAuthority(a authority) ([]byte, error) { return EncodeKeyPair(a.key, a.cert) }

func decodeAuthority(b []byte) (authority, error) {
	key, cert, err := DecodeKeyPair(b)
	if err != nil {
		return authority{}, err
	}
	return authority{cert: cert, key: key}, nil
}

// export writes every CA certificate and key to dir; keys get mode 0600.
func (ca *CA) export(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("export CA: %w", err)
	}
	all := map[string]authority{IssuingRoot: ca.root, issuingVerifierSigning: ca.verifier}
	for k, a := range ca.inter {
		all[k] = a
	}
	for kind, a := range all {
		k, err := x509.MarshalPKCS8PrivateKey(a.key)
		if err != nil {
			return fmt.Errorf("export %s CA: marshal key: %w", kind, err)
		}
		base := filepath.Join(dir, fileBase(kind))
		if err := writeFile0600(base+".key", pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: k})); err != nil {
			return fmt.Errorf("export %s CA key: %w", kind, err)
		}
		if err := writeFile0600(base+".crt", pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: a.cert.Raw})); err != nil {
			return fmt.Errorf("export %s CA certificate: %w", kind, err)
		}
		ca.log.LogAttrs(ctx, slog.LevelInfo, "exported CA", slog.String(keyCA, kind), slog.String(keyPath, base))
	}
	return nil
}

func fileBase(kind string) string {
	switch kind {
	case TypeTLS:
		return "tls-ca"
	case TypeTLSClient:
		return "tls-client-ca"
	case TypeSigning:
		return "signing-ca"
	case issuingVerifierSigning:
		return "verifier-signing-ca"
	default:
		return "root-ca"
	}
}

// writeFile0600 writes b to path atomically: a new file of mode 0600 in the
// same directory, renamed over path.
func writeFile0600(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Root returns the root CA certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root.cert }

// RootPool returns a new pool holding only the root CA certificate.
func (ca *CA) RootPool() *x509.CertPool { return ca.rootPool.Clone() }

// RootSHA384 returns the lower-case hex SHA-384 over the root's DER, the pin
// that clients bootstrap from.
func (ca *CA) RootSHA384() string { return ca.rootSum }

// Fingerprint returns the lower-case hex SHA-384 over cert's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha512.Sum384(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// CACertificate returns the certificate of the given issuing CA: IssuingRoot
// or one of the Type* values.
func (ca *CA) CACertificate(kind string) (*x509.Certificate, error) {
	if kind == IssuingRoot {
		return ca.root.cert, nil
	}
	a, ok := ca.inter[kind]
	if !ok {
		return nil, badRequest(ErrUnknownCA, "issuing CA %q is unknown (allowed: %s, %s)", kind, IssuingRoot, allowedTypes())
	}
	return a.cert, nil
}
