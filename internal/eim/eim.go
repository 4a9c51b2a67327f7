package eim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 5
	DefaultBackoffBase = 200 * time.Millisecond
	DefaultBackoffCap  = 10 * time.Second
)

// MaxDetailBytes bounds attestation_status_detail. The EIM shows the detail of
// a FAILED status as the instance's attestation status; a verdict explanation
// fits easily, a dump of the event log does not belong there.
const MaxDetailBytes = 1024

// hostGUIDLen is the length of a UUID in its canonical text form, the most
// the EIM accepts for host_guid.
const hostGUIDLen = 36

// Status is the verdict reported for a host.
type Status int

// The verdicts the EIM accepts. The zero value is not a valid status.
const (
	StatusVerified Status = iota + 1
	StatusFailed
)

func (s Status) String() string {
	switch s {
	case StatusVerified:
		return "VERIFIED"
	case StatusFailed:
		return "FAILED"
	default:
		return fmt.Sprintf("Status(%d)", int(s))
	}
}

func (s Status) proto() attestmgrv1.AttestationStatus {
	switch s {
	case StatusVerified:
		return attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED
	case StatusFailed:
		return attestmgrv1.AttestationStatus_ATTESTATION_STATUS_FAILED
	default:
		return attestmgrv1.AttestationStatus_ATTESTATION_STATUS_UNSPECIFIED
	}
}

// Sink receives attestation verdicts. *Client sends them to the EIM; Noop
// drops them when no EIM is configured.
type Sink interface {
	Update(ctx context.Context, hostGUID string, status Status, detail string) error
	Close() error
}

// Noop is the Sink used when no EIM address is configured. It still
// validates the update, so that a wrong caller shows up without an EIM.
type Noop struct{}

// Update checks the update and drops it.
func (Noop) Update(_ context.Context, hostGUID string, status Status, detail string) error {
	return validateUpdate(hostGUID, status, detail)
}

// Close does nothing.
func (Noop) Close() error { return nil }

// Config configures the EIM sink. Secrets come from files.
type Config struct {
	// Address is the EIM endpoint as host:port. Empty turns the sink off.
	Address string `yaml:"address" env:"TC_EIM_ADDRESS"`
	// CAFile is a PEM file of the CA certificates that sign the EIM's
	// server certificate. Required when Address is set; read once by New.
	CAFile string `yaml:"caFile" env:"TC_EIM_CA_FILE"`
	// TokenFile holds the bearer token (a JWT). It is read again on every
	// call, so a rotated token is used at once; surrounding white space is
	// trimmed. Required when Address is set.
	TokenFile string `yaml:"tokenFile" env:"TC_EIM_TOKEN_FILE"`
	// ServerName overrides the name checked against the server certificate
	// (default: the host of Address).
	ServerName string `yaml:"serverName" env:"TC_EIM_SERVER_NAME"`
	// Timeout bounds each attempt (DefaultTimeout when 0).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts bounds the attempts of one update, the first included
	// (DefaultMaxAttempts when 0).
	MaxAttempts int `yaml:"maxAttempts"`
	// BackoffBase is the wait before the second attempt; it doubles with
	// each further attempt up to BackoffCap, with jitter
	// (DefaultBackoffBase and DefaultBackoffCap when 0).
	BackoffBase time.Duration `yaml:"backoffBase"`
	BackoffCap  time.Duration `yaml:"backoffCap"`
}

// Enabled reports whether an EIM address is configured.
func (c Config) Enabled() bool { return c.Address != "" }

// Validate reports every problem of an enabled configuration at once. A
// disabled configuration is valid whatever its other fields hold.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if _, port, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("eim address %q: want host:port: %w", c.Address, err))
	} else if port == "" {
		errs = append(errs, fmt.Errorf("eim address %q: port is missing", c.Address))
	}
	if c.CAFile == "" {
		errs = append(errs, errors.New("eim caFile is required when an address is set"))
	}
	if c.TokenFile == "" {
		errs = append(errs, errors.New("eim tokenFile is required when an address is set"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("eim timeout %s is negative", c.Timeout))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("eim maxAttempts %d is negative", c.MaxAttempts))
	}
	if c.BackoffBase < 0 || c.BackoffCap < 0 {
		errs = append(errs, errors.New("eim backoffBase and backoffCap must not be negative"))
	}
	if c.BackoffBase > 0 && c.BackoffCap > 0 && c.BackoffBase > c.BackoffCap {
		errs = append(errs, fmt.Errorf("eim backoffBase %s exceeds backoffCap %s", c.BackoffBase, c.BackoffCap))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.BackoffBase = cmp.Or(c.BackoffBase, DefaultBackoffBase)
	c.BackoffCap = cmp.Or(c.BackoffCap, max(DefaultBackoffCap, c.BackoffBase))
	return c
}

// validateUpdate checks an update before it is sent.
func validateUpdate(hostGUID string, status Status, detail string) error {
	if !isUUID(hostGUID) {
		return &InvalidUpdateError{Field: "host_guid", Reason: fmt.Sprintf("%q is not a UUID", truncate(hostGUID, 64))}
	}
	if status != StatusVerified && status != StatusFailed {
		return &InvalidUpdateError{Field: "attestation_status", Reason: fmt.Sprintf("%s is neither VERIFIED nor FAILED", status)}
	}
	if len(detail) > MaxDetailBytes {
		return &InvalidUpdateError{Field: "attestation_status_detail", Reason: fmt.Sprintf("%d bytes exceed the limit of %d", len(detail), MaxDetailBytes)}
	}
	if !utf8.ValidString(detail) {
		return &InvalidUpdateError{Field: "attestation_status_detail", Reason: "not valid UTF-8"}
	}
	if status == StatusFailed && strings.TrimSpace(detail) == "" {
		// The EIM shows the detail as the instance's status on failure.
		return &InvalidUpdateError{Field: "attestation_status_detail", Reason: "a FAILED status needs a detail"}
	}
	return nil
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form, either case
// (the SMBIOS system UUID as Linux and the kubelet report it).
func isUUID(s string) bool {
	if len(s) != hostGUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHexDigit(c) {
				return false
			}
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// TruncateDetail makes detail fit attestation_status_detail: invalid UTF-8 is
// replaced and the text is cut at a rune boundary to MaxDetailBytes.
func TruncateDetail(detail string) string {
	return truncate(strings.ToValidUTF8(detail, "\uFFFD"), MaxDetailBytes)
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Why a bearer token file is refused, beside an error reading it.
var (
	errEmptyToken   = errors.New("token file is empty")
	errTokenBadByte = errors.New("token holds a byte that is not printable ASCII")
)

// readToken reads the bearer token from path.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the path is the operator's configured token file
	if err != nil {
		return "", &TokenError{Path: path, Err: err}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", &TokenError{Path: path, Err: errEmptyToken}
	}
	for i := 0; i < len(tok); i++ {
		// A header value: visible ASCII and spaces only.
		if c := tok[i]; c < 0x20 || c > 0x7e {
			return "", &TokenError{Path: path, Err: errTokenBadByte}
		}
	}
	return tok, nil
}
