package config_test

import (
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config"
)

func TestDefaultDurations(t *testing.T) {
	tests := []struct {
		name                   string
		ttl, validity, wantTTL time.Duration
		wantErrContains        []string
	}{
		{name: "a zero duration takes its default", wantTTL: time.Minute},
		{name: "a set duration is kept", ttl: time.Second, wantTTL: time.Second},
		{name: "every negative duration is named in one error", ttl: -time.Second, validity: -time.Hour, wantTTL: -time.Second,
			wantErrContains: []string{"x config: TTL must not be negative, got -1s", "x config: Validity must not be negative, got -1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl, validity := tt.ttl, tt.validity
			err := config.DefaultDurations("x config",
				config.Duration("TTL", &ttl, time.Minute),
				config.Duration("Validity", &validity, time.Hour))
			if ttl != tt.wantTTL {
				t.Errorf("TTL = %s, want %s", ttl, tt.wantTTL)
			}
			if len(tt.wantErrContains) == 0 {
				if err != nil || validity != time.Hour {
					t.Errorf("DefaultDurations() = %v with Validity %s, want nil and 1h", err, validity)
				}
				return
			}
			for _, want := range tt.wantErrContains {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("DefaultDurations() = %v, want an error containing %q", err, want)
				}
			}
		})
	}
}
