package verifier

import (
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/store"
)

// TestOnlyRegisteredEnabledHostsMayHoldBusCredentials is the rule renewal
// and reconciliation apply: a disabled host's agent gets no renewal and is
// cut off when found connected, like a deleted one's.
func TestOnlyRegisteredEnabledHostsMayHoldBusCredentials(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, id := range []string{"enabled", "disabled", "enabled-again"} {
		if err := st.CreateHost(t.Context(), store.Host{ID: id, Name: id, ConnectionString: "nats://" + id, Status: "UNKNOWN"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, id := range []string{"disabled", "enabled-again"} {
		if err := st.DisableHost(t.Context(), id, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.EnableHost(t.Context(), "enabled-again"); err != nil {
		t.Fatal(err)
	}
	hosts := registeredHosts{st}
	tests := []struct {
		name, host string
		want       bool
	}{
		{"a registered host's agent may", "enabled", true},
		{"a disabled host's agent may not", "disabled", false},
		{"a host enabled again may", "enabled-again", true},
		{"an unregistered host's agent may not", "nope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hosts.HostAllowed(t.Context(), tt.host)
			if err != nil || got != tt.want {
				t.Fatalf("HostAllowed(%s) = %t, %v; want %t", tt.host, got, err, tt.want)
			}
		})
	}
}
