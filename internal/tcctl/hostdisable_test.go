package tcctl_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/eventually"
)

// dialFile connects to the verifier's bus with the credentials in file.
func dialFile(t *testing.T, h *harness, file, name string) (*nats.Conn, error) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return natsbus.Connect(ctx, h.v.NATSURL(), raw, h.v.Roots, name, slog.New(slog.DiscardHandler))
}

// mustDial connects like dialFile and fails the test when it cannot; the
// connection closes when the test ends.
func mustDial(t *testing.T, h *harness, file, name string) *nats.Conn {
	t.Helper()
	nc, err := dialFile(t, h, file, name)
	if err != nil {
		t.Fatalf("connect as %s with %s: %v", name, filepath.Base(file), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitCutOff fails the test unless nc is disconnected within 2 s.
func waitCutOff(t *testing.T, nc *nats.Conn) {
	t.Helper()
	eventually.True(t, 2*time.Second, "cut off", func() bool { return !nc.IsConnected() })
}

// TestHostDisableAndEnable disables a host from the CLI: the list shows it
// disabled, its agent is cut off and gets no new credentials; enabled again,
// fresh credentials are issued and connect.
func TestHostDisableAndEnable(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	c.must(t, "host", "register", "--host-id", "edge-1", "--name", "edge-one")
	creds := filepath.Join(t.TempDir(), "edge-1.creds")
	c.must(t, "credentials", "agent", "edge-1", "-f", creds)
	nc := mustDial(t, h, creds, "agent-edge-1")

	state := func(t *testing.T) string {
		t.Helper()
		rows := tableRows(c.must(t, "host", "list"))
		col := slices.Index(rows[0], "STATE")
		if len(rows) != 2 || col < 0 || len(rows[1]) <= col {
			t.Fatalf("host list %q has no STATE column", rows)
		}
		return rows[1][col]
	}
	if got := state(t); got != "enabled" {
		t.Fatalf("a registered host is %q", got)
	}
	out := c.must(t, "host", "disable", "edge-1")
	if !strings.Contains(out, "disabled") {
		t.Errorf("disable output:\n%s", out)
	}
	if got := state(t); got != "disabled" {
		t.Fatalf("after disable the host is %q", got)
	}
	waitCutOff(t, nc)
	if _, _, err := c.run("credentials", "agent", "edge-1", "-f", creds); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("credentials for a disabled host: %v, want a 409", err)
	}
	if _, _, err := c.run("report", "create", "--host-id", "edge-1"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("report of a disabled host: %v, want refused", err)
	}

	c.must(t, "host", "enable", "edge-1")
	if got := state(t); got != "enabled" {
		t.Fatalf("after enable the host is %q", got)
	}
	c.must(t, "credentials", "agent", "edge-1", "-f", creds)
	mustDial(t, h, creds, "agent-edge-1") // fresh credentials of the enabled host
	if _, _, err := c.run("host", "disable", "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("disable an unknown host: %v, want a 404", err)
	}
}

// TestRevokeCredentials revokes the attestation manager's and the HVS
// service's bus credentials from the CLI (a stolen HVS service credential
// reads every agent's events): the connection closes and the credentials are
// refused; fresh ones connect.
func TestRevokeCredentials(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	tests := []struct {
		name, kind, wantOut string
		issue               func(t *testing.T, file string)
	}{
		{"the attestation manager's credentials are revoked", "manager", "manager attestation-manager revoked", func(t *testing.T, file string) {
			c.must(t, "credentials", "manager", "-f", file)
		}},
		{"the HVS service's credentials are revoked", "service", "service HVS revoked", func(t *testing.T, file string) {
			creds, err := h.v.Authority().ServiceCredentials("HVS", time.Hour) // POST /aas/v1/credentials {"type":"HVS"}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, creds, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), tt.kind+".creds")
			tt.issue(t, file)
			old, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			nc := mustDial(t, h, file, tt.kind)
			if out := c.must(t, "credentials", "revoke-"+tt.kind); !strings.Contains(out, tt.wantOut) {
				t.Errorf("revoke-%s output:\n%s", tt.kind, out)
			}
			waitCutOff(t, nc)
			oldFile := filepath.Join(t.TempDir(), "old.creds")
			if err := os.WriteFile(oldFile, old, 0o600); err != nil {
				t.Fatal(err)
			}
			if again, err := dialFile(t, h, oldFile, tt.kind); err == nil {
				again.Close()
				t.Fatal("the revoked credentials connect")
			}
			tt.issue(t, file)
			mustDial(t, h, file, tt.kind) // fresh credentials
			if _, _, err := c.run("credentials", "revoke-"+tt.kind, "a.b"); err == nil || !strings.Contains(err.Error(), "400") {
				t.Errorf("revoke an invalid name: %v, want a 400", err)
			}
		})
	}
}
