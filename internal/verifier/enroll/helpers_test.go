package enroll

import (
	"context"
	"crypto/x509"
	"log/slog"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/store"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newEnroller(t testing.TB, cfg Config, st Store, agent Agent) *Enroller {
	t.Helper()
	e, err := New(context.Background(), cfg, st, agent, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// swtpmLocalCA is the pool of the CA that swtpm_setup issues EK certificates from.
func swtpmLocalCA(t testing.TB) *x509.CertPool {
	t.Helper()
	tpmtest.EnsureLocalCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(testca.ReadCert(t, tpmtest.LocalCACert))
	return pool
}

// otherCA is the pool of a CA made for the test, which issued no EK certificate.
func otherCA(t testing.TB) *x509.CertPool {
	t.Helper()
	return newEKCA(t).pool
}

// tamperedAgent is a hand-written fake of Agent around a real agent client:
// it passes requests on and lets a test change the answers.
type tamperedAgent struct {
	Agent
	akInfo   func(*evidence.AKInfo)
	activate func(*evidence.ActivateResponse) error
}

func (a tamperedAgent) AKInfo(ctx context.Context, hostID string) (*evidence.AKInfo, error) {
	info, err := a.Agent.AKInfo(ctx, hostID)
	if err == nil && a.akInfo != nil {
		a.akInfo(info)
	}
	return info, err
}

func (a tamperedAgent) Activate(ctx context.Context, hostID string, req evidence.ActivateRequest) (*evidence.ActivateResponse, error) {
	resp, err := a.Agent.Activate(ctx, hostID, req)
	if err == nil && a.activate != nil {
		if err := a.activate(resp); err != nil {
			return nil, err
		}
	}
	return resp, err
}

// failingAgent answers every request with err.
type failingAgent struct{ err error }

func (a failingAgent) AKInfo(context.Context, string) (*evidence.AKInfo, error) { return nil, a.err }
func (a failingAgent) Activate(context.Context, string, evidence.ActivateRequest) (*evidence.ActivateResponse, error) {
	return nil, a.err
}
