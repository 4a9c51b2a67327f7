package dashboard

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/keybroker"
)

// fakeReleases is the key broker's journal as the dashboard reads it.
type fakeReleases map[string][]keybroker.Decision

func (f fakeReleases) Decisions(hostID string) []keybroker.Decision { return f[hostID] }

func TestNodePageListsSecretReleasesToWhoMayReadTheBrokersAudit(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	f.addHost(t, "host-2", "node-2")
	f.addReport(t, "host-1", t0.Add(-time.Minute))
	f.d.cfg.Releases = fakeReleases{"host-1": {
		{At: t0.Add(-10 * time.Second), HostID: "host-1", Name: "volume-key", SecretID: "s1", Version: 2,
			Outcome: keybroker.OutcomeRefused, Reason: keybroker.ReasonNotVerified, Detail: "the latest report is untrusted", ReportID: "r2"},
		{At: t0.Add(-20 * time.Second), HostID: "host-1", Name: "volume-key", SecretID: "s1", Version: 2,
			Outcome: keybroker.OutcomeRevoked, Reason: "revoked", ReportID: "r2"},
		{At: t0.Add(-time.Minute), HostID: "host-1", Name: "volume-key", SecretID: "s1", Version: 2,
			Outcome: keybroker.OutcomeReleased, ReportID: "r1", PCRs: []int{0, 7}},
	}}
	f.auth.users["auditor"] = fakeUser{password: "auditor password", rules: []string{"hosts:retrieve:*", "reports:retrieve:*", keybroker.AuditRule}}
	f.auth.users["viewer"] = fakeUser{password: "viewer password", rules: []string{"hosts:retrieve:*", "reports:retrieve:*"}}

	tests := []struct {
		name, user, password, node string
		want, wantNot              []string
	}{
		{name: "a user with the audit permission sees the node's releases, revocation and refusal, newest first",
			user: "auditor", password: "auditor password", node: "host-1",
			want: []string{`id="releases"`, "volume-key", ">refused<", "not_verified", "the latest report is untrusted",
				">revoked<", ">released<", "sealed to PCRs 0 7", `href="/reports/r1"`}},
		{name: "a node without decisions says so", user: "auditor", password: "auditor password", node: "host-2",
			want: []string{`id="releases"`, "No secret released to or refused to this node"}, wantNot: []string{"volume-key"}},
		{name: "a user without the audit permission sees no release", user: "viewer", password: "viewer password", node: "host-1",
			wantNot: []string{`id="releases"`, "volume-key", "not_verified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := f.browser(t)
			if res := b.login(tt.user, tt.password); res.code != http.StatusSeeOther {
				t.Fatalf("login: %d\n%s", res.code, res.body)
			}
			body := b.page("/nodes/" + tt.node)
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("node page lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(body, w) {
					t.Errorf("node page shows %q:\n%s", w, body)
				}
			}
			if tt.user == "auditor" && tt.node == "host-1" {
				refused, released := strings.Index(body, ">refused<"), strings.Index(body, ">released<")
				if refused > released {
					t.Errorf("the refusal is listed after the older release")
				}
			}
		})
	}
}
