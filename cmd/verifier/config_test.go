package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/errtest"
	"trustedcompute.io/tc/internal/verifier"
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

func TestTokenLeewayAndMetricsListenAreConfigurable(t *testing.T) {
	path := configtest.File(t, "tokens:\n  leeway: 2s\nmetrics:\n  listen: 127.0.0.1:9464\n")
	cfg, err := loadConfig(path, configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens.Leeway != 2*time.Second || cfg.Metrics.Listen != "127.0.0.1:9464" {
		t.Fatalf("file: leeway %s, metrics.listen %q", cfg.Tokens.Leeway, cfg.Metrics.Listen)
	}
	cfg, err = loadConfig(path, configtest.Env(map[string]string{"TC_TOKEN_LEEWAY": "1s", "TC_METRICS_LISTEN": ":9465"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens.Leeway != time.Second || cfg.Metrics.Listen != ":9465" {
		t.Fatalf("env: leeway %s, metrics.listen %q", cfg.Tokens.Leeway, cfg.Metrics.Listen)
	}
	cfg.DataDir = t.TempDir()
	vcfg, err := cfg.verifierConfig(configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if vcfg.AAS.Leeway != time.Second || vcfg.Metrics.Listen != ":9465" {
		t.Fatalf("verifier config: leeway %s, metrics %+v", vcfg.AAS.Leeway, vcfg.Metrics)
	}
}

// refusal is an edit of the default config that validate must refuse with
// an error naming key.
type refusal struct {
	name string
	edit func(*Config)
	key  string
}

func checkRefusals(t *testing.T, tests []refusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			tt.edit(&cfg)
			if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("validate = %v, want an error naming %s", err, tt.key)
			}
		})
	}
}

func TestTokenLeewayAndMetricsListenAreValidated(t *testing.T) {
	checkRefusals(t, []refusal{
		{"a leeway of two minutes is refused", func(c *Config) { c.Tokens.Leeway = 2 * time.Minute }, "tokens.leeway"},
		{"a negative leeway is refused", func(c *Config) { c.Tokens.Leeway = -time.Second }, "tokens.leeway"},
		{"a metrics address without a port is refused", func(c *Config) { c.Metrics.Listen = "localhost" }, "metrics.listen"},
	})
}

func TestHVSCacheBoundsAndReportRetentionReachTheHVSAndAreValidated(t *testing.T) {
	path := configtest.File(t, "hvs:\n  flavor_cache_mib: 64\n  ima_policy_cache_mib: 32\n  event_log_cache_entries: 100\n  report_retention: 240h\n  event_interval: 3s\n")
	_, vcfg := verifierConfigOf(t, path, map[string]string{"TC_HVS_IMA_CACHE_ENTRIES": "5000", "TC_AK_CACHE_ENTRIES": "7",
		"TC_HVS_REPORT_RETENTION": "168h", "TC_HVS_EVENT_INTERVAL": "2s"})
	if h := vcfg.HVS; h.FlavorCacheBytes != 64<<20 || h.IMAPolicyCacheBytes != 32<<20 || h.IMACacheEntries != 5000 || h.EventLogCacheEntries != 100 {
		t.Fatalf("the HVS gets flavor cache %d B, policy cache %d B, IMA entries %d, event logs %d; want 64 MiB, 32 MiB, 5000, 100",
			h.FlavorCacheBytes, h.IMAPolicyCacheBytes, h.IMACacheEntries, h.EventLogCacheEntries)
	}
	if vcfg.HVS.ReportRetention != 168*time.Hour || defaultConfig().HVS.ReportRetention != 720*time.Hour {
		t.Fatalf("the HVS keeps reports %s (default %s), want the environment's 168h (default 720h)",
			vcfg.HVS.ReportRetention, defaultConfig().HVS.ReportRetention)
	}
	if vcfg.Enrollment.AKCacheEntries != 7 {
		t.Fatalf("the enroller gets %d AK cache entries, want 7", vcfg.Enrollment.AKCacheEntries)
	}
	if vcfg.HVS.EventInterval != 2*time.Second || defaultConfig().HVS.EventInterval != time.Second {
		t.Fatalf("the HVS's event interval is %s (default %s), want the environment's 2s (default 1s)",
			vcfg.HVS.EventInterval, defaultConfig().HVS.EventInterval)
	}
	checkRefusals(t, []refusal{
		{"an event interval under 100ms is refused", func(c *Config) { c.HVS.EventInterval = 99 * time.Millisecond }, "hvs.event_interval"},
		{"an event interval over 10m is refused", func(c *Config) { c.HVS.EventInterval = 11 * time.Minute }, "hvs.event_interval"},
		{"an AK cache of no entries is refused", func(c *Config) { c.Enrollment.AKCacheEntries = 0 }, "enrollment.ak_cache_entries"},
		{"a flavor cache of 0 MiB is refused", func(c *Config) { c.HVS.FlavorCacheMiB = 0 }, "hvs.flavor_cache_mib"},
		{"a negative policy cache is refused", func(c *Config) { c.HVS.IMAPolicyCacheMiB = -1 }, "hvs.ima_policy_cache_mib"},
		{"no IMA entries at all is refused", func(c *Config) { c.HVS.IMACacheEntries = 0 }, "hvs.ima_cache_entries"},
		{"too many event logs are refused", func(c *Config) { c.HVS.EventLogCacheEntries = 1 << 25 }, "hvs.event_log_cache_entries"},
		{"a report retention under an hour is refused", func(c *Config) { c.HVS.ReportRetention = 59 * time.Minute }, "hvs.report_retention"},
		{"a report retention under two intervals is refused", func(c *Config) {
			c.HVS.Interval, c.HVS.ReportRetention = 24*time.Hour, 47*time.Hour
		}, "hvs.report_retention"},
	})
}

func TestKeyEncryptionKeysComeFromTheFileAndTheEnvironment(t *testing.T) {
	path := configtest.File(t, "key_encryption_key_file: /etc/tc/kek\nprevious_key_encryption_key_files: [/etc/tc/kek.old]\n")
	tests := []struct {
		name                      string
		env                       map[string]string
		wantFile, wantKey         string
		wantPrevFiles, wantPrevKs []string
	}{
		{"the config file names the key and the previous keys", nil, "/etc/tc/kek", "", []string{"/etc/tc/kek.old"}, nil},
		{"the environment overrides the files", map[string]string{
			"TC_KEY_ENCRYPTION_KEY_FILE": "/run/kek", "TC_PREVIOUS_KEY_ENCRYPTION_KEY_FILES": "/run/a,/run/b",
		}, "/run/kek", "", []string{"/run/a", "/run/b"}, nil},
		{"the keys themselves may come from the environment", map[string]string{
			"TC_KEY_ENCRYPTION_KEY": "bmV3", "TC_PREVIOUS_KEY_ENCRYPTION_KEY": "b2xk",
		}, "/etc/tc/kek", "bmV3", []string{"/etc/tc/kek.old"}, []string{"b2xk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(path, configtest.Env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = t.TempDir()
			vc, err := cfg.verifierConfig(configtest.Env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			k := vc.KeyEncryption
			if k.KeyFile != tt.wantFile || k.Key != tt.wantKey || !slices.Equal(k.PreviousKeyFiles, tt.wantPrevFiles) || !slices.Equal(k.PreviousKeys, tt.wantPrevKs) {
				t.Errorf("key encryption config = %+v", k)
			}
		})
	}
}

func TestRunRefusesADataDirectoryOthersMayRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := program().Run(t.Context(), []string{"run", "-listen", "127.0.0.1:0", "-data-dir", dir}, os.Stdout, os.Stderr,
		configtest.Env(map[string]string{"TC_NATS_LISTEN": "127.0.0.1:0", "TC_ADMIN_PASSWORD": "not-checked"}))
	if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("err = %v, want one naming the fix chmod 700 %s", err, dir)
	}
}

