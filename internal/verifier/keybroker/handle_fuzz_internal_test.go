package keybroker

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/store"
)

// noSecrets is a secret store that holds no secret.
type noSecrets struct{ SecretStore }

func (noSecrets) ListBrokerSecrets(context.Context) ([]store.BrokerSecret, error) { return nil, nil }

// answers records what the broker publishes.
type answers struct{ subjects, bodies []string }

func (a *answers) Publish(subject string, data []byte) error {
	a.subjects, a.bodies = append(a.subjects, subject), append(a.bodies, string(data))
	return nil
}

// FuzzHandleSecretRequest plays the subject and body of a secret request,
// which the agent (root on its node) writes: the broker never panics,
// answers at most once and only on the answer subject of the host the
// subject names, releases nothing it does not hold, and answers each name
// of a request of at most 64 names.
func FuzzHandleSecretRequest(f *testing.F) {
	f.Add("trust-secrets.host-1.request", `{"names":["volume-key"]}`)
	f.Add("trust-secrets.host-1.request", `{"names":[]}`)
	f.Add("trust-secrets.host-1.request", `{"names":["a","b","a"]}`)
	f.Add("trust-secrets.*.request", `{"names":["a"]}`)
	f.Add("trust-secrets.host-1.answer", `{"names":["a"]}`)
	f.Add("trust-secrets.host-1.request", `{"names":"a"}`)
	f.Add("trust-events.host-1.secret-request", `{"names":["volume-key"]}`)
	f.Add("trust-events.host-1.request", `{"names":["a"]}`)
	f.Add("trust-agent.host-1.secret-answer", `{"names":["a"]}`)
	f.Fuzz(func(t *testing.T, subject, body string) {
		b := New(Config{}, Deps{Secrets: noSecrets{}}, slog.New(slog.DiscardHandler))
		var pub answers
		b.handle(t.Context(), &pub, subject, []byte(body))
		host, g, err := bus.ParseSecretRequestSubject(subject)
		if err != nil {
			if len(pub.subjects) != 0 {
				t.Fatalf("answered %q to a request on the unexpected subject %q", pub.subjects, subject)
			}
			return
		}
		var req bus.SecretRequest
		if json.Unmarshal([]byte(body), &req) != nil || len(body) > maxRequestSize || len(req.Names) > maxNamesPerRequest || len(req.Nonce) > bus.MaxSecretNonceSize {
			if len(pub.subjects) != 0 {
				t.Fatalf("answered a malformed request: %q", pub.bodies)
			}
			return
		}
		want, _ := g.SecretAnswerSubject(host)
		if len(pub.subjects) != 1 || pub.subjects[0] != want {
			t.Fatalf("answered on %q, want once on %q", pub.subjects, want)
		}
		var ans bus.SecretAnswer
		if err := json.Unmarshal([]byte(pub.bodies[0]), &ans); err != nil {
			t.Fatalf("answer %q: %v", pub.bodies[0], err)
		}
		if len(ans.Released) != 0 || len(ans.Refused) != len(req.Names) {
			t.Fatalf("answer %+v to %d names: want each refused", ans, len(req.Names))
		}
	})
}
