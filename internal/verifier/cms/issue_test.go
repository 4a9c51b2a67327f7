package cms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// verifyAs verifies a leaf→intermediate→root chain for one key usage under
// the CA's root only.
func verifyAs(ca *CA, chain []*x509.Certificate, usage x509.ExtKeyUsage, dnsName string) error {
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: ca.RootPool(), Intermediates: pool(chain[1:]...),
		KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: dnsName,
	})
	return err
}

func TestIssuedChainsVerifyOnlyForTheirOwnUsage(t *testing.T) {
	ca := newTestCA(t)
	pub := newP384(t).Public()
	server := mustChain(t)(ca.IssueTLSServer(pub, "hvs", []string{"hvs.example"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour))
	client := mustChain(t)(ca.IssueTLSClient(pub, "node-1", time.Hour))
	signing := mustChain(t)(ca.IssueSigning(pub, "flavor-signer", time.Hour))
	for name, chain := range map[string][]*x509.Certificate{"server": server, "client": client, "signing": signing} {
		if len(chain) != 3 || !chain[2].Equal(ca.Root()) {
			t.Fatalf("%s chain has %d certificates ending in %q, want leaf, intermediate, root", name, len(chain), chain[len(chain)-1].Subject)
		}
	}
	tests := []struct {
		name   string
		chain  []*x509.Certificate
		usage  x509.ExtKeyUsage
		dns    string
		wantOK bool
	}{
		{"a server certificate verifies for server auth on its name", server, x509.ExtKeyUsageServerAuth, "hvs.example", true},
		{"a server certificate does not verify for another name", server, x509.ExtKeyUsageServerAuth, "evil.example", false},
		{"a server certificate does not verify for client auth", server, x509.ExtKeyUsageClientAuth, "", false},
		{"a client certificate verifies for client auth", client, x509.ExtKeyUsageClientAuth, "", true},
		{"a client certificate does not verify for server auth", client, x509.ExtKeyUsageServerAuth, "", false},
		{"a signing certificate verifies for any usage", signing, x509.ExtKeyUsageAny, "", true},
		{"a signing certificate does not verify for server auth", signing, x509.ExtKeyUsageServerAuth, "", false},
		{"a signing certificate does not verify for client auth", signing, x509.ExtKeyUsageClientAuth, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyAs(ca, tt.chain, tt.usage, tt.dns)
			if (err == nil) != tt.wantOK {
				t.Fatalf("Verify error = %v, want ok = %v", err, tt.wantOK)
			}
		})
	}
	if !slices.ContainsFunc(signing[0].UnknownExtKeyUsage, OIDExtKeyUsageDocumentSigning.Equal) {
		t.Fatal("a signing certificate lacks the document signing usage")
	}
	if signing[0].KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Fatal("a signing certificate lacks the digital signature key usage")
	}
}

func TestIssuedLifetimesDefaultAndNeverOutliveTheIssuer(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	cfg.IntermediateValidity = 48 * time.Hour
	cfg.LeafValidity = 24 * time.Hour
	ca, err := New(t.Context(), cfg, memsecrets.New(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	chain := mustChain(t)(ca.IssueTLSClient(newP384(t).Public(), "a", 0))
	if got, want := chain[0].NotAfter, now.Add(24*time.Hour); !got.Equal(want) {
		t.Errorf("a ttl of 0 gave NotAfter %s, want %s", got, want)
	}
	chain, err = ca.IssueTLSClient(newP384(t).Public(), "a", 1000*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := chain[0].NotAfter, chain[1].NotAfter; !got.Equal(want) {
		t.Errorf("a long ttl gave NotAfter %s, want the intermediate's %s", got, want)
	}
}

func TestServerCertificateCarriesTheWholeChain(t *testing.T) {
	ca := newTestCA(t)
	c, err := ca.ServerCertificate("cms", []string{"cms.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 3 {
		t.Fatalf("chain has %d certificates, want leaf, intermediate and root", len(c.Certificate))
	}
	root, err := x509.ParseCertificate(c.Certificate[2])
	if err != nil || !root.Equal(ca.Root()) {
		t.Fatalf("the last certificate is not the root (err %v)", err)
	}
	if _, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("private key is %T, want ECDSA", c.PrivateKey)
	}
	if err := verifyAs(ca, []*x509.Certificate{c.Leaf, mustParse(t, c.Certificate[1])}, x509.ExtKeyUsageServerAuth, "cms.example"); err != nil {
		t.Fatal(err)
	}
}

func TestSignCSRRefusesWhatItMustNotSign(t *testing.T) {
	ca := newTestCA(t)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := newP384(t)
	tests := []struct {
		name    string
		key     crypto.Signer
		dns     []string
		ips     []net.IP
		typ     string
		wantErr error
	}{
		{"an unknown certificate type is a bad request", good, []string{"a.example"}, nil, "Root", ErrUnknownCertType},
		{"an ECDSA P-224 key is refused", p224, []string{"a.example"}, nil, TypeTLS, ErrKeyNotAllowed},
		{"an RSA key of 1024 bits is refused", rsa1024, []string{"a.example"}, nil, TypeTLS, ErrKeyNotAllowed},
		{"an Ed25519 key is refused", edKey, nil, nil, TypeSigning, ErrKeyNotAllowed},
		{"a TLS server CSR without names is refused", good, nil, nil, TypeTLS, ErrBadName},
		{"a malformed DNS name is refused", good, []string{"a b.example"}, nil, TypeTLS, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(csrPEM(t, tt.key, "cn", tt.dns, tt.ips))
			if err != nil {
				// key checks also run while parsing; that is the same refusal
				assertBadRequest(t, err, tt.wantErr)
				return
			}
			_, err = ca.SignCSR(csr, tt.typ)
			assertBadRequest(t, err, tt.wantErr)
		})
	}
}

func TestSignCSRCopiesOnlyTheNamesOfTheCSR(t *testing.T) {
	ca := newTestCA(t)
	csr, err := ParseCSR(csrPEM(t, newP384(t), "agent", []string{"node1.example"}, []net.IP{net.ParseIP("10.0.0.7")}))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.SignCSR(csr, TypeTLS)
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != "agent" || !slices.Equal(leaf.DNSNames, []string{"node1.example"}) ||
		len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) || leaf.IsCA {
		t.Fatalf("leaf is %q %v %v CA=%v, want agent [node1.example] [10.0.0.7] not a CA",
			leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses, leaf.IsCA)
	}
	if err := verifyAs(ca, chain, x509.ExtKeyUsageServerAuth, "10.0.0.7"); err != nil {
		t.Fatal(err)
	}
}

func TestSignCSRAcceptsRSA2048(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	csr, err := ParseCSR(csrPEM(t, key, "legacy", []string{"legacy.example"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.SignCSR(csr, TypeTLS)
	if err != nil {
		t.Fatal(err)
	}
	if chain[0].KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Fatal("an RSA TLS server certificate lacks key encipherment")
	}
}

func assertBadRequest(t *testing.T, err, want error) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.KindBadRequest || !errors.Is(err, want) {
		t.Fatalf("error = %v, want a bad request wrapping %v", err, want)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustChain returns the chain an Issue method returned, failing t on its error.
func mustChain(t testing.TB) func([]*x509.Certificate, error) []*x509.Certificate {
	return func(chain []*x509.Certificate, err error) []*x509.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return chain
	}
}
