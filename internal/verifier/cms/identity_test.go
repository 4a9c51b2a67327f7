package cms

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// Only IssueVerifierSigning, which the verifier calls in process, yields a
// chain of the verifier's signing identity; nothing CSR signing issues, of
// any type or name, does.
func TestOnlyTheVerifierSigningCAIssuesTheVerifierIdentity(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	key := newP384(t)
	own, err := ca.IssueVerifierSigning(key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := signerid.Verify(own, ca.RootPool(), now); err != nil {
		t.Fatalf("the verifier's own chain is not its identity: %v", err)
	}
	if len(own) != 3 || own[0].Subject.CommonName != signerid.LeafCommonName || !signerid.IsVerifierCA(own[1]) {
		t.Fatalf("IssueVerifierSigning chain: %d certificates, leaf %q, issuer %q", len(own), own[0].Subject, own[1].Subject)
	}

	others := map[string]func() ([]*x509.Certificate, error){
		"a Signing certificate the CMS issues in process": func() ([]*x509.Certificate, error) {
			return ca.IssueSigning(key.Public(), signerid.LeafCommonName, time.Hour)
		},
	}
	for _, certType := range certTypes {
		others["a "+certType+" certificate signed from a CSR named like the verifier"] = func() ([]*x509.Certificate, error) {
			csr, err := ParseCSR(csrPEM(t, key, signerid.LeafCommonName, []string{"node1.example"}, nil))
			if err != nil {
				return nil, err
			}
			return ca.SignCSR(csr, certType)
		}
	}
	for name, issue := range others {
		t.Run(name, func(t *testing.T) {
			chain, err := issue()
			if err != nil {
				t.Fatal(err)
			}
			if err := signerid.Verify(chain, ca.RootPool(), now); !errors.Is(err, signerid.ErrNotVerifier) {
				t.Fatalf("signerid.Verify = %v, want %v", err, signerid.ErrNotVerifier)
			}
		})
	}

	t.Run("no CSR and no role context can name the verifier signing CA", func(t *testing.T) {
		csr, err := ParseCSR(csrPEM(t, key, signerid.LeafCommonName, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.SignCSR(csr, issuingVerifierSigning); !errors.Is(err, ErrUnknownCertType) {
			t.Errorf("SignCSR(certType %s) = %v, want %v", issuingVerifierSigning, err, ErrUnknownCertType)
		}
		if _, err := ParseApproval("CN=" + signerid.LeafCommonName + ";certType=" + issuingVerifierSigning); err == nil {
			t.Errorf("ParseApproval accepted certType %s", issuingVerifierSigning)
		}
	})
}

// A store written by a version without the verifier signing CA keeps its
// root: the intermediate is added under it, so pinned roots stay valid.
func TestAStoreFromBeforeTheVerifierSigningCAGainsItUnderTheSameRoot(t *testing.T) {
	store := memsecrets.New()
	old := newCAOn(t, store)
	store.Delete(secretName[issuingVerifierSigning])

	upgraded := newCAOn(t, store)
	if upgraded.RootSHA384() != old.RootSHA384() {
		t.Fatal("the upgrade made a new root")
	}
	if store.Secret(secretName[issuingVerifierSigning]) == nil {
		t.Fatal("the upgrade did not store the verifier signing CA")
	}
	chain, err := upgraded.IssueVerifierSigning(newP384(t).Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := signerid.Verify(chain, old.RootPool(), time.Now()); err != nil {
		t.Fatalf("the new verifier signing certificate does not verify under the old root: %v", err)
	}
}

// The verifier's own TLS names: a certificate for them would let its holder
// pose as the verifier to agents, the manager and tcctl, which trust the
// CMS root. CSR signing refuses them for every certificate type, even to a
// CertApprover whose role allows exactly that CSR.
func TestCSRForVerifierTLSNamesIsRefused(t *testing.T) {
	cfg := testConfig()
	cfg.ReservedNames = []string{"localhost", "verifier.example.com"}
	cfg.ReservedIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("fd00::1")}
	ca, err := New(context.Background(), cfg, memsecrets.New(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	key := newP384(t)
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}

	tests := []struct {
		name     string
		cn       string
		dns      []string
		ips      []net.IP
		certType string
		wantErr  error
	}{
		{"a TLS CSR for the verifier's server name", "localhost", []string{"localhost"}, loopback, TypeTLS, ErrReservedName},
		{"a TLS CSR naming a verifier DNS name in another case", "node-1", []string{"VERIFIER.example.com"}, nil, TypeTLS, ErrReservedName},
		{"a TLS CSR naming a verifier DNS name with a trailing dot", "node-1", []string{"verifier.example.com."}, nil, TypeTLS, ErrReservedName},
		{"a TLS CSR for a wildcard covering a verifier DNS name", "node-1", []string{"*.example.com"}, nil, TypeTLS, ErrReservedName},
		{"a TLS CSR for a verifier IP address only", "node-1", []string{"node-1.example.com"}, loopback, TypeTLS, ErrReservedName},
		{"a TLS CSR for a verifier IPv4 address written as IPv6", "node-1", []string{"node-1.example.com"}, []net.IP{net.ParseIP("::ffff:127.0.0.1")}, TypeTLS, ErrReservedName},
		{"a TLS CSR for a verifier IPv6 address", "node-1", []string{"node-1.example.com"}, []net.IP{net.ParseIP("fd00::1")}, TypeTLS, ErrReservedName},
		{"a TLS client CSR whose common name is the verifier's", "verifier.example.com", nil, nil, TypeTLSClient, ErrReservedName},
		{"a Signing CSR whose common name is a verifier IP address", "127.0.0.1", nil, nil, TypeSigning, ErrReservedName},
		{"a TLS CSR for a node's own names is signed", "node-1", []string{"node-1.example.com"}, []net.IP{net.IPv4(10, 0, 0, 7)}, TypeTLS, nil},
		{"a TLS CSR for a sibling of a verifier name is signed", "node-1", []string{"node-1.verifier.example.com"}, nil, TypeTLS, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(csrPEM(t, key, tt.cn, tt.dns, tt.ips))
			if err != nil {
				t.Fatal(err)
			}
			_, err = ca.SignCSR(csr, tt.certType)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SignCSR = %v, want %v", err, tt.wantErr)
			}
			var apiErr *api.Error
			if tt.wantErr != nil && (!errors.As(err, &apiErr) || apiErr.Kind != api.KindForbidden) {
				t.Fatalf("SignCSR error %v is not a forbidden *api.Error", err)
			}
		})
	}

	t.Run("a CertApprover allowed exactly the verifier's names is forbidden over HTTP", func(t *testing.T) {
		claims := &auth.Claims{Roles: []auth.Role{{Service: RoleService, Name: RoleCertApprover,
			Context: "CN=localhost;SAN=localhost,127.0.0.1;certType=TLS"}}}
		srv, client := newCMSServer(t, ca, claims)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathCertificates+"?certType=TLS",
			bytes.NewReader(csrPEM(t, key, "localhost", []string{"localhost"}, loopback)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", PEMContentType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		var eb api.ErrorBody
		if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &eb) != nil || !strings.Contains(eb.Error, "verifier's own TLS names") {
			t.Fatalf("status %d %s, want 403 naming the verifier's own TLS names", resp.StatusCode, body)
		}
	})
}
