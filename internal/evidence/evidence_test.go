package evidence

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/errtest"
)

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"a well-formed quote request decodes", `{"version":"tc/v1","nonce":"AQID","pcrs":[0,7],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true}`, ""},
		{"an unknown field is refused", `{"version":"tc/v1","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true,"extra":1}`, "unknown field"},
		{"an unknown version is refused", `{"version":"tc/v0","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true}`, "unsupported evidence version"},
		{"a missing version is refused", `{"nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true}`, "unsupported evidence version"},
		{"trailing data is refused", `{"version":"tc/v1","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true} {}`, "trailing data"},
		// Decoder.More says false before a stray closing brace or bracket.
		{"a trailing closing brace is refused", `{"version":"tc/v1","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true}}`, "trailing data"},
		{"a trailing closing bracket is refused", `{"version":"tc/v1","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"ima_measure_enabled":false,"event_log":true}]`, "trailing data"},
		{"a value of the wrong type is refused", `{"version":"tc/v1","nonce":5}`, "cannot unmarshal"},
		{"malformed JSON is refused", `{"version":`, "decode evidence message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req QuoteRequest
			errtest.Want(t, Decode([]byte(tt.in), &req), tt.wantErr)
		})
	}
}

func TestDecodeRefusesOversizedMessages(t *testing.T) {
	big := make([]byte, MaxMessageSize+1)
	var resp QuoteResponse
	if err := Decode(big, &resp); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("Decode of %d bytes: err = %v, want a size error", len(big), err)
	}
}

func TestDecodeReportsTheVersionErrorAsErrVersion(t *testing.T) {
	var ev Event
	err := Decode([]byte(`{"version":"other","type":"boot","host_id":"h","time":"2026-01-01T00:00:00Z","reset_count":1}`), &ev)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
}

func TestQuoteRequestValidate(t *testing.T) {
	ok := QuoteRequest{Version: Version, Nonce: make([]byte, NonceSize), PCRs: []int{0, 7, 10}, Banks: []string{BankSHA256, BankSHA384}}
	tests := []struct {
		name    string
		mutate  func(*QuoteRequest)
		wantErr string
	}{
		{"a sound request is valid", func(*QuoteRequest) {}, ""},
		{"an empty nonce is refused", func(r *QuoteRequest) { r.Nonce = nil }, "nonce must be"},
		{"an oversized nonce is refused", func(r *QuoteRequest) { r.Nonce = make([]byte, MaxNonceSize+1) }, "nonce must be"},
		{"no PCRs is refused", func(r *QuoteRequest) { r.PCRs = nil }, "at least one PCR"},
		{"a PCR out of range is refused", func(r *QuoteRequest) { r.PCRs = []int{24} }, "out of range"},
		{"a PCR named twice is refused", func(r *QuoteRequest) { r.PCRs = []int{7, 7} }, "named twice"},
		{"an unknown bank is refused", func(r *QuoteRequest) { r.Banks = []string{"MD5"} }, "unknown pcr bank"},
		{"a negative IMA offset is refused", func(r *QuoteRequest) { r.IMAOffset = -1 }, "ima_offset"},
		{"a named event log that is asked for is valid", func(r *QuoteRequest) { r.EventLog, r.EventLogDigest = true, make([]byte, EventLogDigestSize) }, ""},
		{"a named event log of the wrong size is refused", func(r *QuoteRequest) { r.EventLog, r.EventLogDigest = true, make([]byte, 20) }, "event_log_digest must be"},
		{"a named event log that is not asked for is refused", func(r *QuoteRequest) { r.EventLogDigest = make([]byte, EventLogDigestSize) }, "not asked for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			r.PCRs = append([]int(nil), ok.PCRs...)
			tt.mutate(&r)
			errtest.Want(t, r.Validate(), tt.wantErr)
		})
	}
}

// FuzzDecode feeds arbitrary bytes to the strict decoder of every message an
// agent or a verifier receives: it must never panic, and whatever it accepts
// must carry the current version and survive a re-encode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":"tc/v1","nonce":"AQID","pcrs":[0,7],"pcrbanks":["SHA256"],"ima_measure_enabled":true,"event_log":true}`))
	f.Add([]byte(`{"version":"tc/v1","attest":"/1RDR4AYACIAC","signature":"AAQ=","pcrs":[{"bank":"SHA256","index":0,"value":"AA=="}]}`))
	f.Add([]byte(`{"version":"tc/v1","nonce":"AQID","pcrs":[0],"pcrbanks":["SHA256"],"event_log":true,"event_log_digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"version":"tc/v1","attest":"","signature":"","pcrs":[],"event_log_digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"version":"tc/v1","type":"boot","host_id":"h1","time":"2026-01-01T00:00:00Z","reset_count":3}`))
	f.Add([]byte(`{"version":"tc/v1","credential_blob":"AA==","encrypted_secret":"AA=="}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":"tc/v1"}{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []Message{
			&QuoteRequest{}, &QuoteResponse{}, &HostInfo{}, &AKInfo{}, &Event{}, &ActivateRequest{}, &ActivateResponse{}, &VersionInfo{},
		}
		for _, v := range targets {
			if err := Decode(data, v); err != nil {
				continue
			}
			if v.wireVersion() != Version {
				t.Fatalf("accepted a message of version %q", v.wireVersion())
			}
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("re-encode of an accepted message failed: %v", err)
			}
		}
	})
}
