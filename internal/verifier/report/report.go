// Package report holds the trust report of a host, its signature and its
// EAR form. It is pure apart from crypto: the caller passes the time, and
// nothing here does I/O.
//
// A Report is what the verifier found at one appraisal, in the JSON shape of
// the HVS trust report. Sign makes it a compact JWS (ES256 or ES384, made
// and checked with go-jose) whose x5c header carries the verifier's signing
// chain, so that anyone holding the CMS root can check it offline with
// Verify, which accepts only the verifier's own signing identity (package
// signerid). EAR gives the same result as an IETF RATS EAR attestation
// result token, checked with VerifyEAR.
package report

import (
	"slices"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
)

// Host connection statuses a report records (as HVS names them).
const (
	StatusConnected         = "CONNECTED"
	StatusQueue             = "QUEUE"
	StatusConnectionFailure = "CONNECTION_FAILURE"
	StatusConnectionTimeout = "CONNECTION_TIMEOUT"
	StatusUnauthorized      = "UNAUTHORIZED"
	StatusAIKNotProvisioned = "AIK_NOT_PROVISIONED"
	StatusTPMNotPresent     = "TPM_NOT_PRESENT"
	StatusUnknown           = "UNKNOWN"
)

// Report is the trust report of one host at one appraisal.
type Report struct {
	ID               string                  `json:"id"`
	HostID           string                  `json:"host_id"`
	HostName         string                  `json:"host_name"`
	Created          time.Time               `json:"created"`
	Expiration       time.Time               `json:"expiration"`
	TrustInformation flavor.TrustInformation `json:"trust_information"`
	HostInfo         HostInfo                `json:"host_info"`
	// Faults are evidence faults outside any flavor part (quote, replay,
	// AK, connection).
	Faults []appraise.Fault `json:"faults,omitempty"`
	// HostStatus is the host connection status when the report was made
	// (StatusConnected, StatusConnectionTimeout, ...).
	HostStatus string `json:"host_status"`
	// ResetCount is the TPM reset count of the verified quote.
	ResetCount uint32 `json:"reset_count"`
	// Rebooted is true when the reset count changed since the previous
	// report of the host.
	Rebooted bool `json:"rebooted"`
	// Nonce is the verifier's quote nonce.
	Nonce []byte `json:"nonce,omitempty"`
}

// Trusted reports whether every evaluated part is trusted and no evidence
// fault stands outside the parts.
func (r *Report) Trusted() bool {
	return r.TrustInformation.Overall && len(r.Faults) == 0
}

// FailedParts returns the names of the parts whose trust is false, sorted.
func (r *Report) FailedParts() []string {
	var failed []string
	for p, t := range r.TrustInformation.FlavorsTrust {
		if !t.Trust {
			failed = append(failed, string(p))
		}
	}
	slices.Sort(failed)
	return failed
}

// Sources of the facts of a report's host_info (HostInfo.Sources).
const (
	// SourceMeasured: the fact was read from evidence the quote covers and
	// that replayed to the quoted PCRs (Secure Boot from PCR 7, disk
	// encryption from systemd's measure log and PCR 15).
	SourceMeasured = "measured"
	// SourceClaimed: the fact is the agent's word. It is bound to the
	// quote (the quote's qualifying data covers the host facts), so it is
	// the word of the node whose TPM quoted, but nothing measured it.
	SourceClaimed = "claimed"
)

// HostInfo is the host_info of a report: the agent's facts, except for
// Secure Boot, which comes from the quoted PCR 7 events, and disk
// encryption, whose status comes from the quoted PCR 15.
type HostInfo struct {
	OSName      string `json:"os_name"`
	OSVersion   string `json:"os_version"`
	BIOSName    string `json:"bios_name"`
	BIOSVersion string `json:"bios_version"`
	HostName    string `json:"host_name"`
	// NodeName is the agent's Kubernetes Node (evidence.HostInfo.NodeName).
	NodeName         string           `json:"node_name,omitempty"`
	HardwareUUID     string           `json:"hardware_uuid"`
	HardwareFeatures HardwareFeatures `json:"hardware_features"`
	SecureBoot       SecureBoot       `json:"secure_boot"`
	// DiskEncryption is the agent's claim, bound to the quote.
	DiskEncryption evidence.DiskEncryption `json:"disk_encryption"`
	// DiskEncryptionStatus is "measured" (systemd's measure log replayed
	// to the quoted PCR 15 and holds a volume key measurement of every
	// root volume), "claimed" (only the agent says so) or "none"
	// (appraise.DiskEncryption*). Reports made before it existed have none.
	DiskEncryptionStatus string `json:"disk_encryption_status,omitempty"`
	// DiskEncryptionReason says why the status is not measured.
	DiskEncryptionReason string `json:"disk_encryption_reason,omitempty"`
	// MeasuredVolumes are the volumes with a volume key measurement in the
	// replayed PCR 15 records.
	MeasuredVolumes []evidence.CryptVolume `json:"measured_volumes,omitempty"`
	BootID          string                 `json:"boot_id,omitempty"`
	// Sources says, for each fact by its host_info key, whether it was
	// measured or claimed (SourceMeasured, SourceClaimed).
	Sources map[string]string `json:"fact_sources,omitempty"`
}

