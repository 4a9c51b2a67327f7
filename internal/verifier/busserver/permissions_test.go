package busserver

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// publishRefused returns a probe that publishes on subj through nc and
// succeeds when the server reports the publication as a permissions
// violation (in log, nc's recorder).
func publishRefused(nc *nats.Conn, log *recorder, subj string) func() error {
	return func() error {
		if err := nc.Publish(subj, []byte(`{"nonce":"n"}`)); err != nil {
			return err
		}
		_ = nc.Flush()
		if !log.waitFor("Permissions Violation for Publish to \""+subj+"\"", 2*time.Second) {
			return errors.New("no permission violation")
		}
		return nil
	}
}

// subscribeRefused returns a probe that subscribes to subj through nc and
// succeeds when the server refuses the subscription.
func subscribeRefused(nc *nats.Conn, subj string) func() error {
	return func() error {
		sub, err := nc.SubscribeSync(subj)
		if err != nil {
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := nc.Flush(); err != nil {
			return err
		}
		if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
			return fmt.Errorf("NextMsg = %w, want a permissions violation", err)
		}
		return nil
	}
}

// probe is one named attempt that must be refused: try fails with an error
// when it was not.
type probe struct {
	name string
	try  func() error
}

// runProbes runs each probe as a subtest.
func runProbes(t *testing.T, probes []probe) {
	t.Helper()
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			if err := p.try(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
