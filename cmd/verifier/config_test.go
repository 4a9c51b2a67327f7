package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsArePinned(t *testing.T) {
	cfg, err := loadConfig("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8443" || cfg.NATS.Listen != ":4222" || cfg.Tokens.Validity != time.Hour || cfg.Admin.Username != "admin" || cfg.Enrollment.AllowRegisteredEKs {
		t.Fatalf("defaults changed: %+v", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestConfigFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "verifier.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:9443\nnats:\n  listen: 127.0.0.1:5222\nenrollment:\n  allow_registered_eks: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, env(map[string]string{"TC_LISTEN": "127.0.0.1:10443", "TC_EK_CA_FILES": "a.pem,b.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:10443" || cfg.NATS.Listen != "127.0.0.1:5222" || !cfg.Enrollment.AllowRegisteredEKs || len(cfg.Enrollment.EKCAFiles) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestConfigRefusesUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verifier.yaml")
	if err := os.WriteFile(path, []byte("listn: :8443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path, env(nil)); err == nil || !strings.Contains(err.Error(), "listn") {
		t.Fatalf("err = %v, want one naming the unknown key", err)
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	cfg := defaultConfig()
	cfg.Listen = "nope"
	cfg.IPs = []string{"not-an-ip"}
	cfg.Tokens.Validity = 0
	cfg.NATS.URL = "nats://x:4222"
	cfg.Debug.PprofListen = "0.0.0.0:6060"
	err := cfg.validate()
	for _, want := range []string{"listen", "not-an-ip", "tokens.validity", "creds_file", "debug.pprof_listen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate error %v lacks %q", err, want)
		}
	}
}

func TestRunRefusesToStartWithoutAnAdminPassword(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // t.TempDir is 0755, which the verifier refuses
		t.Fatal(err)
	}
	err := program().Run(t.Context(), []string{"run", "-listen", "127.0.0.1:0", "-data-dir", dir}, os.Stdout, os.Stderr, env(map[string]string{"TC_NATS_LISTEN": "127.0.0.1:0"}))
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("err = %v, want a missing admin password error", err)
	}
}

// TestPrintEnvKeys lists the binary's environment variables for test/deps.
func TestPrintEnvKeys(t *testing.T) { configtest.PrintEnvKeys(t, defaultConfig()) }
