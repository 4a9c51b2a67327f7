// Package evidence holds the versioned wire types that the trust agent, the
// verifier, the attestation manager and the CLI exchange. It depends on the
// standard library only, so every binary can import it cheaply.
//
// Byte slices travel as standard base64 in JSON. TPM structures travel as their
// raw TPM wire encoding (big-endian, as the TPM produced them), never re-encoded:
// the verifier checks signatures over exactly the bytes the TPM signed.
package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is the wire version of every message in this package. A receiver
// rejects a message whose version it does not know.
const Version = "tc/v1"

// Hash bank names as they appear on the wire.
const (
	BankSHA1   = "SHA1"
	BankSHA256 = "SHA256"
	BankSHA384 = "SHA384"
)

// NonceSize is the size of the verifier's quote nonce in bytes.
const NonceSize = 32

// EventLogDigestSize is the size of QuoteRequest.EventLogDigest: a SHA-256.
const EventLogDigestSize = 32

// MaxNonceSize is the largest nonce a TPM accepts as qualifying data for a
// quote (the size of a TPMU_HA for SHA-512).
const MaxNonceSize = 64

// QuoteRequest asks a trust agent for a fresh quote and the logs that explain it.
type QuoteRequest struct {
	Version string `json:"version"`
	// Nonce is the verifier's fresh random value; it becomes extraData in the
	// signed TPMS_ATTEST.
	Nonce []byte `json:"nonce"`
	// PCRs is the PCR index selection, applied to every bank in Banks.
	PCRs []int `json:"pcrs"`
	// Banks lists the hash banks to quote (SHA256, SHA384, ...). The agent
	// quotes the banks that are both requested and active on its TPM.
	Banks []string `json:"pcrbanks"`
	// IMAMeasureEnabled asks for the IMA runtime log.
	IMAMeasureEnabled bool `json:"ima_measure_enabled"`
	// IMAOffset is the number of IMA log entries the verifier already holds
	// for the current boot; the agent sends entries from there on.
	IMAOffset int `json:"ima_offset,omitempty"`
	// EventLog asks for the TCG measured-boot event log.
	EventLog bool `json:"event_log"`
	// EventLogDigest, with EventLog, is the SHA-256 of the event log whose
	// appraisal the verifier holds for the host's current boot. An agent
	// whose event log hashes to it may leave the log out of its answer
	// and name it (QuoteResponse.EventLogDigest); any other agent sends
	// the log. Absent: the log is always sent. Agents older than this
	// field refuse a request that carries it (BAD_REQUEST): the verifier
	// then asks again without it.
	EventLogDigest []byte `json:"event_log_digest,omitempty"`
}

// PCRValue is one PCR of one bank as the TPM read it.
type PCRValue struct {
	Bank  string `json:"bank"`
	Index int    `json:"index"`
	Value []byte `json:"value"`
}