func TestBusCredentialLifetime(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{"the lifetime defaults to 30 days", nil, 30 * 24 * time.Hour, ""},
		{"the environment sets it", map[string]string{"TC_NATS_CREDENTIAL_LIFETIME": "72h"}, 72 * time.Hour, ""},
		{"less than a minute is refused", map[string]string{"TC_NATS_CREDENTIAL_LIFETIME": "30s"}, 0, "nats.credential_lifetime"},
		{"more than 366 days is refused", map[string]string{"TC_NATS_CREDENTIAL_LIFETIME": "9000h"}, 0, "nats.credential_lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig("", configtest.Env(tt.env))
			if err == nil {
				err = cfg.validate()
			}
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			cfg.DataDir = t.TempDir()
			vcfg, err := cfg.verifierConfig(configtest.Env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if vcfg.AAS.CredentialValidity != tt.want {
				t.Fatalf("the AAS issues credentials for %s, want %s", vcfg.AAS.CredentialValidity, tt.want)
			}
		})
	}
}

func TestTrustedProxiesReachTheAASAndAreValidated(t *testing.T) {
	path := configtest.File(t, "trusted_proxies: [10.1.0.0/16, 192.0.2.5]\n")
	_, vcfg := verifierConfigOf(t, path, nil)
	if got := fmt.Sprint(vcfg.AAS.TrustedProxies); got != "[10.1.0.0/16 192.0.2.5/32]" {
		t.Fatalf("file: the AAS trusts %s", got)
	}
	cfg, _ := verifierConfigOf(t, path, map[string]string{"TC_TRUSTED_PROXIES": "fd00::/8,10.2.0.0/16"})
	if got := fmt.Sprint(cfg.TrustedProxies); got != "[fd00::/8 10.2.0.0/16]" {
		t.Fatalf("env: trusted_proxies %s", got)
	}
	if got := defaultConfig().TrustedProxies; len(got) != 0 {
		t.Errorf("default trusted proxies %v, want none", got)
	}
	checkRefusals(t, []refusal{
		{"a proxy that is no prefix is refused", func(c *Config) { c.TrustedProxies = []string{"ingress.example"} }, "trusted_proxies"},
		{"trusting every address is refused", func(c *Config) { c.TrustedProxies = []string{"0.0.0.0/0"} }, "every address"},
	})
}

// verifierConfigOf loads the file at path with the environment env and
// turns it into the composition root's configuration, on a data directory
// of the test's.
func verifierConfigOf(t *testing.T, path string, env map[string]string) (Config, verifier.Config) {
	t.Helper()
	cfg, err := loadConfig(path, configtest.Env(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	vcfg, err := cfg.verifierConfig(configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, vcfg
}
