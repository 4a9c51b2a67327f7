package measure

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"trustedcompute.io/tc/internal/evidence"
)

// Paths below the collector's root.
const (
	eventLogPath   = "sys/kernel/security/tpm0/binary_bios_measurements"
	imaDir         = "sys/kernel/security/ima"
	imaLogPath     = "sys/kernel/security/ima/ascii_runtime_measurements"
	mountinfoPath  = "proc/self/mountinfo"
	efiDir         = "sys/firmware/efi"
	secureBootPath = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// Log field keys.
const (
	logKeyPath  = "path"
	logKeyError = "error"
	logKeyFact  = "fact"
)

// smallFileLimit bounds every small sysfs, procfs or /etc file read.
const smallFileLimit = 64 << 10

var (
	// ErrNoEventLog means the node exposes no TCG binary event log (no TPM
	// driver, securityfs not mounted, or an empty log).
	ErrNoEventLog = errors.New("no tcg event log")
	// ErrNoIMA means the node exposes no IMA runtime measurement log.
	ErrNoIMA = errors.New("no ima runtime measurement log")
	// ErrIMAOffset means the requested IMA offset lies beyond the end of the
	// log; the log was most likely reset by a reboot and the caller should ask
	// again from offset 0.
	ErrIMAOffset = errors.New("ima offset beyond the end of the log")
	// ErrTooLarge means a file exceeds the size the collector accepts.
	ErrTooLarge = errors.New("file too large")
	// ErrMalformedIMA means the IMA log contains a line that is not an IMA
	// measurement entry.
	ErrMalformedIMA = errors.New("malformed ima log")
	// ErrHardwareUUID means the SMBIOS system UUID is malformed or is a
	// placeholder that cannot identify a host.
	ErrHardwareUUID = errors.New("invalid hardware uuid")
)

// Collector reads node measurements below Root. The zero value is not ready;
// use New.
type Collector struct {
	// Root is the directory that stands for "/" of the node.
	Root string

	logger        *slog.Logger
	maxLogSize    int64
	mountinfoPath string
}

// Option configures a Collector.
type Option func(*Collector)

// WithLogger sets the logger for facts that could not be collected.
func WithLogger(l *slog.Logger) Option {
	return func(c *Collector) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMaxLogSize bounds the event log and the returned part of the IMA log in
// bytes; the default, and the upper limit, is evidence.MaxMessageSize.
func WithMaxLogSize(n int64) Option {
	return func(c *Collector) {
		if n > 0 && n <= evidence.MaxMessageSize {
			c.maxLogSize = n
		}
	}
}

// WithMountinfo sets the mountinfo file, relative to the root, that names the
// root mount. The default is proc/self/mountinfo; an agent that runs in a
// container with the host's PID namespace uses proc/1/mountinfo so that it
// sees the host's root rather than its own.
func WithMountinfo(rel string) Option {
	return func(c *Collector) {
		if rel != "" {
			c.mountinfoPath = rel
		}
	}
}

// New returns a Collector that reads below root ("" means "/").
func New(root string, opts ...Option) *Collector {
	if root == "" {
		root = "/"
	}
	c := &Collector{
		Root:          root,
		logger:        slog.New(slog.DiscardHandler),
		maxLogSize:    evidence.MaxMessageSize,
		mountinfoPath: mountinfoPath,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *Collector) openRoot() (*os.Root, error) {
	r, err := os.OpenRoot(c.Root)
	if err != nil {
		return nil, fmt.Errorf("open measurement root: %w", err)
	}
	return r, nil
}

// readBounded reads a whole file without trusting its reported size (sysfs
// and securityfs files report 0) and fails when it holds more than limit bytes.
func readBounded(r *os.Root, name string, limit int64) ([]byte, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, ErrTooLarge, limit)
	}
	return data, nil
}

func exists(r *os.Root, name string) bool {
	_, err := r.Stat(name)
	return err == nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