// QuoteResponse is the agent's answer to a QuoteRequest.
type QuoteResponse struct {
	Version string `json:"version"`
	// Attest is the TPMS_ATTEST structure the TPM signed (the contents of the
	// TPM2B_ATTEST returned by TPM2_Quote).
	Attest []byte `json:"attest"`
	// Signature is the TPMT_SIGNATURE over Attest made by the AK.
	Signature []byte `json:"signature"`
	// PCRs are the values of the quoted PCRs, read in the same session as the
	// quote. The verifier recomputes the quoted PCR digest from them.
	PCRs []PCRValue `json:"pcrs"`
	// AKName is the TPM name of the key that signed the quote.
	AKName []byte `json:"ak_name,omitempty"`
	// EventLog is the raw TCG PC Client binary event log (crypto-agile).
	EventLog []byte `json:"event_log,omitempty"`
	// EventLogDigest is set when the agent left EventLog out because its
	// log hashes to the request's EventLogDigest: it is that digest. The
	// verifier then uses its own appraisal of that log, and only one made
	// against the PCR values of this quote; otherwise it asks again for
	// the whole log.
	EventLogDigest []byte `json:"event_log_digest,omitempty"`
	// IMALog holds the IMA ascii runtime measurement lines from IMAOffset on.
	IMALog string `json:"ima_log,omitempty"`
	// IMAOffset is the entry index the first line of IMALog has in the full log.
	IMAOffset int `json:"ima_offset,omitempty"`
	// IMAEntries is the number of entries in the agent's full IMA log.
	IMAEntries int `json:"ima_entries,omitempty"`
	// HostInfo is the agent's view of the host at quote time. It is bound
	// to the quote: the quote's qualifying data is QualifyingData(nonce,
	// HostInfo), not the bare nonce.
	HostInfo *HostInfo `json:"host_info,omitempty"`
	// MeasureLog is systemd's userspace TPM measurement log
	// (/run/log/systemd/tpm2-measure.log: RFC 7464 JSON text sequences in
	// the TCG CEL-JSON style), when the node has one. The verifier replays
	// its PCR 15 records against the quoted PCR 15 to read disk encryption
	// from systemd-cryptsetup's volume key measurements.
	MeasureLog []byte `json:"tpm2_measure_log,omitempty"`
	// Error is set when the agent could not produce a quote.
	Error *Error `json:"error,omitempty"`
}

// TPMInfo describes the node's TPM.
type TPMInfo struct {
	Present         bool   `json:"present"`
	Version         string `json:"tpm_version,omitempty"` // "2.0"
	Manufacturer    string `json:"manufacturer,omitempty"`
	VendorString    string `json:"vendor_string,omitempty"`
	FirmwareVersion string `json:"firmware_version,omitempty"`
	SpecRevision    string `json:"spec_revision,omitempty"`
	// ActiveBanks lists the PCR banks the TPM has allocated.
	ActiveBanks []string `json:"active_banks,omitempty"`
}

// DiskEncryption reports whether the root file system sits on full-disk encryption.
type DiskEncryption struct {
	Enabled bool `json:"enabled"`
	// RootDevice is the block device that holds "/" (e.g. dm-0).
	RootDevice string `json:"root_device,omitempty"`
	// Method names the mechanism, e.g. "dm-crypt/LUKS2".
	Method string `json:"method,omitempty"`
	// Reason says why encryption was not detected, when it was not.
	Reason string `json:"reason,omitempty"`
	// Volumes are the dm-crypt volumes the root file system rests on, as
	// systemd-cryptsetup names them in its volume key measurement.
	Volumes []CryptVolume `json:"volumes,omitempty"`
}

// CryptVolume is one dm-crypt volume: its device-mapper name (the crypttab
// volume name) and, for LUKS, the UUID of its LUKS header in canonical form.
type CryptVolume struct {
	Name string `json:"name"`
	UUID string `json:"uuid,omitempty"`
}

// HostInfo is the set of host facts the agent reports. Claims here are not
// signed by the TPM; where a fact can be read from quoted evidence (Secure
// Boot from PCR 7) the verifier prefers that.
type HostInfo struct {
	Version  string `json:"version"`
	HostName string `json:"host_name"`
	// NodeName is the Kubernetes Node the agent runs on, as its pod was
	// told (the Downward API's spec.nodeName); empty outside Kubernetes.
	// Bound to the quote like every fact, it ties the host to one Node: the
	// attestation manager acts on a report for no other Node.
	NodeName      string  `json:"node_name,omitempty"`
	HardwareUUID  string  `json:"hardware_uuid"`
	OSName        string  `json:"os_name"`
	OSVersion     string  `json:"os_version"`
	KernelRelease string  `json:"kernel_release,omitempty"`
	BIOSName      string  `json:"bios_name"`
	BIOSVersion   string  `json:"bios_version"`
	BIOSDate      string  `json:"bios_date,omitempty"`
	BootID        string  `json:"boot_id,omitempty"`
	TPM           TPMInfo `json:"tpm"`
	UEFIEnabled   bool    `json:"uefi_enabled"`
	// SecureBootEfivar is the agent's reading of the SecureBoot EFI variable;
	// nil when it could not be read.
	SecureBootEfivar *bool          `json:"secure_boot_efivar,omitempty"`
	DiskEncryption   DiskEncryption `json:"disk_encryption"`
	IMAEnabled       bool           `json:"ima_enabled"`
	AgentVersion     string         `json:"agent_version,omitempty"`
	// Error is set when the agent could not collect its host facts.
	Error *Error `json:"error,omitempty"`
}

