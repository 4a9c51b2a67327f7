package measure

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	// maxIMALine bounds one line of the IMA log (ima-sig and ima-buf lines
	// carry hex signatures and buffers, still far below this).
	maxIMALine = 1 << 20
	// maxIMARead bounds how many bytes of the IMA log are read at all.
	maxIMARead = 1 << 30
)

// imaEntry is one line of the IMA ascii runtime measurement log, split into
// its fields. Data is everything after the template name, verbatim.
type imaEntry struct {
	PCR          int
	TemplateHash string
	Template     string
	Data         string
}

// splitIMALine splits and checks one IMA ascii log line (without its newline):
//
//	10 <template-hash> ima-ng sha256:<file-hash> <path>
//	10 <template-hash> ima <sha1-file-hash> <path>
//	10 <template-hash> ima-sig sha256:<file-hash> <path> [<signature>]
//
// The check is syntactic; the verifier replays the entries against PCR 10.
// ima-buf and ima-modsig lines are accepted with the same digest syntax.
func splitIMALine(line string) (imaEntry, error) {
	var e imaEntry
	// The kernel prints the PCR index with "%2d ", so a one-digit index has a
	// leading space.
	if len(line) < 3 || line[2] != ' ' {
		return e, errors.New("line does not start with a pcr index")
	}
	pcr, rest := strings.TrimPrefix(line[:2], " "), line[3:]
	if pcr == "" || !allDigits(pcr) || (len(pcr) == 2 && pcr[0] == '0') {
		return e, fmt.Errorf("pcr index %q is not a number", clip(line[:2]))
	}
	e.PCR, _ = strconv.Atoi(pcr)
	if e.PCR > 23 {
		return e, fmt.Errorf("pcr index %d out of range 0-23", e.PCR)
	}
	th, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return e, errors.New("fewer than four fields")
	}
	switch len(th) {
	case 40, 64, 96, 128:
	default:
		return e, fmt.Errorf("template hash has %d hex digits, want 40, 64, 96 or 128", len(th))
	}
	if !isLowerHex(th) {
		return e, errors.New("template hash is not lower-case hex")
	}
	e.TemplateHash = th
	tmpl, data, ok := strings.Cut(rest, " ")
	if !ok || data == "" {
		return e, errors.New("fewer than four fields")
	}
	e.Template, e.Data = tmpl, data
	switch tmpl {
	case "ima":
		digest, name, ok := strings.Cut(data, " ")
		if !ok || name == "" {
			return e, errors.New("ima template: want <sha1 hex> <name>")
		}
		if len(digest) != 40 || !isLowerHex(digest) {
			return e, errors.New("ima template: file digest is not 40 lower-case hex digits")
		}
	case "ima-ng", "ima-sig", "ima-buf", "ima-modsig":
		digest, name, ok := strings.Cut(data, " ")
		if !ok || name == "" {
			return e, fmt.Errorf("%s template: want <algo>:<hex> <name>", tmpl)
		}
		if err := checkAlgoDigest(digest); err != nil {
			return e, fmt.Errorf("%s template: %w", tmpl, err)
		}
	case "":
		return e, errors.New("empty template name")
	default:
		return e, fmt.Errorf("unknown template %q", clip(tmpl))
	}
	return e, nil
}

// checkAlgoDigest checks "<algo>:<hex>" as ima-ng prints a file digest.
func checkAlgoDigest(s string) error {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok || algo == "" {
		return errors.New("file digest lacks an algorithm prefix")
	}
	for _, r := range algo {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("bad digest algorithm %q", clip(algo))
		}
	}
	if hex == "" || len(hex)%2 != 0 || !isLowerHex(hex) {
		return errors.New("file digest is not an even number of lower-case hex digits")
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// scanIMALines splits a stream into newline-terminated entries. A final line
// without a newline is an entry too. The newline is not part of the token.
func scanIMALines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func newIMAScanner(r io.Reader) *bufio.Scanner {
	s := bufio.NewScanner(&capReader{r: r, left: maxIMARead})
	s.Buffer(make([]byte, 0, 64<<10), maxIMALine)
	s.Split(scanIMALines)
	return s
}

// capReader fails, rather than ending quietly, once more than left bytes
// have been read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxIMARead)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *Collector) openIMALog() (*os.File, func(), error) {
	r, err := c.openRoot()
	if err != nil {
		return nil, nil, err
	}
	f, err := r.Open(imaLogPath)
	if err != nil {
		_ = r.Close() // read-only root: a close error loses nothing
		if isNotExist(err) {
			return nil, nil, fmt.Errorf("%w: %s does not exist", ErrNoIMA, imaLogPath)
		}
		return nil, nil, fmt.Errorf("open ima log: %w", err)
	}
	// Both are read-only, so a close error loses nothing.
	return f, func() { _ = f.Close(); _ = r.Close() }, nil
}

