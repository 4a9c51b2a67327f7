package tpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// headerSize is the size of a TPM response header: tag (2), size (4), code (4).
const headerSize = 10

// maxResponseSize bounds a response read from a socket. The largest TPM
// responses (a full capability list, an NV read) are a few kilobytes.
const maxResponseSize = 1 << 16

// socketTimeout bounds one command round trip on a socket transport, so a
// hung swtpm fails the command instead of the caller.
const socketTimeout = 2 * time.Minute

// socketTPM is a TPM command transport over a connection to swtpm's server
// socket: raw TPM commands in, raw TPM responses out. It never sends the
// Microsoft simulator's platform commands (power-on, NV-on), which swtpm
// does not speak.
type socketTPM struct {
	mu   sync.Mutex
	conn net.Conn
}

func dialSocket(ctx context.Context, network, address string) (*socketTPM, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("dial swtpm %s %s: %w", network, address, err)
	}
	return &socketTPM{conn: conn}, nil
}

// Send writes one command and reads its whole response.
func (s *socketTPM) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conn.SetDeadline(time.Now().Add(socketTimeout)); err != nil {
		return nil, fmt.Errorf("set swtpm deadline: %w", err)
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("write tpm command: %w", err)
	}
	return readResponse(s.conn)
}

// Close closes the connection.
func (s *socketTPM) Close() error { return s.conn.Close() }

// ErrFraming reports a TPM response whose header is not plausible.
var ErrFraming = errors.New("malformed tpm response framing")

// readResponse reads exactly one TPM response from r: the 10-byte header,
// then the rest of the bytes its size field announces. A read may return
// part of a response; this keeps reading until the whole is in.
func readResponse(r io.Reader) ([]byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read tpm response header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < headerSize || size > maxResponseSize {
		return nil, fmt.Errorf("%w: size field %d outside %d..%d", ErrFraming, size, headerSize, maxResponseSize)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(r, rsp[headerSize:]); err != nil {
		return nil, fmt.Errorf("read tpm response body (%d bytes): %w", size-headerSize, err)
	}
	return rsp, nil
}

// Response codes after which the TPM asks to send the command again.
const (
	rcRetry   = 0x922 // TPM_RC_RETRY
	rcYielded = 0x908 // TPM_RC_YIELDED
	rcTesting = 0x90a // TPM_RC_TESTING
)

// maxRetries bounds how often a command is resent on RETRY, YIELDED or TESTING.
const maxRetries = 20

// retryTPM resends a command while the TPM answers that it could not start
// it yet (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING), as Part 1 of the
// TPM 2.0 specification asks callers to do. swtpm answers TPM_RC_RETRY now
// and then, e.g. to a quote right after a key was created.
//
// It also makes every command exchange atomic: a TPM connection carries one
// command and its response at a time, and the agent's request handlers, its
// IMA watcher and (in tests and the sandbox) a measuring "kernel" may all use
// one TPM. Multi-command sequences stay correct when interleaved because TPM
// sessions and objects are addressed by handle.
type retryTPM struct {
	transport.TPMCloser
	sleep func(time.Duration)
	mu    *sync.Mutex
}

func (r retryTPM) Send(cmd []byte) ([]byte, error) {
	if r.mu != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	for attempt := 1; ; attempt++ {
		rsp, err := r.TPMCloser.Send(cmd)
		if err != nil || len(rsp) < headerSize || attempt == maxRetries {
			return rsp, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcRetry, rcYielded, rcTesting:
			r.sleep(time.Duration(min(attempt, 10)) * time.Millisecond)
		default:
			return rsp, nil
		}
	}
}
