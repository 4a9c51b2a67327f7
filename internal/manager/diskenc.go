package manager

import (
	"fmt"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/verifier/report"
)

// DiskEncryptionPolicy says which disk encryption makes a Verified node
// Trusted Compute ready.
type DiskEncryptionPolicy string

// The disk encryption policies.
const (
	// DiskEncryptionMeasured (the default) needs disk encryption measured:
	// systemd's measure log replays to the quoted PCR 15 and holds the
	// volume key measurement of the root file system's dm-crypt volume
	// (crypttab tpm2-measure-pcr=yes).
	DiskEncryptionMeasured DiskEncryptionPolicy = "measured"
	// DiskEncryptionClaimed also accepts the agent's claim (bound to the
	// quote, but measured by nothing), for nodes whose systemd does not
	// measure volume keys.
	DiskEncryptionClaimed DiskEncryptionPolicy = "claimed"
)

func (p DiskEncryptionPolicy) validate() error {
	switch p {
	case DiskEncryptionMeasured, DiskEncryptionClaimed:
		return nil
	}
	return fmt.Errorf("disk encryption %q: want %s or %s", p, DiskEncryptionMeasured, DiskEncryptionClaimed)
}

// diskEncryptionStatus is the report's disk encryption status; a report
// made before the verifier measured it counts its claim as claimed.
func diskEncryptionStatus(hi report.HostInfo) string {
	if hi.DiskEncryptionStatus != "" {
		return hi.DiskEncryptionStatus
	}
	if hi.DiskEncryption.Enabled {
		return appraise.DiskEncryptionClaimed
	}
	return appraise.DiskEncryptionNone
}

// diskEncryptionReady tells whether a Verified node's disk encryption makes
// it ready under policy and, when it does not, why.
func diskEncryptionReady(hi report.HostInfo, policy DiskEncryptionPolicy) (bool, string) {
	switch diskEncryptionStatus(hi) {
	case appraise.DiskEncryptionMeasured:
		return true, ""
	case appraise.DiskEncryptionClaimed:
		if policy == DiskEncryptionClaimed {
			return true, ""
		}
		why := "full-disk encryption only claimed by the agent, not measured in PCR 15 (diskEncryption: measured)"
		if hi.DiskEncryptionReason != "" {
			why += ": " + hi.DiskEncryptionReason
		}
		return false, why
	}
	why := "full-disk encryption absent"
	if hi.DiskEncryption.Reason != "" {
		why += " (" + hi.DiskEncryption.Reason + ")"
	}
	return false, why
}

// Decide is Decide under the manager's disk encryption policy: with
// DiskEncryptionClaimed, a Verified node whose encryption the agent only
// claims is ready too.
func (c Config) Decide(r *report.Report) Decision {
	d := Decide(r)
	if d.Status != StatusVerified || d.Ready || c.DiskEncryption != DiskEncryptionClaimed {
		return d
	}
	if ready, _ := diskEncryptionReady(r.HostInfo, DiskEncryptionClaimed); ready {
		d.Ready = true
		d.Message = DetailVerified + "; full-disk encryption claimed by the agent, not measured (diskEncryption: claimed)"
	}
	return d
}
