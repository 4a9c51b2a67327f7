package cms

import (
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/errtest"
)

func TestFetchRootPinned(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	mux := http.NewServeMux()
	ca.Routes(mux, withClaims(nil))
	ours, _ := startServer(t, ca, mux, ca.RootPool())

	otherMux := http.NewServeMux()
	other.Routes(otherMux, withClaims(nil))
	foreign, _ := startServer(t, other, otherMux, other.RootPool())

	// A server whose TLS chain holds our root but whose endpoint serves
	// another root.
	liar, _ := startServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writePEM(w, http.StatusOK, EncodeChainPEM(other.certsOf(IssuingRoot)))
	}), ca.RootPool())

	tlsCA, _ := ca.CACertificate(TypeTLS)
	tests := []struct {
		name    string
		url     string
		pin     string
		wantErr string
	}{
		{"the right pin yields the root", ours.URL, ca.RootSHA384(), ""},
		{"the right pin in upper case yields the root", ours.URL, strings.ToUpper(ca.RootSHA384()), ""},
		{"a wrong pin is refused", ours.URL, other.RootSHA384(), ErrPinMismatch.Error()},
		{"a server with a certificate from another CA is refused", foreign.URL, ca.RootSHA384(), ErrPinMismatch.Error()},
		{"a pin of an intermediate is refused", ours.URL, Fingerprint(tlsCA), "not a self-signed CA"},
		{"a server that serves another root than it presents is refused", liar.URL, ca.RootSHA384(), "differs from the pinned one"},
		{"a malformed pin is refused", ours.URL, "abc", "96 hex digits"},
		{"a plain HTTP URL is refused", strings.Replace(ours.URL, "https", "http", 1), ca.RootSHA384(), "must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := FetchRootPinned(t.Context(), tt.url, tt.pin)
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			if !root.Equal(ca.Root()) {
				t.Fatal("FetchRootPinned returned another certificate than the root")
			}
		})
	}
}

func TestAClientTrustingOnlyTheRootRefusesAServerOfAnotherCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	mux := http.NewServeMux()
	other.Routes(mux, withClaims(nil))
	srv, _ := startServer(t, other, mux, nil)
	_, client := startServer(t, ca, mux, ca.RootPool())
	resp, err := client.Do(newRequest(t, http.MethodGet, srv.URL+PathCACertificates, "", nil))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a client trusting only our root accepted a server of another CA")
	}
	if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("error = %v, want an unknown authority", err)
	}
}

func TestLoadRootFile(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf, err := ca.IssueTLSClient(newP384(t).Public(), "x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	root := write("root.pem", EncodeChainPEM(ca.certsOf(IssuingRoot)))
	both := write("both.pem", EncodeChainPEM(append(other.certsOf(IssuingRoot), ca.Root())))
	onlyLeaf := write("leaf.pem", EncodeChainPEM(leaf[:1]))
	garbage := write("garbage.pem", []byte("not a certificate"))
	tests := []struct {
		name    string
		path    string
		pin     string
		wantErr string
	}{
		{"a single root loads without a pin", root, "", ""},
		{"a single root loads with its pin", root, ca.RootSHA384(), ""},
		{"a bundle loads the root matching the pin", both, ca.RootSHA384(), ""},
		{"a bundle without a pin is refused", both, "", "exactly one"},
		{"a wrong pin is refused", root, other.RootSHA384(), ErrPinMismatch.Error()},
		{"a leaf certificate is refused", onlyLeaf, "", "not a self-signed CA"},
		{"a file that is not PEM is refused", garbage, "", "not PEM"},
		{"a missing file is refused", filepath.Join(dir, "none.pem"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadRootFile(tt.path, tt.pin)
			wantRoot(t, "LoadRootFile", got, err, ca.Root(), tt.wantErr)
		})
	}
}

// certsOf returns the CA certificate of kind as a one-element chain.
func (ca *CA) certsOf(kind string) []*x509.Certificate {
	c, err := ca.CACertificate(kind)
	if err != nil {
		panic(err)
	}
	return []*x509.Certificate{c}
}

// wantRoot checks what fn returned: an error containing wantErr, or with an
// empty wantErr the certificate root.
func wantRoot(t *testing.T, fn string, got *x509.Certificate, err error, root *x509.Certificate, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s error = %v, want one containing %q", fn, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(root) {
		t.Fatalf("%s returned another certificate than the root", fn)
	}
}
