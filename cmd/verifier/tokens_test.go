package main

import (
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
)

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

func TestHVSCacheBoundsReachTheHVSAndAreValidated(t *testing.T) {
	path := configtest.File(t, "hvs:\n  flavor_cache_mib: 64\n  ima_policy_cache_mib: 32\n  event_log_cache_entries: 100\n")
	cfg, err := loadConfig(path, configtest.Env(map[string]string{"TC_HVS_IMA_CACHE_ENTRIES": "5000", "TC_AK_CACHE_ENTRIES": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	vcfg, err := cfg.verifierConfig(configtest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if h := vcfg.HVS; h.FlavorCacheBytes != 64<<20 || h.IMAPolicyCacheBytes != 32<<20 || h.IMACacheEntries != 5000 || h.EventLogCacheEntries != 100 {
		t.Fatalf("the HVS gets flavor cache %d B, policy cache %d B, IMA entries %d, event logs %d; want 64 MiB, 32 MiB, 5000, 100",
			h.FlavorCacheBytes, h.IMAPolicyCacheBytes, h.IMACacheEntries, h.EventLogCacheEntries)
	}
	if vcfg.Enrollment.AKCacheEntries != 7 {
		t.Fatalf("the enroller gets %d AK cache entries, want 7", vcfg.Enrollment.AKCacheEntries)
	}
	checkRefusals(t, []refusal{
		{"an AK cache of no entries is refused", func(c *Config) { c.Enrollment.AKCacheEntries = 0 }, "enrollment.ak_cache_entries"},
		{"a flavor cache of 0 MiB is refused", func(c *Config) { c.HVS.FlavorCacheMiB = 0 }, "hvs.flavor_cache_mib"},
		{"a negative policy cache is refused", func(c *Config) { c.HVS.IMAPolicyCacheMiB = -1 }, "hvs.ima_policy_cache_mib"},
		{"no IMA entries at all is refused", func(c *Config) { c.HVS.IMACacheEntries = 0 }, "hvs.ima_cache_entries"},
		{"too many event logs are refused", func(c *Config) { c.HVS.EventLogCacheEntries = 1 << 25 }, "hvs.event_log_cache_entries"},
	})
}