// HostInfoRequest asks an agent for its HostInfo.
type HostInfoRequest struct {
	Version string `json:"version"`
}

// AKRequest asks an agent for its attestation and endorsement key material.
type AKRequest struct {
	Version string `json:"version"`
}

// AKInfo carries the agent's TPM key material for enrollment.
type AKInfo struct {
	Version string `json:"version"`
	// AKPublic is the TPMT_PUBLIC of the attestation key.
	AKPublic []byte `json:"ak_public"`
	// AKName is the TPM name of the AK (nameAlg || digest of AKPublic).
	AKName []byte `json:"ak_name"`
	// EKPublic is the TPMT_PUBLIC of the endorsement key used for activation.
	EKPublic []byte `json:"ek_public"`
	// EKCertificate is the DER EK certificate read from TPM NV, if any.
	EKCertificate []byte `json:"ek_certificate,omitempty"`
	// AKCertificate is the DER AK certificate the verifier issued, if any.
	AKCertificate []byte `json:"ak_certificate,omitempty"`
	// PCRBanks are the PCR banks the TPM has allocated (BankSHA256 and so
	// on), as the agent read them. Enrollment records them: a later quote
	// that omits a requested bank the TPM had is a fault. Empty from an
	// agent that does not send them.
	PCRBanks []string `json:"pcr_banks,omitempty"`
	Error    *Error   `json:"error,omitempty"`
}

// ActivateRequest carries the verifier's credential challenge (the output of
// TPM2_MakeCredential to the agent's EK, bound to its AK name).
type ActivateRequest struct {
	Version         string `json:"version"`
	CredentialBlob  []byte `json:"credential_blob"`
	EncryptedSecret []byte `json:"encrypted_secret"`
}

// ActivateResponse is the secret the agent's TPM recovered with
// TPM2_ActivateCredential.
type ActivateResponse struct {
	Version string `json:"version"`
	Secret  []byte `json:"secret,omitempty"`
	Error   *Error `json:"error,omitempty"`
}

// VersionRequest asks an agent for its version.
type VersionRequest struct {
	Version string `json:"version"`
}

