package verifier_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/verifier"
)

// TestAnExternalNATSServerConfiguredFromTheExportAcceptsTheVerifier plays
// the external-cluster set-up of docs/scaling.md: export, configure a plain
// nats-server with the fragment, connect with the exported credentials.
func TestAnExternalNATSServerConfiguredFromTheExportAcceptsTheVerifier(t *testing.T) {
	dir := t.TempDir()
	cfg := verifier.Config{Database: "sqlite:" + filepath.Join(dir, "verifier.db"), DataDir: filepath.Join(dir, "data")}
	out := filepath.Join(dir, "nats")
	logger := slog.New(slog.DiscardHandler)
	if err := verifier.ExportNATS(t.Context(), cfg, out, time.Hour, logger); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(out, verifier.NATSOperatorFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.ExportNATS(t.Context(), cfg, out, time.Hour, logger); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(out, verifier.NATSOperatorFile))
	// The JWT's bytes change with its issue time (seconds); the operator is
	// its key and the system account it names.
	if a, b := operatorOf(t, first), operatorOf(t, again); a.Subject != b.Subject || a.SystemAccount != b.SystemAccount {
		t.Errorf("a second export wrote another operator (%s, system %s; first %s, system %s): replicas and the external cluster would disagree",
			b.Subject, b.SystemAccount, a.Subject, a.SystemAccount)
	}
	if fi, err := os.Stat(filepath.Join(out, verifier.NATSServiceCredsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("service credentials file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	ns := externalNATS(t, out)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(filepath.Join(out, verifier.NATSServiceCredsFile)))
	if err != nil {
		t.Fatalf("the verifier's exported credentials are refused by the external server: %v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := nc.RequestWithContext(ctx, "trust-agent.edge-1.quote", nil); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("request as the verifier = %v, want no responders (allowed, nobody listens)", err)
	}
	if _, err := nats.Connect(ns.ClientURL()); err == nil {
		t.Error("the external server accepted a client without credentials")
	}
}

// operatorOf decodes an exported operator file.
func operatorOf(t *testing.T, file []byte) *jwt.OperatorClaims {
	t.Helper()
	oc, err := jwt.DecodeOperatorClaims(strings.TrimSpace(string(file)))
	if err != nil {
		t.Fatalf("exported operator JWT: %v", err)
	}
	return oc
}

// externalNATS runs, until the test ends, a plain nats-server configured
// with the fragment ExportNATS wrote into out.
func externalNATS(t *testing.T, out string) *server.Server {
	t.Helper()
	conf := filepath.Join(out, "server.conf")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\ninclude ./"+verifier.NATSAccountsFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the exported fragment: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	return ns
}

// TestRevokedExportedServiceCredentialsAreRefusedByTheNextExport plays
// stolen hvs.creds of an external cluster: the operator revokes the service
// hvs (DELETE /aas/v1/credentials/services/hvs) and exports again; the
// cluster configured from the new export refuses the stolen credentials and
// accepts the fresh ones. On the old code the exported key was never
// recorded, so no export could carry its revocation.
func TestRevokedExportedServiceCredentialsAreRefusedByTheNextExport(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	stolen, fresh := filepath.Join(dir, "nats-1"), filepath.Join(dir, "nats-2")
	h := startVerifier(t, dir)
	if err := verifier.ExportNATS(t.Context(), verifier.LoopbackConfig(dir), stolen, time.Hour, logger); err != nil {
		t.Fatal(err)
	}
	admin := h.login(t, "admin", adminPassword)
	if status, body := h.do(t, "DELETE", "/aas/v1/credentials/services/hvs", admin, "", nil); status != http.StatusNoContent {
		t.Fatalf("revoke hvs: %d %s", status, body)
	}
	h.v.Stop()
	if err := verifier.ExportNATS(t.Context(), verifier.LoopbackConfig(dir), fresh, time.Hour, logger); err != nil {
		t.Fatal(err)
	}
	ns := externalNATS(t, fresh)
	if nc, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(filepath.Join(stolen, verifier.NATSServiceCredsFile))); err == nil {
		nc.Close()
		t.Fatal("the external cluster accepts the revoked service credentials")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(filepath.Join(fresh, verifier.NATSServiceCredsFile)))
	if err != nil {
		t.Fatalf("the fresh service credentials are refused: %v", err)
	}
	nc.Close()
}
