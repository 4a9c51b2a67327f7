package hvs

import (
	"testing"

	"trustedcompute.io/tc/internal/verifier/store"
)

func TestOnlyATrustedReportOfTheKnownBootSkipsTheSync(t *testing.T) {
	known := store.HostBoot{Known: true, ResetCount: 7}
	same := &store.HostBoot{Known: true, ResetCount: 7}
	rebooted := &store.HostBoot{Known: true, ResetCount: 8}
	for _, tc := range []struct {
		name    string
		trusted bool
		prev    store.HostBoot
		next    *store.HostBoot
		want    bool
	}{
		{"a trusted report of the same boot is deferred", true, known, same, true},
		{"an untrusted report is synced, so a power loss cannot bring back the last trusted one", false, known, same, false},
		{"a reboot is synced, so the next report does not count it again", true, known, rebooted, false},
		{"the first boot the verifier learns is synced", true, store.HostBoot{}, same, false},
		{"a report without a verified quote is synced", true, known, nil, false},
	} {
		if got := deferSync(tc.trusted, tc.prev, tc.next); got != tc.want {
			t.Errorf("%s: deferSync = %v, want %v", tc.name, got, tc.want)
		}
	}
}
