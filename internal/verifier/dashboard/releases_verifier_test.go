package dashboard_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// TestANodesPageShowsTheKeyBrokersRefusalOfItsRequest plays a node without
// a trust report asking a real verifier's key broker for a secret over the
// bus, with its own credentials, and finds the refusal on the node's page
// of the same verifier's dashboard, for a user who may read the broker's
// audit only.
func TestANodesPageShowsTheKeyBrokersRefusalOfItsRequest(t *testing.T) {
	v := startWithDashboard(t)
	if err := v.Store().CreateHost(t.Context(), store.Host{ID: "host-1", Name: "edge-node-1", Status: report.StatusConnected,
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	admin := string(call(t, v, http.MethodPost, "/aas/v1/token", "", restapi.TokenRequest{Username: "admin", Password: verifiertest.AdminPassword}))
	call(t, v, http.MethodPost, "/hvs/v2/secrets", admin, restapi.SecretRequest{Name: "volume-key", Value: []byte("v"),
		Policy: restapi.SecretPolicy{HostIDs: []string{"host-1"}}})
	createUser(t, v, admin, "viewer", "hosts:retrieve:*", "reports:retrieve:*")
	createUser(t, v, admin, "auditor", "hosts:retrieve:*", "reports:retrieve:*", "secrets:retrieve:*")

	creds, err := v.Authority().AgentCredentials("host-1", bus.GrammarTwoPrefixes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsbus.Connect(t.Context(), v.NATSURL(), creds, v.Roots, "agent-host-1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	request, err := bus.GrammarTwoPrefixes.SecretRequestSubject("host-1")
	if err != nil {
		t.Fatal(err)
	}
	answer, err := bus.GrammarTwoPrefixes.SecretAnswerSubject("host-1")
	if err != nil {
		t.Fatal(err)
	}
	answers := make(chan *nats.Msg, 1)
	sub, err := nc.ChanSubscribe(answer, answers)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg, _ := json.Marshal(bus.SecretRequest{Names: []string{"volume-key"}})
	if err := nc.Publish(request, msg); err != nil {
		t.Fatal(err)
	}
	var ans bus.SecretAnswer
	select {
	case m := <-answers:
		if err := json.Unmarshal(m.Data, &ans); err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no answer of the key broker")
	}
	if len(ans.Released) != 0 || len(ans.Refused) != 1 {
		t.Fatalf("answer %+v, want one refusal", ans)
	}
	reason := ans.Refused[0].Reason

	base := "https://" + v.DashboardAddr()
	for _, tt := range []struct {
		name, user string
		shown      bool
	}{
		{"a user who may read the key broker's audit sees the refusal", "auditor", true},
		{"a user who may not sees no secret", "viewer", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := browserClient(t, v)
			if res := dashboardLogin(t, c, base, tt.user, userPassword); res.code != http.StatusOK {
				t.Fatalf("login: status %d", res.code)
			}
			p := get(t, c, base+"/nodes/host-1")
			for _, want := range []string{`id="releases"`, "volume-key", ">refused<", reason} {
				if strings.Contains(p.body, want) != tt.shown {
					t.Errorf("node page shows %q: %v, want %v:\n%s", want, !tt.shown, tt.shown, p.body)
				}
			}
		})
	}
}
