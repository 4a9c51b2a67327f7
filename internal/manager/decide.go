package manager

import (
	"slices"
	"strings"

	"trustedcompute.io/tc/internal/verifier/report"
)

// Status is the attestation status of a node, as the seed names it.
type Status string

// The three statuses a decision can have.
const (
	StatusVerified           Status = "Verified"
	StatusAttestationFailed  Status = "Attestation Failed"
	StatusSecureBootDisabled Status = "Secure Boot Disabled"
)

// Reasons of a Decision (machine-readable, CamelCase like Node condition
// reasons).
const (
	ReasonVerified             = "Verified"
	ReasonSecureBootDisabled   = "SecureBootDisabled"
	ReasonAttestationFailed    = "AttestationFailed"
	ReasonSecureBootUnverified = "SecureBootUnverified"
	ReasonNoReport             = "NoReport"
	// ReasonAgentUnreachable: the verifier could not get evidence from the
	// node's trust agent; the node fails (and is cordoned) as for any
	// untrusted report.
	ReasonAgentUnreachable = "AgentUnreachable"
)

// Details sent to the Edge Infrastructure Manager, as the reference system
// words them.
const (
	DetailVerified           = "Attestation successful"
	DetailSecureBootDisabled = "SecureBoot Disabled"
	detailFailedSuffix       = " trust verification failed"
)

// Decision is what a trust report means for its node.
type Decision struct {
	Status Status
	// Ready is true when the node is Trusted Compute ready: Verified, with
	// Secure Boot on and the root file system on full-disk encryption.
	Ready bool
	// Parts names what failed: the failed flavor parts (PLATFORM, OS,
	// IMA, ...), or the evidence fault names when no part failed. Sorted.
	Parts []string
	// Reason is one of the Reason constants.
	Reason string
	// Message explains the decision to an operator.
	Message string
}

// Decide reads a trust report. It is pure: the same report always gives the
// same decision. The checks run in this order:
//
//  1. Secure Boot, read from the quoted PCR 7 events, is off (only when PCR
//     7 replayed to its quoted value, SecureBoot.Verified; otherwise the
//     reading proves nothing and the report's own faults speak) → Secure
//     Boot Disabled.
//  2. The report is not trusted → Attestation Failed, naming the failed
//     parts, or the evidence faults when no part failed.
//  3. Secure Boot could not be read from verified PCR 7 events → Attestation
//     Failed: Verified needs Secure Boot proven on.
//  4. Otherwise Verified; Ready only with full-disk encryption measured
//     from PCR 15 (Config.Decide also accepts the agent's claim when the
//     policy is DiskEncryptionClaimed).
func Decide(r *report.Report) Decision {
	if r == nil {
		return Decision{Status: StatusAttestationFailed, Reason: ReasonNoReport, Message: "no trust report"}
	}
	sb := r.HostInfo.SecureBoot
	if sb.Verified && !r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
		return Decision{
			Status:  StatusSecureBootDisabled,
			Reason:  ReasonSecureBootDisabled,
			Message: "Secure Boot is disabled (read from the quoted PCR 7 events)",
		}
	}
	if !r.Trusted() {
		parts := r.FailedParts()
		if len(parts) == 0 {
			parts = faultNames(r)
		}
		msg := "trust verification failed: no flavor part was evaluated"
		if len(parts) > 0 {
			msg = strings.Join(parts, ", ") + detailFailedSuffix
		}
		if r.HostStatus != "" && r.HostStatus != report.StatusConnected {
			msg = "agent unreachable (host status " + r.HostStatus + "): " + msg
			return Decision{Status: StatusAttestationFailed, Parts: parts, Reason: ReasonAgentUnreachable, Message: msg}
		}
		return Decision{Status: StatusAttestationFailed, Parts: parts, Reason: ReasonAttestationFailed, Message: msg}
	}
	if !sb.Verified {
		return Decision{
			Status:  StatusAttestationFailed,
			Reason:  ReasonSecureBootUnverified,
			Message: "Secure Boot state could not be verified from the quoted PCR 7 events",
		}
	}
	d := Decision{Status: StatusVerified, Reason: ReasonVerified, Message: DetailVerified}
	if ready, why := diskEncryptionReady(r.HostInfo, DiskEncryptionMeasured); ready {
		d.Ready = true
	} else {
		d.Message += "; " + why + ": not Trusted Compute ready"
	}
	return d
}

// Detail is the attestation status detail sent to the Edge Infrastructure
// Manager: "Attestation successful", "SecureBoot Disabled" or
// "PLATFORM, IMA trust verification failed".
func (d Decision) Detail() string {
	switch d.Status {
	case StatusVerified:
		return DetailVerified
	case StatusSecureBootDisabled:
		return DetailSecureBootDisabled
	}
	return d.Message
}

// faultNames lists the distinct names of the report's evidence faults.
func faultNames(r *report.Report) []string {
	var names []string
	for _, f := range r.Faults {
		if f.Name != "" && !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return names
}