// VersionInfo is an agent's answer to a VersionRequest.
type VersionInfo struct {
	Version      string `json:"version"`
	AgentVersion string `json:"agent_version"`
	GitCommit    string `json:"git_commit,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
	Error        *Error `json:"error,omitempty"`
}

// Event types the agent publishes on trust-events.<host-id>.<type>.
const (
	EventBoot = "boot"
	EventIMA  = "ima"
)

// Event is published by an agent so the verifier attests at once.
type Event struct {
	Version string    `json:"version"`
	Type    string    `json:"type"`
	HostID  string    `json:"host_id"`
	Time    time.Time `json:"time"`
	// ResetCount is the TPM's clockInfo.resetCount at the time of the event.
	ResetCount uint32 `json:"reset_count"`
	BootID     string `json:"boot_id,omitempty"`
	// IMAEntries is the number of IMA entries when the event was sent.
	IMAEntries int `json:"ima_entries,omitempty"`
}

// Error is an agent-side failure carried in a reply.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes an agent may answer with.
const (
	CodeBadRequest     = "BAD_REQUEST"
	CodeTPMUnavailable = "TPM_NOT_PRESENT"
	CodeAKMissing      = "AIK_NOT_PROVISIONED"
	CodeInternal       = "INTERNAL"
)

// ErrVersion is returned when a message carries an unknown wire version.
var ErrVersion = errors.New("unsupported evidence version")

// MaxMessageSize bounds every decoded message (event and IMA logs included).
const MaxMessageSize = 16 << 20

// Message is any message of this package (a sealed interface).
type Message interface{ wireVersion() string }

// Decode parses one JSON message strictly: unknown fields, trailing data,
// oversized input and an unknown version are errors.
func Decode(data []byte, v Message) error {
	if len(data) > MaxMessageSize {
		return fmt.Errorf("evidence message of %d bytes exceeds the %d byte limit", len(data), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode evidence message: %w", err)
	}
	// Not dec.More, which says false before a stray "}" or "]".
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decode evidence message: trailing data after the JSON value")
	}
	if got := v.wireVersion(); got != Version {
		return fmt.Errorf("%w %q (want %q)", ErrVersion, got, Version)
	}
	return nil
}

func (r *QuoteRequest) wireVersion() string     { return r.Version }
func (m *QuoteResponse) wireVersion() string    { return m.Version }
func (m *HostInfo) wireVersion() string         { return m.Version }
func (m *HostInfoRequest) wireVersion() string  { return m.Version }
func (m *AKRequest) wireVersion() string        { return m.Version }
func (m *AKInfo) wireVersion() string           { return m.Version }
func (m *VersionRequest) wireVersion() string   { return m.Version }
func (m *ActivateRequest) wireVersion() string  { return m.Version }
func (m *ActivateResponse) wireVersion() string { return m.Version }
func (m *VersionInfo) wireVersion() string      { return m.Version }
func (m *Event) wireVersion() string            { return m.Version }

// Validate checks a QuoteRequest's values before an agent acts on it.
func (r *QuoteRequest) Validate() error {
	var errs []error
	if n := len(r.Nonce); n == 0 || n > MaxNonceSize {
		errs = append(errs, fmt.Errorf("nonce must be 1 to %d bytes, got %d", MaxNonceSize, n))
	}
	if len(r.PCRs) == 0 {
		errs = append(errs, errors.New("pcrs must name at least one PCR"))
	}
	seen := map[int]bool{}
	for _, p := range r.PCRs {
		if p < 0 || p > 23 {
			errs = append(errs, fmt.Errorf("pcr index %d out of range 0-23", p))
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("pcr index %d named twice", p))
		}
		seen[p] = true
	}
	if len(r.Banks) == 0 {
		errs = append(errs, errors.New("pcrbanks must name at least one bank"))
	}
	for _, b := range r.Banks {
		switch b {
		case BankSHA1, BankSHA256, BankSHA384:
		default:
			errs = append(errs, fmt.Errorf("unknown pcr bank %q", b))
		}
	}
	if r.IMAOffset < 0 {
		errs = append(errs, fmt.Errorf("ima_offset must not be negative, got %d", r.IMAOffset))
	}
	if n := len(r.EventLogDigest); n != 0 && n != EventLogDigestSize {
		errs = append(errs, fmt.Errorf("event_log_digest must be %d bytes, got %d", EventLogDigestSize, n))
	}
	if len(r.EventLogDigest) != 0 && !r.EventLog {
		errs = append(errs, errors.New("event_log_digest is set but the event log is not asked for"))
	}
	return errors.Join(errs...)
}

// ErrNodeName is wrapped by ValidateNodeName's errors.
var ErrNodeName = errors.New("invalid node name")

// ValidateNodeName reports whether name can be a Kubernetes Node's name: a
// DNS subdomain of RFC 1123, 1 to 253 characters of a-z, 0-9, "-" and ".",
// beginning and ending with a letter or digit.
func ValidateNodeName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%w: %d characters, want 1 to 253", ErrNodeName, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' && c != '.' || i == 0 || i == len(name)-1) {
			return fmt.Errorf("%w %q: %q at %d", ErrNodeName, name, c, i)
		}
	}
	return nil
}
