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

func TestAnOverdueHostIsNeverListedAsTrusted(t *testing.T) {
	success := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		trust map[string]string
		want  string
	}{
		{"an overdue host whose latest report is trusted reads overdue", map[string]string{"a": trustTrusted}, trustOverdue},
		{"an overdue host whose latest report expired reads overdue", map[string]string{"a": trustExpired}, trustOverdue},
		{"an overdue host whose reports cannot be read reads overdue", nil, trustOverdue},
		{"an overdue host whose latest report is untrusted stays untrusted", map[string]string{"a": trustUntrusted}, trustUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := hostTrustTable([]restapi.Host{{ID: "a", Overdue: true, LastSuccess: &success}}, tt.trust)
			row := tb.rows[0]
			if got := row[len(row)-1]; got != tt.want {
				t.Errorf("trust %q, want %q", got, tt.want)
			}
			if got := row[len(row)-2]; got != timeCell(&success) || tb.header[len(tb.header)-2] != "LAST SUCCESS" {
				t.Errorf("last success cell %q under %q, want %q under LAST SUCCESS", got, tb.header[len(tb.header)-2], timeCell(&success))
			}
		})
	}
}