// SetDiskEncryption records the appraised disk encryption: its status,
// why it is not measured, the measured volumes and the fact's source.
func (hi *HostInfo) SetDiskEncryption(st appraise.DiskEncryptionState) {
	hi.DiskEncryptionStatus = st.Status
	hi.DiskEncryptionReason = st.Reason
	hi.MeasuredVolumes = slices.Clone(st.Volumes)
	if hi.Sources == nil {
		hi.Sources = map[string]string{}
	}
	hi.Sources["disk_encryption"] = SourceClaimed
	if st.Status == appraise.DiskEncryptionMeasured {
		hi.Sources["disk_encryption"] = SourceMeasured
	}
}

// HardwareFeatures is the hardware_features object of HVS.
type HardwareFeatures struct {
	TPM  TPMFeature  `json:"TPM"`
	UEFI UEFIFeature `json:"UEFI"`
}

// TPMFeature says whether the host has a TPM, and which version.
type TPMFeature struct {
	Enabled bool    `json:"enabled"`
	Meta    TPMMeta `json:"meta"`
}

// TPMMeta holds the TPM version ("2.0").
type TPMMeta struct {
	TPMVersion string `json:"tpm_version"`
}

// UEFIFeature says whether the host booted with UEFI.
type UEFIFeature struct {
	Enabled bool     `json:"enabled"`
	Meta    UEFIMeta `json:"meta"`
}

// UEFIMeta holds the Secure Boot state that consumers of HVS reports read.
type UEFIMeta struct {
	// SecureBootEnabled is read from the quoted PCR 7 events, never from
	// the agent's efivar claim.
	SecureBootEnabled bool `json:"secure_boot_enabled"`
}

// SecureBoot tells both readings of Secure Boot apart.
type SecureBoot struct {
	// FromPCR7 is the state the PCR 7 events say; false when they did not
	// replay.
	FromPCR7 bool `json:"from_pcr7"`
	// Verified is true when PCR 7 replayed to its quoted value, so that
	// FromPCR7 can be trusted.
	Verified bool `json:"verified"`
	// Efivar is the agent's unsigned reading of the SecureBoot EFI
	// variable; nil when the agent could not read it.
	Efivar *bool `json:"efivar,omitempty"`
	// Authorities are the db entries that verified the boot applications.
	Authorities []string `json:"authorities,omitempty"`
}

// NewHostInfo builds the host_info of a report from the agent's facts h
// (nil gives empty facts) and the Secure Boot state read from the PCR 7
// events. sbVerified says whether PCR 7 replayed to its quoted value; when
// it did not, Secure Boot counts as off.
func NewHostInfo(h *evidence.HostInfo, sb appraise.SecureBootState, sbVerified bool) HostInfo {
	// PCR 7 events that did not replay say nothing.
	on := sb.Enabled && sbVerified
	hi := HostInfo{
		HardwareFeatures: HardwareFeatures{UEFI: UEFIFeature{Enabled: on, Meta: UEFIMeta{SecureBootEnabled: on}}},
		SecureBoot:       SecureBoot{FromPCR7: on, Verified: sbVerified},
	}
	if on {
		hi.SecureBoot.Authorities = slices.Clone(sb.Authorities)
	}
	if h == nil {
		return hi
	}
	hi.Sources = map[string]string{}
	for _, k := range []string{"os_name", "os_version", "bios_name", "bios_version", "host_name", "hardware_uuid",
		"hardware_features", "boot_id", "disk_encryption"} {
		hi.Sources[k] = SourceClaimed
	}
	hi.Sources["secure_boot"] = SourceClaimed
	if sbVerified {
		hi.Sources["secure_boot"] = SourceMeasured
	}
	hi.OSName = h.OSName
	hi.OSVersion = h.OSVersion
	hi.BIOSName = h.BIOSName
	hi.BIOSVersion = h.BIOSVersion
	hi.HostName = h.HostName
	if hi.NodeName = h.NodeName; hi.NodeName != "" {
		hi.Sources["node_name"] = SourceClaimed
	}
	hi.HardwareUUID = h.HardwareUUID
	hi.BootID = h.BootID
	hi.DiskEncryption = h.DiskEncryption
	hi.HardwareFeatures.TPM = TPMFeature{Enabled: h.TPM.Present, Meta: TPMMeta{TPMVersion: h.TPM.Version}}
	// A Secure Boot measurement in PCR 7 needs UEFI, whatever the agent says.
	hi.HardwareFeatures.UEFI.Enabled = h.UEFIEnabled || on
	if h.SecureBootEfivar != nil {
		v := *h.SecureBootEfivar
		hi.SecureBoot.Efivar = &v
	}
	return hi
}
