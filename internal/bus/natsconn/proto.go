package natsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits on what the server may send. The server is reached over TLS with a
// pinned root, but its input is still parsed as untrusted: a line longer
// than maxLine or a payload larger than the max_payload the server itself
// announced ends the connection.
const (
	maxLine = 32 << 10
	// maxPayloadCap bounds the max_payload a server may announce (NATS
	// itself refuses more than 64 MiB).
	maxPayloadCap = 64 << 20
)

// op is a server protocol operation.
type op int

const (
	opInfo op = iota + 1
	opMsg
	opPing
	opPong
	opOK
	opErr
)

// frame is one operation of the server.
type frame struct {
	op op
	// arg is INFO's JSON and -ERR's message.
	arg     string
	subject string
	reply   string
	sid     uint64
	data    []byte
}

// errProtocol is wrapped by every error about what the server sent.
var errProtocol = errors.New("nats protocol")

// reader reads the server's operations from r.
type reader struct {
	r *bufio.Reader
	// maxPayload bounds a message's size (the server's max_payload).
	maxPayload int
	line       []byte
}

func newReader(r io.Reader, maxPayload int) *reader {
	return &reader{r: bufio.NewReaderSize(r, 4096), maxPayload: maxPayload}
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxLine bytes,
// without the terminator.
func (p *reader) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		chunk, err := p.r.ReadSlice('\n')
		if len(p.line)+len(chunk) > maxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, maxLine)
		}
		p.line = append(p.line, chunk...)
		switch {
		case err == nil:
			l := p.line[:len(p.line)-1]
			return bytes.TrimSuffix(l, []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// next reads the next operation.
func (p *reader) next() (*frame, error) {
	line, err := p.readLine()
	if err != nil {
		return nil, err
	}
	name, rest, _ := bytes.Cut(line, []byte(" "))
	switch {
	case eq(name, "MSG"):
		return p.msg(rest, false)
	case eq(name, "HMSG"):
		return p.msg(rest, true)
	case eq(name, "PING") && len(rest) == 0:
		return &frame{op: opPing}, nil
	case eq(name, "PONG") && len(rest) == 0:
		return &frame{op: opPong}, nil
	case eq(name, "+OK") && len(rest) == 0:
		return &frame{op: opOK}, nil
	case eq(name, "-ERR"):
		return &frame{op: opErr, arg: string(bytes.Trim(bytes.TrimSpace(rest), "'"))}, nil
	case eq(name, "INFO"):
		return &frame{op: opInfo, arg: string(bytes.TrimSpace(rest))}, nil
	}
	return nil, fmt.Errorf("%w: unknown operation %q", errProtocol, truncate(line))
}

// msg parses the arguments of MSG (subject sid [reply] size) or HMSG
// (subject sid [reply] header-size total-size) and reads the payload. A
// message's headers are dropped: the bus carries none.
func (p *reader) msg(args []byte, headers bool) (*frame, error) {
	f := bytes.Fields(args)
	want := 3
	if headers {
		want = 4
	}
	if len(f) != want && len(f) != want+1 {
		return nil, fmt.Errorf("%w: message with %d arguments", errProtocol, len(f))
	}
	fr := &frame{op: opMsg, subject: string(f[0])}
	sid, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: message sid: %w", errProtocol, err)
	}
	fr.sid = sid
	if len(f) == want+1 {
		fr.reply = string(f[2])
	}
	total, err := p.size(f[len(f)-1])
	if err != nil {
		return nil, err
	}
	hdr := 0
	if headers {
		if hdr, err = p.size(f[len(f)-2]); err != nil {
			return nil, err
		}
		if hdr > total {
			return nil, fmt.Errorf("%w: header size %d beyond message size %d", errProtocol, hdr, total)
		}
	}
	buf := make([]byte, total+2)
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return nil, err
	}
	if buf[total] != '\r' || buf[total+1] != '\n' {
		return nil, fmt.Errorf("%w: message payload not followed by CRLF", errProtocol)
	}
	fr.data = buf[hdr:total:total]
	return fr, nil
}

// size parses a payload size of at most the reader's max payload.
func (p *reader) size(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: bad message size %q", errProtocol, truncate(b))
	}
	if n > p.maxPayload {
		return 0, fmt.Errorf("%w: message of %d bytes beyond the max payload %d", errProtocol, n, p.maxPayload)
	}
	return n, nil
}

func eq(b []byte, s string) bool { return len(b) == len(s) && bytes.EqualFold(b, []byte(s)) }

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
