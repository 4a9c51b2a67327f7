package keybroker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Policy limits and defaults.
const (
	// DefaultMaxEvidenceAge is the evidence age (and lease) of a policy
	// that names none.
	DefaultMaxEvidenceAge = 10 * time.Minute
	// MinMaxEvidenceAge and MaxMaxEvidenceAge bound a policy's evidence age.
	MinMaxEvidenceAge = 30 * time.Second
	MaxMaxEvidenceAge = 24 * time.Hour
	// pcrBank is the bank PCR binding uses.
	pcrBank = "SHA256"
	// maxPCR is the highest PCR index a policy may bind to.
	maxPCR = 23
)

// defaultPCRs are the PCRs BindPCRs binds to when the policy names none:
// firmware, boot loader and Secure Boot state (PCR 10, IMA, changes while
// the node runs and is never a default).
var defaultPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7}

// Reasons of a refusal, as the audit log and /metrics name them.
const (
	ReasonHostDisabled        = "host_disabled"
	ReasonHostUnknown         = "host_unknown"
	ReasonHostNotAllowed      = "host_not_allowed"
	ReasonNotVerified         = "not_verified"
	ReasonSecureBootOff       = "secure_boot_off"
	ReasonDiskNotMeasured     = "disk_encryption_not_measured"
	ReasonEvidenceStale       = "evidence_stale"
	ReasonPCRNotAttested      = "pcr_not_attested"
	ReasonSecretUnknown       = "secret_unknown"
	ReasonNotEnrolled         = "not_enrolled"
	ReasonUnsupportedEK       = "unsupported_ek"
	ReasonAttestationFailed   = "attestation_failed"
	ReasonReportSignature     = "report_signature"
	ReasonReportOfAnotherHost = "report_of_another_host"
)

// RefusalError is a release the policy or the host's state refuses; it is
// not an infrastructure failure. Reason is one of the Reason constants.
type RefusalError struct {
	Reason string
	Detail string
}

func (e *RefusalError) Error() string {
	if e.Detail == "" {
		return "release refused: " + e.Reason
	}
	return "release refused: " + e.Reason + ": " + e.Detail
}

func refuse(reason, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ErrInvalidPolicy is wrapped by every error about a policy or a secret
// that cannot be stored as given.
var ErrInvalidPolicy = errors.New("invalid secret")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}

// MaxValueSize is the largest secret value.
const MaxValueSize = 4096

// maxNameLen is the longest secret name.
const maxNameLen = 128

// ValidateName checks a secret's name: 1 to 128 characters of
// [A-Za-z0-9._-], not starting with a dot, so that it can name a file on
// the node.
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return invalid("name must have 1 to %d characters", maxNameLen)
	}
	if name[0] == '.' {
		return invalid("name %q must not start with a dot", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return invalid("name %q: character %q at %d, only A-Z a-z 0-9 . _ - allowed", name, c, i)
		}
	}
	return nil
}

// ValidateValue checks a secret's value.
func ValidateValue(v []byte) error {
	if len(v) == 0 || len(v) > MaxValueSize {
		return invalid("value must have 1 to %d bytes (%d given)", MaxValueSize, len(v))
	}
	return nil
}

// ValidatePolicy checks a policy and reports every problem at once.
func ValidatePolicy(p restapi.SecretPolicy) error {
	var errs []string
	if len(p.HostIDs) == 0 && len(p.FlavorGroupNames) == 0 {
		errs = append(errs, "the policy names no host and no flavor group: name at least one")
	}
	for _, id := range p.HostIDs {
		if err := bus.ValidateHostID(id); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, g := range p.FlavorGroupNames {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, "an empty flavor group name")
		}
	}
	if age := time.Duration(p.MaxEvidenceAgeSeconds) * time.Second; p.MaxEvidenceAgeSeconds != 0 && (age < MinMaxEvidenceAge || age > MaxMaxEvidenceAge) {
		errs = append(errs, fmt.Sprintf("max_evidence_age_seconds %d is outside %d to %d",
			p.MaxEvidenceAgeSeconds, int(MinMaxEvidenceAge.Seconds()), int(MaxMaxEvidenceAge.Seconds())))
	}
	if len(p.PCRs) > 0 && !p.BindPCRs {
		errs = append(errs, "pcrs are given but bind_pcrs is false")
	}
	for _, i := range p.PCRs {
		if i < 0 || i > maxPCR {
			errs = append(errs, fmt.Sprintf("pcr %d is outside 0 to %d", i, maxPCR))
		}
	}
	if len(errs) > 0 {
		return invalid("%s", strings.Join(errs, "; "))
	}
	return nil
}

// MaxEvidenceAge is the policy's evidence age, with the default applied.
func MaxEvidenceAge(p restapi.SecretPolicy) time.Duration {
	if p.MaxEvidenceAgeSeconds == 0 {
		return DefaultMaxEvidenceAge
	}
	return time.Duration(p.MaxEvidenceAgeSeconds) * time.Second
}

