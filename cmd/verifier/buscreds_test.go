package main

import (
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/errtest"
)

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
