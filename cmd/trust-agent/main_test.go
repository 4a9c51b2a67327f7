package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

func TestConfigDefaultsAndOverrides(t *testing.T) {
	cfg, err := loadConfig("", configtest.Env(map[string]string{"TC_TPM": "simulator", "TC_HOST_ID": "edge-9"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TPM != "simulator" || cfg.HostID != "edge-9" || cfg.Root != "/" || cfg.AKAlgorithm != "ecc-p256" {
		t.Fatalf("config = %+v", cfg)
	}
	if err := cfg.validate(true); err == nil || !strings.Contains(err.Error(), "nats.url") || !strings.Contains(err.Error(), "nats.ca_file") {
		t.Fatalf("validate without bus settings: %v", err)
	}
}

func TestConfigRefusesUnknownKeysAndBadValues(t *testing.T) {
	const typo = "ak_algoritm" //nolint:misspell // a deliberate typo: the unknown key under test
	path := configtest.File(t, "tpm: device\n"+typo+": rsa2048\n")
	if _, err := loadConfig(path, configtest.Env(nil)); err == nil || !strings.Contains(err.Error(), typo) {
		t.Fatalf("err = %v, want the unknown key named", err)
	}
	cfg := defaultConfig()
	cfg.AKAlgorithm = "dsa"
	if err := cfg.validate(false); err == nil || !strings.Contains(err.Error(), "dsa") {
		t.Fatalf("err = %v, want the bad algorithm named", err)
	}
}

func TestEvidencePrintsABundleFromASwtpm(t *testing.T) {
	sw := tpmtest.New(t)
	root, err := sandbox.NewRoot(t.TempDir(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a02", "edge-2", sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = program().Run(t.Context(), []string{"evidence", "-tpm", sw.Spec(), "-root", root.Dir, "-nonce", "00112233", "-pcrs", "0,7"}, &out, &errOut, configtest.Env(nil))
	if err != nil {
		t.Fatalf("evidence: %v\n%s", err, errOut.String())
	}
	var b Bundle
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatalf("output is not a bundle: %v\n%s", err, out.String())
	}
	if len(b.Response.Attest) == 0 || len(b.Keys.AKPublic) == 0 || len(b.Response.EventLog) == 0 || b.Response.HostInfo.HardwareUUID != "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a02" {
		t.Fatalf("incomplete bundle: %s", out.String())
	}
}

func TestUnknownCommandsAndMissingNonceAreErrors(t *testing.T) {
	var out bytes.Buffer
	if err := program().Run(t.Context(), nil, &out, &out, configtest.Env(nil)); err == nil || !strings.Contains(out.String(), "usage: trust-agent") {
		t.Fatalf("no command: err = %v, output %q, want an error and the usage", err, out.String())
	}
	out.Reset()
	if err := program().Run(t.Context(), []string{"frobnicate"}, &out, &out, configtest.Env(nil)); err == nil || !strings.Contains(err.Error(), "frobnicate") || !strings.Contains(out.String(), "usage: trust-agent") {
		t.Fatalf("unknown command: err = %v, output %q, want an error naming it and the usage", err, out.String())
	}
	err := program().Run(t.Context(), []string{"evidence", "-tpm", "simulator"}, &out, &out, configtest.Env(nil))
	if err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("err = %v, want a nonce error", err)
	}
	if err := program().Run(t.Context(), []string{"run", "-tpm", "simulator"}, &out, &out, configtest.Env(nil)); err == nil || errors.Is(err, nil) {
		t.Fatal("run without bus settings succeeded")
	}
}

// TestPrintEnvKeys lists the binary's environment variables for test/deps.
func TestPrintEnvKeys(t *testing.T) { configtest.PrintEnvKeys(t, defaultConfig()) }
