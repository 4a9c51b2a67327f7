package tpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// response builds a TPM response with the given code and body.
func response(code uint32, body []byte) []byte {
	rsp := make([]byte, headerSize, headerSize+len(body))
	binary.BigEndian.PutUint16(rsp[0:2], 0x8001)
	binary.BigEndian.PutUint32(rsp[2:6], uint32(headerSize+len(body)))
	binary.BigEndian.PutUint32(rsp[6:10], code)
	return append(rsp, body...)
}

func TestReadResponse(t *testing.T) {
	ok := response(0, []byte("payload"))
	tests := []struct {
		name    string
		r       io.Reader
		want    []byte
		wantErr error
	}{
		{name: "a whole response is read", r: bytes.NewReader(ok), want: ok},
		{name: "a response arriving one byte per read is read whole", r: iotest.OneByteReader(bytes.NewReader(ok)), want: ok},
		{name: "a response arriving in halves is read whole", r: iotest.HalfReader(bytes.NewReader(ok)), want: ok},
		{name: "a header-only response is read", r: bytes.NewReader(response(0x101, nil)), want: response(0x101, nil)},
		{name: "the next response stays unread", r: bytes.NewReader(append(bytes.Clone(ok), ok...)), want: ok},
		{name: "a truncated header fails", r: bytes.NewReader(ok[:7]), wantErr: io.ErrUnexpectedEOF},
		{name: "a truncated body fails", r: bytes.NewReader(ok[:len(ok)-1]), wantErr: io.ErrUnexpectedEOF},
		{name: "a size below the header size fails", r: bytes.NewReader([]byte{0x80, 0x01, 0, 0, 0, 9, 0, 0, 0, 0}), wantErr: ErrFraming},
		{name: "a huge size fails before allocating", r: bytes.NewReader([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}), wantErr: ErrFraming},
		{name: "an empty stream fails", r: bytes.NewReader(nil), wantErr: io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readResponse(tc.r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("readResponse = %x, %v; want error %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("readResponse = %x, want %x", got, tc.want)
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add(response(0, []byte("payload")))
	f.Add(response(0x922, nil))
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 9})
	f.Add([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readResponse(iotest.HalfReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		size := binary.BigEndian.Uint32(data[2:6])
		if uint32(len(got)) != size || size < headerSize || size > maxResponseSize {
			t.Fatalf("read %d bytes for size field %d", len(got), size)
		}
		if !bytes.HasPrefix(data, got) {
			t.Fatal("response is not a prefix of the stream")
		}
	})
}

// scriptedTPM answers commands from a list of responses.
type scriptedTPM struct {
	responses [][]byte
	sent      int
}

func (s *scriptedTPM) Send([]byte) ([]byte, error) {
	rsp := s.responses[min(s.sent, len(s.responses)-1)]
	s.sent++
	return rsp, nil
}

func (s *scriptedTPM) Close() error { return nil }

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		responses [][]byte
		wantSent  int
		wantCode  uint32
	}{
		{name: "success is returned at once", responses: [][]byte{response(0, nil)}, wantSent: 1},
		{name: "an error is returned at once", responses: [][]byte{response(0x18b, nil)}, wantSent: 1, wantCode: 0x18b},
		{name: "retry, yielded and testing are resent until success", responses: [][]byte{response(rcRetry, nil), response(rcYielded, nil), response(rcTesting, nil), response(0, nil)}, wantSent: 4},
		{name: "a tpm that always asks to retry is given up on", responses: [][]byte{response(rcRetry, nil)}, wantSent: maxRetries, wantCode: rcRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedTPM{responses: tc.responses}
			r := retryTPM{TPMCloser: s, sleep: func(time.Duration) {}}
			rsp, err := r.Send([]byte("cmd"))
			if err != nil {
				t.Fatal(err)
			}
			if s.sent != tc.wantSent {
				t.Errorf("sent %d times, want %d", s.sent, tc.wantSent)
			}
			if code := binary.BigEndian.Uint32(rsp[6:10]); code != tc.wantCode {
				t.Errorf("response code %#x, want %#x", code, tc.wantCode)
			}
		})
	}
}

func TestTrimDER(t *testing.T) {
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x05}
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{name: "padding after the certificate is cut", in: append(bytes.Clone(der), 0, 0, 0xff), want: der},
		{name: "an exact certificate is kept", in: der, want: der},
		{name: "data that is not DER is kept for the parser to reject", in: []byte{0xff, 0xff}, want: []byte{0xff, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := trimDER(tc.in); !bytes.Equal(got, tc.want) {
				t.Fatalf("trimDER(%x) = %x, want %x", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzTrimDER(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x05, 0, 0})
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got := trimDER(data)
		if !bytes.HasPrefix(data, got) {
			t.Fatal("trimDER result is not a prefix of its input")
		}
	})
}
