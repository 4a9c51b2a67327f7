package tcctl

import (
	"testing"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

func TestTheHostListNeverShowsAnExpiredReportAsTrusted(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	trusted := func(expires time.Time) report.Report {
		var r report.Report
		r.TrustInformation.Overall = true
		r.Expiration = expires
		return r
	}
	for _, tc := range []struct {
		name string
		r    report.Report
		want string
	}{
		{"a trusted report within its validity is trusted", trusted(now.Add(time.Hour)), trustTrusted},
		{"a trusted report past its expiry is expired", trusted(now.Add(-time.Second)), trustExpired},
		{"a trusted report at its expiry is expired", trusted(now), trustExpired},
		{"an untrusted report is untrusted", report.Report{Expiration: now.Add(time.Hour)}, trustUntrusted},
	} {
		if got := trustCell(tc.r, now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTheHostListSaysWhenTheTrustIsUnknownOrThereIsNoReport(t *testing.T) {
	hosts := []restapi.Host{{ID: "a"}, {ID: "b"}}
	last := func(tb *table) []string {
		var cells []string
		for _, r := range tb.rows {
			cells = append(cells, r[len(r)-1])
		}
		return cells
	}
	if got := last(hostTrustTable(hosts, nil)); got[0] != trustUnknown || got[1] != trustUnknown {
		t.Errorf("without the reports: %q, want %q for every host", got, trustUnknown)
	}
	if got := last(hostTrustTable(hosts, map[string]string{"a": trustTrusted})); got[0] != trustTrusted || got[1] != trustNone {
		t.Errorf("with a report of a only: %q, want [%q %q]", got, trustTrusted, trustNone)
	}
}