// boundPCRs are the PCRs the policy binds to, sorted.
func boundPCRs(p restapi.SecretPolicy) []int {
	if !p.BindPCRs {
		return nil
	}
	pcrs := slices.Clone(p.PCRs)
	if len(pcrs) == 0 {
		pcrs = slices.Clone(defaultPCRs)
	}
	slices.Sort(pcrs)
	return slices.Compact(pcrs)
}

// Host is what the policy needs to know of a host beside its report.
type Host struct {
	ID string
	// FlavorGroupNames are the groups the host is appraised against.
	FlavorGroupNames []string
	// Disabled is true when an operator disabled the host.
	Disabled bool
}

// Allowed reports whether the policy names the host, by id or group.
func Allowed(p restapi.SecretPolicy, h Host) bool {
	if slices.Contains(p.HostIDs, h.ID) {
		return true
	}
	for _, g := range h.FlavorGroupNames {
		if slices.Contains(p.FlavorGroupNames, g) {
			return true
		}
	}
	return false
}

// admit refuses a disabled host and one the policy does not name.
func admit(p restapi.SecretPolicy, h Host) error {
	switch {
	case h.Disabled:
		return refuse(ReasonHostDisabled, "host %s is disabled", h.ID)
	case !Allowed(p, h):
		return refuse(ReasonHostNotAllowed, "the policy names neither host %s nor its flavor groups", h.ID)
	}
	return nil
}

// Decide checks a release of a secret under policy p to host h against
// the host's signed report r (already verified by the caller) at now. It
// returns the PCR values to seal to (nil when the policy binds to none), or
// a *RefusalError. It does no I/O.
func Decide(p restapi.SecretPolicy, h Host, r *report.Report, now time.Time) (map[int][]byte, error) {
	if err := admit(p, h); err != nil {
		return nil, err
	}
	switch {
	case r == nil:
		return nil, refuse(ReasonNotVerified, "host %s has no report", h.ID)
	case r.HostID != h.ID:
		return nil, refuse(ReasonReportOfAnotherHost, "report %s is of host %s", r.ID, r.HostID)
	case !r.Trusted():
		return nil, refuse(ReasonNotVerified, "report %s is not trusted (faults or failed parts: %s)", r.ID, strings.Join(failures(r), ", "))
	}
	if age := now.Sub(r.Created); age > MaxEvidenceAge(p) || now.After(r.Expiration) {
		return nil, refuse(ReasonEvidenceStale, "report %s is %s old, the policy allows %s", r.ID, age.Round(time.Second), MaxEvidenceAge(p))
	}
	sbOn := r.HostInfo.SecureBoot.FromPCR7 && r.HostInfo.SecureBoot.Verified
	if !p.AllowSecureBootOff && !sbOn {
		return nil, refuse(ReasonSecureBootOff, "report %s: the quoted PCR 7 does not show Secure Boot on", r.ID)
	}
	if !p.AllowUnmeasuredDiskEncryption && r.HostInfo.DiskEncryptionStatus != appraise.DiskEncryptionMeasured {
		return nil, refuse(ReasonDiskNotMeasured, "report %s: disk encryption is %q, not measured", r.ID, r.HostInfo.DiskEncryptionStatus)
	}
	return attestedPCRs(r, boundPCRs(p))
}

// failures names the report's faults and failed parts.
func failures(r *report.Report) []string {
	var out []string
	for _, f := range r.Faults {
		out = append(out, f.Name)
	}
	return append(out, r.FailedParts()...)
}

// attestedPCRs returns the SHA-256 values of pcrs that the report attests:
// a trusted PcrMatchesConstant rule says the quoted value equals the
// flavor's, so the value in the signed report is the quoted one.
func attestedPCRs(r *report.Report, pcrs []int) (map[int][]byte, error) {
	if len(pcrs) == 0 {
		return nil, nil
	}
	attested := map[int][]byte{}
	for _, pt := range r.TrustInformation.FlavorsTrust {
		if !pt.Trust {
			continue
		}
		for _, rr := range pt.Rules {
			e := rr.Rule.ExpectedPCR
			if !rr.Trusted || rr.Rule.Name != flavor.RulePcrMatchesConstant || e == nil || !strings.EqualFold(e.PCR.Bank, pcrBank) {
				continue
			}
			v, err := hex.DecodeString(e.Measurement)
			if err != nil || len(v) != 32 {
				continue
			}
			attested[e.PCR.Index] = v
		}
	}
	out := make(map[int][]byte, len(pcrs))
	var missing []string
	for _, i := range pcrs {
		v, ok := attested[i]
		if !ok {
			missing = append(missing, fmt.Sprint(i))
			continue
		}
		out[i] = v
	}
	if len(missing) > 0 {
		return nil, refuse(ReasonPCRNotAttested, "report %s attests no SHA-256 value of PCR %s (no trusted PcrMatchesConstant rule)", r.ID, strings.Join(missing, ", "))
	}
	return out, nil
}
