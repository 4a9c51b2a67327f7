// Package appraise verifies attestation evidence. It is pure: bytes and policy
// go in, a verdict with named faults comes out. It does no I/O, reads no clock
// (the caller passes now) and never touches a TPM.
//
// The order of trust is strict. VerifyQuote checks the TPM's signature and
// yields the PCR values the quote covers; only those values are used by the
// later checks: the TCG event log replay, Secure Boot (read from the PCR 7
// events) and the IMA log replay. Missing or unparsable evidence is always a
// fault, never a pass.
package appraise

import (
	"encoding/hex"
	"fmt"
)

// Fault names. They are stable: reports and flavor rules refer to them.
const (
	// FaultEvidenceMissing: a piece of evidence the verifier needs is absent.
	FaultEvidenceMissing = "EvidenceMissing"
	// FaultEvidenceUnparsable: a TPM structure (attest, signature, AK) does not decode.
	FaultEvidenceUnparsable = "EvidenceUnparsable"
	// FaultQuoteMagic: the attest structure does not carry TPM_GENERATED_VALUE.
	FaultQuoteMagic = "QuoteMagic"
	// FaultQuoteType: the attest structure is not a TPM_ST_ATTEST_QUOTE.
	FaultQuoteType = "QuoteType"
	// FaultQuoteNonce: extraData differs from the verifier's nonce.
	FaultQuoteNonce = "QuoteNonce"
	// FaultQuoteSignature: the signature does not verify with the AK.
	FaultQuoteSignature = "QuoteSignature"
	// FaultQuotePCRDigest: the reported PCR values do not hash to the quoted digest.
	FaultQuotePCRDigest = "QuotePCRDigest"
	// FaultQuotePCRSelection: the reported PCR values do not cover the quote's
	// selection exactly once each, or the selection is unusable.
	FaultQuotePCRSelection = "QuotePCRSelection"
	// FaultQuoteBank: the verifier asked for a bank its policy refuses
	// (SHA-1), or the quote omits a requested bank the TPM had when its AK
	// was enrolled.
	FaultQuoteBank = "QuoteBank"
	// FaultAKMismatch: the quote names a different AK than the enrolled one.
	FaultAKMismatch = "AKMismatch"
	// FaultAKInvalid: the enrolled AK is not a restricted signing key of a
	// supported type.
	FaultAKInvalid = "AKInvalid"
	// FaultEventLogReplay: the TCG event log does not replay to a quoted PCR.
	FaultEventLogReplay = "EventLogReplay"
	// FaultEventLogNotHeld: the agent left the TCG event log out, as the
	// verifier's request allowed for a log whose appraisal it held, but
	// no appraisal of that log against the quoted PCR values in the same
	// boot is held (or the agent named another log); the verifier asks
	// again for the whole log.
	FaultEventLogNotHeld = "EventLogNotHeld"
	// FaultEventLogUnparsable: the TCG event log does not decode.
	FaultEventLogUnparsable = "EventLogUnparsable"
	// FaultSecureBootUnparsable: the Secure Boot state cannot be read from
	// replay-verified PCR 7 events.
	FaultSecureBootUnparsable = "SecureBootUnparsable"
	// FaultIMAReplay: the IMA log does not replay to the quoted PCR 10.
	FaultIMAReplay = "IMAReplay"
	// FaultIMAUnparsable: an IMA log line does not decode or its template
	// hash does not match its contents.
	FaultIMAUnparsable = "IMAUnparsable"
)

// Fault is one named reason why evidence is not trusted. Its JSON shape is
// the one of the HVS trust report.
type Fault struct {
	Name              string   `json:"fault_name"`
	Description       string   `json:"description"`
	PCRIndex          *int     `json:"pcr_index,omitempty"`
	PCRBank           string   `json:"pcr_bank,omitempty"`
	Expected          string   `json:"expected_pcrvalue,omitempty"`
	Actual            string   `json:"actual_pcrvalue,omitempty"`
	File              string   `json:"file,omitempty"`
	MissingEntries    []string `json:"missing_entries,omitempty"`
	UnexpectedEntries []string `json:"unexpected_entries,omitempty"`
}

func (f Fault) String() string {
	s := f.Name + ": " + f.Description
	if f.PCRIndex != nil {
		s += fmt.Sprintf(" (%s PCR %d)", f.PCRBank, *f.PCRIndex)
	}
	return s
}

func fault(name, format string, args ...any) Fault {
	return Fault{Name: name, Description: fmt.Sprintf(format, args...)}
}

// pcrFault is a fault about one PCR of one bank with expected and actual values.
func pcrFault(name, bank string, index int, expected, actual []byte, format string, args ...any) Fault {
	f := fault(name, format, args...)
	f.PCRBank = bank
	f.PCRIndex = &index
	if expected != nil {
		f.Expected = hex.EncodeToString(expected)
	}
	if actual != nil {
		f.Actual = hex.EncodeToString(actual)
	}
	return f
}
