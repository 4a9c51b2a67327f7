package keybroker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
	"trustedcompute.io/tc/internal/verifier/report"
)

// reportSigner signs answers with a report.Signer, as hvs.Service does.
type reportSigner struct{ s *report.Signer }

func (r reportSigner) SignSecretAnswer(_ context.Context, payload []byte) (string, error) {
	return r.s.SignSecretAnswer(payload)
}

// TestEachAnswerCarriesAJWSThatVerifiesWithHostAndNonce: a request's answer
// echoes its nonce and goes to the host's answer subject in the request's
// grammar, a pushed revocation has none and goes to the host's answer
// subject in both grammars, each is signed for its host, and the plain
// fields stay for agents before signed answers.
func TestEachAnswerCarriesAJWSThatVerifiesWithHostAndNonce(t *testing.T) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	ca := cmstest.NewCA(t, at)
	s, err := report.NewSigner(cmstest.VerifierSigning(t, ca, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b := New(Config{Now: func() time.Time { return at }}, Deps{Secrets: noSecrets{}, Signer: reportSigner{s}}, slog.New(slog.DiscardHandler))
	var pub answers
	nonce := bytes.Repeat([]byte{9}, bus.SecretNonceSize)
	req, _ := json.Marshal(bus.SecretRequest{Names: []string{"volume-key"}, Nonce: nonce})
	b.handle(t.Context(), &pub, "trust-events.host-1.secret-request", req)
	// A revocation pushed unasked carries no nonce.
	b.pub.Store(&publisher{&pub})
	b.holders.add("host-1", "volume-key")
	b.ReportMade(&report.Report{ID: "r1", HostID: "host-1"})

	want := []struct {
		subject string
		nonce   []byte
		refused bus.SecretRefusal
	}{
		{"trust-agent.host-1.secret-answer", nonce, bus.SecretRefusal{Name: "volume-key", Reason: ReasonInternal}}, // no host store here
		{"trust-secrets.host-1.answer", nil, bus.SecretRefusal{Name: "volume-key", Reason: bus.ReasonRevoked}},
		{"trust-agent.host-1.secret-answer", nil, bus.SecretRefusal{Name: "volume-key", Reason: bus.ReasonRevoked}},
	}
	if len(pub.bodies) != len(want) {
		t.Fatalf("%d answers (%q), want %d", len(pub.bodies), pub.subjects, len(want))
	}
	for i, w := range want {
		if pub.subjects[i] != w.subject {
			t.Errorf("answer %d on %s, want %s", i, pub.subjects[i], w.subject)
		}
		var ans bus.SecretAnswer
		if err := json.Unmarshal([]byte(pub.bodies[i]), &ans); err != nil {
			t.Fatal(err)
		}
		payload, err := report.VerifySecretAnswer(ans.Signed, ca.RootPool(), at)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		var sa bus.SignedSecretAnswer
		if err := json.Unmarshal(payload, &sa); err != nil {
			t.Fatal(err)
		}
		if sa.HostID != "host-1" || !bytes.Equal(sa.Nonce, w.nonce) || !sa.IssuedAt.Equal(at) ||
			len(sa.Refused) != 1 || sa.Refused[0] != w.refused || len(sa.Released) != 0 {
			t.Errorf("answer %d signs %+v, want host-1, nonce %x, issued at %s, refused %+v", i, sa, w.nonce, at, w.refused)
		}
		// Agents before signed answers read the plain fields.
		if len(ans.Refused) != 1 || ans.Refused[0] != w.refused {
			t.Errorf("answer %d: plain refusals %+v, want %+v", i, ans.Refused, w.refused)
		}
	}
}
