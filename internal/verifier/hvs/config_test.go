package hvs

import (
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func TestTheSHA1BankIsRefusedUnlessAllowed(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"the default banks are accepted", Config{}, false},
		{"SHA1 among the banks without AllowSHA1 is refused", Config{Banks: []string{evidence.BankSHA256, evidence.BankSHA1}}, true},
		{"SHA1 among the banks with AllowSHA1 is accepted", Config{Banks: []string{evidence.BankSHA1}, AllowSHA1: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.setDefaults(); (err != nil) != tt.wantErr {
				t.Fatalf("setDefaults() = %v, want error %t", err, tt.wantErr)
			}
		})
	}
}