// IMALog returns the IMA ascii runtime measurement lines from entry index
// offset on, each ending in a newline, together with the offset used and the
// number of entries in the whole log. An offset beyond the end of the log is
// an error wrapping ErrIMAOffset; a node without IMA yields ErrNoIMA; a
// malformed line among those returned yields ErrMalformedIMA; returned lines
// larger than the collector's size limit yield ErrTooLarge.
func (c *Collector) IMALog(offset int) (lines string, offsetUsed int, total int, err error) {
	// Two passes: the first checks and measures the lines, the second
	// copies them into a string of exactly that size, so a log of
	// megabytes is held once rather than in a doubling buffer.
	size := 0
	total, err = c.EachIMALine(offset, -1, func(line []byte) error {
		size += len(line) + 1
		return nil
	})
	if err != nil {
		return "", 0, total, err
	}
	var b strings.Builder
	b.Grow(size)
	if _, err := c.EachIMALine(offset, total, func(line []byte) error {
		b.Write(line)
		b.WriteByte('\n')
		return nil
	}); err != nil {
		return "", 0, 0, err
	}
	if b.Len() != size {
		return "", 0, 0, fmt.Errorf("read ima log: the log changed while it was read (%d bytes, then %d)", size, b.Len())
	}
	return b.String(), offset, total, nil
}

// EachIMALine calls fn with each line of the IMA log, without its newline,
// from entry index offset up to entry end (exclusive; end < 0: to the end
// of the log), after checking it; fn must not keep line. It returns the
// number of entries read: the entries of the whole log when end < 0. It
// fails as IMALog does, and with fn's error.
func (c *Collector) EachIMALine(offset, end int, fn func(line []byte) error) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("ima offset must not be negative, got %d", offset)
	}
	size := int64(0)
	n, err := c.scanIMALog(end, func(i int, line []byte) error {
		if i < offset {
			return nil
		}
		if _, err := splitIMALine(string(line)); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrMalformedIMA, i, err)
		}
		if size += int64(len(line)) + 1; size > c.maxLogSize {
			return fmt.Errorf("ima log from offset %d: %w: more than %d bytes", offset, ErrTooLarge, c.maxLogSize)
		}
		return fn(line)
	})
	if err != nil {
		return 0, err
	}
	if end >= 0 && n < end {
		return n, fmt.Errorf("read ima log: the log has %d entries, fewer than the %d read before", n, end)
	}
	if offset > n {
		return n, fmt.Errorf("%w: offset %d, log has %d entries", ErrIMAOffset, offset, n)
	}
	return n, nil
}

// IMAEntryCount returns the number of entries in the IMA log without keeping
// or checking them; the agent polls it to notice that the log has grown.
func (c *Collector) IMAEntryCount() (int, error) {
	return c.scanIMALog(-1, func(int, []byte) error { return nil })
}

// scanIMALog calls fn with the index and the line (without its newline) of
// each entry of the IMA log, up to entry end (exclusive; end < 0: to the
// end of the log), and returns the number of entries read.
func (c *Collector) scanIMALog(end int, fn func(i int, line []byte) error) (int, error) {
	f, done, err := c.openIMALog()
	if err != nil {
		return 0, err
	}
	defer done()
	s := newIMAScanner(f)
	n := 0
	for (end < 0 || n < end) && s.Scan() {
		if err := fn(n, s.Bytes()); err != nil {
			return 0, err
		}
		n++
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read ima log: %w", err)
	}
	return n, nil
}
