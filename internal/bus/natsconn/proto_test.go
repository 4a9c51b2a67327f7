package natsconn

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestTheReaderParsesWhatTheServerSends(t *testing.T) {
	tests := []struct {
		name, in string
		want     frame
	}{
		{"a message without a reply subject", "MSG trust-agent.H1.quote-request 7 5\r\nhello\r\n",
			frame{op: opMsg, subject: "trust-agent.H1.quote-request", sid: 7, data: []byte("hello")}},
		{"a message with a reply subject", "MSG a.b 1 _INBOX.x.y 2\r\nhi\r\n",
			frame{op: opMsg, subject: "a.b", sid: 1, reply: "_INBOX.x.y", data: []byte("hi")}},
		{"an empty message", "MSG a 1 0\r\n\r\n", frame{op: opMsg, subject: "a", sid: 1, data: []byte{}}},
		{"a message with headers drops the headers", "HMSG a 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
			frame{op: opMsg, subject: "a", sid: 2, reply: "r", data: []byte("hi")}},
		{"a ping", "PING\r\n", frame{op: opPing}},
		{"a pong in lower case", "pong\r\n", frame{op: opPong}},
		{"an OK", "+OK\r\n", frame{op: opOK}},
		{"an error without its quotes", "-ERR 'Permissions Violation for Subscription to \"x\"'\r\n",
			frame{op: opErr, arg: `Permissions Violation for Subscription to "x"`}},
		{"an info", "INFO {\"max_payload\":1024}\r\n", frame{op: opInfo, arg: `{"max_payload":1024}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newReader(strings.NewReader(tt.in), 1024).next()
			if err != nil {
				t.Fatal(err)
			}
			if f.op != tt.want.op || f.arg != tt.want.arg || f.subject != tt.want.subject || f.sid != tt.want.sid ||
				f.reply != tt.want.reply || !bytes.Equal(f.data, tt.want.data) {
				t.Fatalf("got %+v, want %+v", *f, tt.want)
			}
		})
	}
}

func TestTheReaderRefusesWhatBreaksTheLimits(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"a message beyond the max payload", "MSG a 1 1025\r\n" + strings.Repeat("x", 1025) + "\r\n"},
		{"a line beyond the line limit", "INFO " + strings.Repeat("x", maxLine) + "\r\n"},
		{"a negative size", "MSG a 1 -1\r\n\r\n"},
		{"a payload not ended by CRLF", "MSG a 1 2\r\nhiXX"},
		{"headers larger than the message", "HMSG a 1 10 2\r\nhi\r\n"},
		{"a message without a size", "MSG a 1\r\n"},
		{"a message with too many arguments", "MSG a 1 r x 2\r\nhi\r\n"},
		{"an unknown operation", "HELLO\r\n"},
		{"a ping with arguments", "PING x\r\n"},
		{"a sid that is not a number", "MSG a x 2\r\nhi\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newReader(strings.NewReader(tt.in), 1024).next()
			if !errors.Is(err, errProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want a protocol error", err)
			}
		})
	}
}

// FuzzReader feeds arbitrary server input to the reader: it never panics,
// never hands out a payload beyond the max payload, and never reads a line
// beyond the line limit.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"INFO {}\r\nPING\r\n", "MSG a 1 r 2\r\nhi\r\n", "HMSG a 1 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
		"-ERR 'x'\r\n+OK\r\nPONG\r\n", "MSG a 1 99999999999999999999\r\n",
	} {
		f.Add([]byte(s))
	}
	const maxPayload = 4096
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newReader(bytes.NewReader(in), maxPayload)
		for range 64 {
			fr, err := r.next()
			if err != nil {
				return
			}
			if len(fr.data) > maxPayload || len(fr.arg) > maxLine || len(fr.subject) > maxLine {
				t.Fatalf("frame beyond the limits: %d bytes of data, %d of arg", len(fr.data), len(fr.arg))
			}
		}
	})
}
