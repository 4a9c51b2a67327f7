package flavor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
)

func TestSignThenVerify(t *testing.T) {
	ca := newPKI(t, "cms")
	other := newPKI(t, "other")
	f := goldenFlavors(t, defaultHost(), "s")[0]

	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	withKey := func(key crypto.Signer) func(*testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
		return func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
			cert, k := ca.issue(t, func(*x509.Certificate) {}, key)
			sf, err := Sign(f, k, ca.chain(cert))
			if err != nil {
				t.Fatal(err)
			}
			return sf, ca.roots, now
		}
	}
	withCert := func(edit func(*x509.Certificate)) func(*testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
		return func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
			cert, k := ca.issue(t, edit, nil)
			sf, err := Sign(f, k, ca.chain(cert))
			if err != nil {
				t.Fatal(err)
			}
			return sf, ca.roots, now
		}
	}
	signed := func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) { return ca.sign(t, f), ca.roots, now }

	tests := []struct {
		name    string
		make    func(*testing.T) (SignedFlavor, *x509.CertPool, time.Time)
		wantErr error
	}{
		{name: "an ES384 signature by the CMS signing certificate verifies", make: signed},
		{name: "an ES256 signature verifies", make: withKey(p256)},
		{name: "a PS384 signature by an RSA key verifies", make: withKey(rsaKey)},
		{name: "an EdDSA signature verifies", make: withKey(edKey)},
		{name: "a certificate with the code signing usage is not the verifier's signing certificate", wantErr: ErrCertificateUntrusted,
			make: withCert(func(c *x509.Certificate) {
				c.UnknownExtKeyUsage = nil
				c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
			})},
		{name: "a certificate named other than the verifier's is untrusted", wantErr: ErrCertificateUntrusted,
			make: withCert(func(c *x509.Certificate) { c.Subject.CommonName = "hvs flavor signing" })},
		{name: "a signing certificate issued directly by the root is untrusted", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				cert, k := ca.issueBy(t, ca.root, ca.rootKey, func(*x509.Certificate) {}, nil)
				sf, err := Sign(f, k, []*x509.Certificate{cert})
				if err != nil {
					t.Fatal(err)
				}
				return sf, ca.roots, now
			}},
		{name: "a signing certificate under another intermediate of the root is untrusted", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				inter, interKey := ca.ca(t, "Trusted Compute Signing CA", ca.root, ca.rootKey)
				cert, k := ca.issueBy(t, inter, interKey, func(*x509.Certificate) {}, nil)
				sf, err := Sign(f, k, []*x509.Certificate{cert, inter})
				if err != nil {
					t.Fatal(err)
				}
				return sf, ca.roots, now
			}},
		{name: "a flavor signed under another CA is untrusted", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) { return other.sign(t, f), ca.roots, now }},
		{name: "an expired signing certificate is untrusted", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				return ca.sign(t, f), ca.roots, now.Add(13 * time.Hour)
			}},
		{name: "no roots are untrusted rather than the system roots", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) { return ca.sign(t, f), nil, now }},
		{name: "a zero time is refused rather than the clock read", wantErr: ErrCertificateUntrusted,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				return ca.sign(t, f), ca.roots, time.Time{}
			}},
		{name: "a TLS server certificate of the same CA is not a signing certificate", wantErr: ErrCertificateUntrusted,
			make: withCert(func(c *x509.Certificate) {
				c.UnknownExtKeyUsage = nil
				c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			})},
		{name: "a certificate without digitalSignature is not a signing certificate", wantErr: ErrCertificateUntrusted,
			make: withCert(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })},
		{name: "a flavor changed after signing does not verify", wantErr: ErrSignatureInvalid,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				sf := ca.sign(t, f)
				sf.Flavor.Meta.Description.Label = "other"
				return sf, ca.roots, now
			}},
		{name: "a signature with an attached payload is malformed", wantErr: ErrSignatureMalformed,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				sf := ca.sign(t, f)
				h, s, _ := strings.Cut(sf.Signature, "..")
				sf.Signature = h + ".e30." + s
				return sf, ca.roots, now
			}},
		{name: "a header naming another algorithm than the key's is malformed", wantErr: ErrSignatureMalformed,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				sf := ca.sign(t, f)
				h, s, _ := strings.Cut(sf.Signature, "..")
				raw, _ := base64.RawURLEncoding.DecodeString(h)
				var hdr signerid.JWSHeader
				if err := json.Unmarshal(raw, &hdr); err != nil {
					t.Fatal(err)
				}
				hdr.Alg = "ES256"
				raw, _ = json.Marshal(hdr)
				sf.Signature = base64.RawURLEncoding.EncodeToString(raw) + ".." + s
				return sf, ca.roots, now
			}},
		{name: "an empty signature is malformed", wantErr: ErrSignatureMalformed,
			make: func(t *testing.T) (SignedFlavor, *x509.CertPool, time.Time) {
				return SignedFlavor{Flavor: f}, ca.roots, now
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf, roots, at := tt.make(t)
			err := Verify(sf, roots, at)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Verify() = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignRefusesAKeyThatIsNotTheCertificates(t *testing.T) {
	ca := newPKI(t, "cms")
	other := newPKI(t, "other")
	f := goldenFlavors(t, defaultHost(), "s")[0]
	if _, err := Sign(f, other.leafKey, ca.chain(ca.leaf)); err == nil {
		t.Error("Sign accepted a key that does not belong to the leaf certificate")
	}
	f.Meta.ID = ""
	if _, err := Sign(f, ca.leafKey, ca.chain(ca.leaf)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Sign(invalid flavor) = %v, want ErrInvalid", err)
	}
}

func TestASignedFlavorSurvivesTheWire(t *testing.T) {
	ca := newPKI(t, "cms")
	b, err := json.Marshal(SignedFlavorCollection{SignedFlavors: ca.signAll(t, goldenFlavors(t, defaultHost(), "w"))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSignedFlavorCollection(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, sf := range got.SignedFlavors {
		if err := Verify(sf, ca.roots, now); err != nil {
			t.Errorf("flavor %s after the wire: %v", sf.Flavor.Meta.ID, err)
		}
	}
}
