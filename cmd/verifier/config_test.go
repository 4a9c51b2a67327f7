package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
)

func TestDefaultsArePinned(t *testing.T) {
	cfg, err := loadConfig("", configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8443" || cfg.NATS.Listen != ":4222" || cfg.Tokens.Validity != time.Hour || cfg.Tokens.Leeway != 5*time.Second ||
		cfg.Admin.Username != "admin" || cfg.Enrollment.AllowRegisteredEKs {
		t.Fatalf("defaults changed: %+v", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	cfg.DataDir = t.TempDir()
	vcfg, err := cfg.verifierConfig(configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if vcfg.AAS.Leeway != 5*time.Second {
		t.Fatalf("the AAS gets the default leeway %s, want 5s", vcfg.AAS.Leeway)
	}
}

func TestConfigFileAndEnvironment(t *testing.T) {
	path := configtest.File(t, "listen: 127.0.0.1:9443\nnats:\n  listen: 127.0.0.1:5222\nenrollment:\n  allow_registered_eks: true\n")
	cfg, err := loadConfig(path, configtest.Env(map[string]string{"TC_LISTEN": "127.0.0.1:10443", "TC_EK_CA_FILES": "a.pem,b.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:10443" || cfg.NATS.Listen != "127.0.0.1:5222" || !cfg.Enrollment.AllowRegisteredEKs || len(cfg.Enrollment.EKCAFiles) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestConfigRefusesUnknownKeys(t *testing.T) {
	if _, err := loadConfig(configtest.File(t, "listn: :8443\n"), configtest.Env(nil)); err == nil || !strings.Contains(err.Error(), "listn") {
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
	err := program().Run(t.Context(), []string{"run", "-listen", "127.0.0.1:0", "-data-dir", dir}, os.Stdout, os.Stderr, configtest.Env(map[string]string{"TC_NATS_LISTEN": "127.0.0.1:0"}))
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("err = %v, want a missing admin password error", err)
	}
}

// TestPrintEnvKeys lists the binary's environment variables for test/deps.
func TestPrintEnvKeys(t *testing.T) { configtest.PrintEnvKeys(t, defaultConfig()) }
