package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
)

// imaLines is what a Measurer offers to stream its IMA log (measure.Collector
// does): each checked line from entry offset up to entry end (end < 0: to
// the end of the log), and the number of entries read.
type imaLines interface {
	EachIMALine(offset, end int, fn func(line []byte) error) (int, error)
}

// streamedQuote is a quote reply whose IMA lines are not held in memory:
// they are read from the log again, up to the entry count read when the
// evidence was collected, straight into the encoded reply. A node's IMA log
// can be megabytes; held as a string and then encoded, it would be in the
// agent's heap two to four times at once.
type streamedQuote struct {
	resp   *evidence.QuoteResponse
	src    imaLines
	offset int
	end    int // entries of the log when it was first read
	size   int // bytes of the JSON string body of the lines
}

// quote answers a quote request: the evidence with the IMA log streamed
// when the Measurer can stream it, and Evidence otherwise.
func (a *Agent) quote(ctx context.Context, req evidence.QuoteRequest) (any, error) {
	src, ok := a.measure.(imaLines)
	if !ok {
		return a.Evidence(ctx, req)
	}
	q := &streamedQuote{src: src, offset: req.IMAOffset}
	resp, err := a.collect(ctx, req, func(resp *evidence.QuoteResponse) error {
		var scratch []byte
		total, err := src.EachIMALine(req.IMAOffset, -1, func(line []byte) error {
			scratch = appendJSONLine(scratch[:0], line)
			q.size += len(scratch)
			return nil
		})
		switch {
		case errors.Is(err, measure.ErrNoIMA):
			// As in Evidence: no IMA, no entries.
			q.size = 0
		case err != nil:
			return fmt.Errorf("ima log: %w", err)
		default:
			resp.IMAOffset, resp.IMAEntries, q.end = req.IMAOffset, total, total
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.resp = resp
	return q, nil
}

// imaLogField is the key the IMA lines have in a quote reply
// (evidence.QuoteResponse.IMALog).
const imaLogField = `,"ima_log":"`

// head is the response without its IMA lines, as encoding/json writes it,
// and the size of the whole reply.
func (q *streamedQuote) head() ([]byte, int, error) {
	body, err := json.Marshal(q.resp)
	if err != nil || q.size == 0 {
		return body, len(body), err
	}
	if len(body) < 2 || body[len(body)-1] != '}' {
		return nil, 0, errors.New("encode quote reply: not a JSON object")
	}
	return body, len(body) - 1 + len(imaLogField) + q.size + 2, nil
}

// writeTo writes the reply with head (from q.head): the response with the
// ima_log member appended, its lines read from the log again.
func (q *streamedQuote) writeTo(w io.Writer, head []byte) error {
	if q.size == 0 {
		_, err := w.Write(head)
		return err
	}
	if _, err := w.Write(head[:len(head)-1]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, imaLogField); err != nil {
		return err
	}
	var line []byte
	written := 0
	if _, err := q.src.EachIMALine(q.offset, q.end, func(l []byte) error {
		line = appendJSONLine(line[:0], l)
		written += len(line)
		if written > q.size {
			return errIMAChanged
		}
		_, err := w.Write(line)
		return err
	}); err != nil {
		return fmt.Errorf("ima log: %w", err)
	}
	if written != q.size {
		return fmt.Errorf("ima log: %w (%d bytes, then %d)", errIMAChanged, q.size, written)
	}
	_, err := io.WriteString(w, `"}`)
	return err
}

// errIMAChanged is the error of an IMA log that changed between its two
// reads.
var errIMAChanged = errors.New("the log changed while it was read")

// encode returns the whole reply.
func (q *streamedQuote) encode() ([]byte, error) {
	head, size, err := q.head()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(size)
	if err := q.writeTo(&b, head); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// streamPublisher publishes a message that write produces straight onto
// the connection (natsconn does), so that a quote reply of megabytes is
// never held whole in the agent's heap.
type streamPublisher interface {
	PublishStream(subject string, size int, write func(w io.Writer) error) error
}

// reply answers req on subject: streamed when both the reply and the
// connection allow it, encoded whole otherwise.
func (a *Agent) reply(nc publisher, subject string, req bus.Request, reply any) error {
	q, ok := reply.(*streamedQuote)
	sp, canStream := nc.(streamPublisher)
	if !ok || !canStream {
		body, err := a.encodeReply(req, reply)
		if err != nil {
			return fmt.Errorf("encode reply: %w", err)
		}
		return nc.Publish(subject, body)
	}
	head, size, err := q.head()
	if err != nil {
		body, err := json.Marshal(&evidence.QuoteResponse{Version: evidence.Version, Error: a.fail(req, err)})
		if err != nil {
			return err
		}
		return nc.Publish(subject, body)
	}
	return sp.PublishStream(subject, size, func(w io.Writer) error { return q.writeTo(w, head) })
}

// encodeReply encodes the reply to req. A quote reply that cannot be
// encoded is answered with its error.
func (a *Agent) encodeReply(req bus.Request, reply any) ([]byte, error) {
	q, ok := reply.(*streamedQuote)
	if !ok {
		return json.Marshal(reply)
	}
	body, err := q.encode()
	if err != nil {
		return json.Marshal(&evidence.QuoteResponse{Version: evidence.Version, Error: a.fail(req, err)})
	}
	return body, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONLine appends line and a newline as the body of a JSON string,
// escaped as encoding/json escapes a string (HTML characters too, and
// invalid UTF-8 as U+FFFD), so that the reply decodes to what encoding the
// whole log as a Go string would.
func appendJSONLine(dst, line []byte) []byte {
	for i := 0; i < len(line); {
		c := line[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&':
				dst = append(dst, c)
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(line[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, line[i:i+size]...)
		}
		i += size
	}
	return append(dst, '\\', 'n')
}
