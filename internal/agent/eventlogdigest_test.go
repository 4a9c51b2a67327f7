package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
)

// An agent leaves its event log out of a quote reply only when the request
// names that very log; a request that names none, as an older verifier's
// does, gets the log and a reply such a verifier decodes (strictly: no
// field it does not know).
func TestAnAgentLeavesOutOnlyTheEventLogTheRequestNames(t *testing.T) {
	root := imaRoot(t, []string{"/usr/bin/kata-runtime"})
	log := sandbox.BootLogSecureBootOn
	path := filepath.Join(root, "sys/kernel/security/tpm0/binary_bios_measurements")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, log, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{HostID: "edge-1"}, fakeTPM{}, measure.New(root), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(log)
	b64 := base64.StdEncoding.EncodeToString
	const head = `{"version":"tc/v1","nonce":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","pcrs":[0,7,10],"pcrbanks":["SHA256"],"ima_measure_enabled":true`
	tests := []struct {
		name      string
		request   string
		sendsLog  bool
		named     []byte
		errorCode string
	}{
		{"a request of an older verifier gets the log", head + `,"event_log":true}`, true, nil, ""},
		{"a request naming the node's log gets its name instead", head + `,"event_log":true,"event_log_digest":"` + b64(sum[:]) + `"}`, false, sum[:], ""},
		{"a request naming another log gets the log", head + `,"event_log":true,"event_log_digest":"` + b64(bytes.Repeat([]byte{1}, 32)) + `"}`, true, nil, ""},
		{"a request naming a log without asking for one is refused", head + `,"event_log_digest":"` + b64(sum[:]) + `"}`, false, nil, evidence.CodeBadRequest},
		{"a name of the wrong size is refused", head + `,"event_log":true,"event_log_digest":"` + b64(sum[:20]) + `"}`, false, nil, evidence.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := a.encodeReply(bus.QuoteRequest, a.Handle(context.Background(), bus.QuoteRequest, []byte(tt.request)))
			if err != nil {
				t.Fatal(err)
			}
			var resp evidence.QuoteResponse
			if err := evidence.Decode(body, &resp); err != nil {
				t.Fatal(err)
			}
			if tt.errorCode != "" {
				if resp.Error == nil || resp.Error.Code != tt.errorCode {
					t.Fatalf("reply error %v, want %s", resp.Error, tt.errorCode)
				}
				return
			}
			if resp.Error != nil {
				t.Fatalf("reply error %v", resp.Error)
			}
			if got := bytes.Equal(resp.EventLog, log); got != tt.sendsLog || (!tt.sendsLog && resp.EventLog != nil) {
				t.Errorf("reply carries %d bytes of event log, want the log: %v", len(resp.EventLog), tt.sendsLog)
			}
			if !bytes.Equal(resp.EventLogDigest, tt.named) {
				t.Errorf("reply names log %x, want %x", resp.EventLogDigest, tt.named)
			}
			if tt.named == nil && bytes.Contains(body, []byte(`"event_log_digest"`)) {
				t.Errorf("reply %s has a field an older verifier refuses", body)
			}
		})
	}
}
