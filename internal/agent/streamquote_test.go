package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
)

// fakeTPM quotes without a TPM: the streamed reply is about the logs.
type fakeTPM struct{}

func (fakeTPM) Quote(nonce []byte, _ []int, _ []string) (*evidence.QuoteResponse, error) {
	return &evidence.QuoteResponse{Attest: append([]byte("attest:"), nonce...), Signature: []byte("sig")}, nil
}
func (fakeTPM) Info() (evidence.TPMInfo, error)                { return evidence.TPMInfo{Present: true}, nil }
func (fakeTPM) ResetCount() (uint32, error)                    { return 1, nil }
func (fakeTPM) KeyInfo() (evidence.AKInfo, error)              { return evidence.AKInfo{}, nil }
func (fakeTPM) ActivateCredential(_, _ []byte) ([]byte, error) { return nil, nil }

const imaHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// imaRoot writes a node root whose IMA log holds paths with bytes that JSON
// must escape: HTML characters, quotes, controls, U+2028, invalid UTF-8.
func imaRoot(t *testing.T, paths []string) string {
	t.Helper()
	root := t.TempDir()
	var b strings.Builder
	for _, p := range paths {
		b.WriteString("10 " + imaHash + " ima-ng sha256:" + imaHash + " " + p + "\n")
	}
	dir := filepath.Join(root, "sys/kernel/security/ima")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ascii_runtime_measurements"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestAStreamedQuoteReplyDecodesToTheEvidence(t *testing.T) {
	paths := []string{"/usr/bin/a<b>&c", "/x/\"quoted\"\\back", "/ctl\x01\x1f\x7f\b\f\t\r", "/line\u2028sep\u2029", "/bad\xff\xfeutf8", "/plain/lib.so"}
	tests := []struct {
		name   string
		offset int
	}{
		{name: "the whole log is streamed from offset 0", offset: 0},
		{name: "the lines after an offset are streamed", offset: 4},
		{name: "an offset at the end of the log sends no lines", offset: len(paths)},
	}
	a, err := New(Config{HostID: "edge-1"}, fakeTPM{}, measure.New(imaRoot(t, paths)), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := imaQuoteRequest(tt.offset)
			want, err := a.Evidence(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			reply := a.Handle(context.Background(), bus.QuoteRequest, mustJSON(t, req))
			if _, ok := reply.(*streamedQuote); !ok {
				t.Fatalf("reply is %T, want a streamed quote", reply)
			}
			got, err := a.encodeReply(bus.QuoteRequest, reply)
			if err != nil {
				t.Fatal(err)
			}
			var gotResp, wantResp evidence.QuoteResponse
			if err := evidence.Decode(got, &gotResp); err != nil {
				t.Fatalf("decode streamed reply %s: %v", got, err)
			}
			if err := evidence.Decode(mustJSON(t, want), &wantResp); err != nil {
				t.Fatal(err)
			}
			// The host facts carry the time they were read; compare the rest.
			gotResp.HostInfo, wantResp.HostInfo = nil, nil
			if !reflect.DeepEqual(gotResp, wantResp) {
				t.Errorf("streamed reply decodes to\n%+v\nwant\n%+v", gotResp, wantResp)
			}
			if tt.offset == 0 && !strings.Contains(gotResp.IMALog, "/usr/bin/a<b>&c") {
				t.Errorf("streamed IMA log %q lacks the first path", gotResp.IMALog)
			}
		})
	}
}

// quoteOfAShrunkLog is a quote reply whose IMA log shrank after it was
// read: the node rebooted between reading the log and sending it, and the
// log restarted with fewer entries. The reply must not be a truncated log.
func quoteOfAShrunkLog(t *testing.T) (*Agent, any) {
	t.Helper()
	root := imaRoot(t, []string{"/a", "/b", "/c"})
	a, err := New(Config{HostID: "edge-1"}, fakeTPM{}, measure.New(root), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reply := a.Handle(context.Background(), bus.QuoteRequest, mustJSON(t, imaQuoteRequest(0)))
	if err := os.WriteFile(filepath.Join(root, "sys/kernel/security/ima/ascii_runtime_measurements"),
		[]byte("10 "+imaHash+" ima-ng sha256:"+imaHash+" /a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return a, reply
}

func TestAQuoteReplyOfALogThatShrankIsAnError(t *testing.T) {
	a, reply := quoteOfAShrunkLog(t)
	body, err := a.encodeReply(bus.QuoteRequest, reply)
	if err != nil {
		t.Fatal(err)
	}
	var resp evidence.QuoteResponse
	if err := evidence.Decode(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.IMALog != "" {
		t.Fatalf("reply after the log shrank: error %v, ima log %q; want an error and no log", resp.Error, resp.IMALog)
	}
}

// streamConn records what is published; PublishStream checks the size as
// natsconn does.
type streamConn struct {
	published []byte
	streamed  bool
}

func (c *streamConn) Publish(_ string, data []byte) error {
	c.published = bytes.Clone(data)
	return nil
}

func (c *streamConn) PublishStream(_ string, size int, write func(w io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	if b.Len() != size {
		return fmt.Errorf("wrote %d bytes of %d", b.Len(), size)
	}
	c.published, c.streamed = b.Bytes(), true
	return nil
}

func TestAQuoteReplyIsStreamedOntoTheConnectionAsItWouldBeEncoded(t *testing.T) {
	a, err := New(Config{HostID: "edge-1"}, fakeTPM{}, measure.New(imaRoot(t, []string{"/a<b>", "/\xff", "/c"})), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reply := a.Handle(context.Background(), bus.QuoteRequest, mustJSON(t, imaQuoteRequest(0)))
	want, err := a.encodeReply(bus.QuoteRequest, reply)
	if err != nil {
		t.Fatal(err)
	}
	var c streamConn
	if err := a.reply(&c, "_INBOX.x", bus.QuoteRequest, reply); err != nil {
		t.Fatal(err)
	}
	if !c.streamed || !bytes.Equal(c.published, want) {
		t.Fatalf("streamed %v:\n%s\nwant\n%s", c.streamed, c.published, want)
	}
}

func TestAStreamedReplyOfALogThatShrankIsNotSent(t *testing.T) {
	a, reply := quoteOfAShrunkLog(t)
	var c streamConn
	if err := a.reply(&c, "_INBOX.x", bus.QuoteRequest, reply); err == nil {
		t.Fatalf("a truncated log was sent: %s", c.published)
	}
}

// imaQuoteRequest asks for a quote of PCR 10 and the IMA log from offset on.
func imaQuoteRequest(offset int) evidence.QuoteRequest {
	return evidence.QuoteRequest{Version: evidence.Version, Nonce: bytes.Repeat([]byte{7}, 32), PCRs: []int{10},
		Banks: []string{evidence.BankSHA256}, IMAMeasureEnabled: true, IMAOffset: offset}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzAppendJSONLineEncodesAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&", "\"\\", "\x00\x01\b\f\n\r\t\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é€𝄞", "\xe2\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want, err := json.Marshal(string(line) + "\n")
		if err != nil {
			t.Fatal(err)
		}
		got := append(append([]byte{'"'}, appendJSONLine(nil, line)...), '"')
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSONLine(%q) = %s, want %s", line, got, want)
		}
	})
}
