package appraise

import (
	"bytes"
	"time"

	"trustedcompute.io/tc/internal/evidence"
)

// Input is everything one appraisal needs.
type Input struct {
	// AKPublic is the TPMT_PUBLIC of the node's enrolled AK.
	AKPublic []byte
	// Request is what the verifier asked for; its nonce must be in the quote.
	Request evidence.QuoteRequest
	// Response is the agent's answer.
	Response *evidence.QuoteResponse
	// IMAStart holds, by bank, PCR 10 after the Request.IMAOffset IMA
	// entries the verifier already holds. It is unused when IMAOffset is 0.
	IMAStart map[string][]byte
	// Policy holds the appraisal settings; the zero value is the strict default.
	Policy Policy
	// TPMBanks are the PCR banks the node's TPM had allocated when its AK
	// was enrolled, as enrollment recorded them; nil when it recorded none.
	TPMBanks []string
}

// Verdict is the outcome of one appraisal: the faults and the facts that
// were derived from verified evidence only.
type Verdict struct {
	// Time is the appraisal time the caller passed in.
	Time   time.Time `json:"time"`
	Faults []Fault   `json:"faults,omitempty"`
	// Quote is the verified quote; nil when the quote failed, and then
	// nothing else below is filled in.
	Quote *Quote `json:"quote,omitempty"`
	// Events holds, by bank, the event log events of the PCRs that
	// replayed to their quoted values.
	Events map[string][]Event `json:"events,omitempty"`
	// SecureBoot is read from replay-verified PCR 7 events.
	SecureBoot SecureBootState `json:"secure_boot"`
	// DiskEncryption is read from systemd's measure log replayed to the
	// quoted PCR 15 and the agent's quote-bound claim.
	DiskEncryption DiskEncryptionState `json:"disk_encryption"`
	// IMA is the IMA replay; IMAEntries are the entries the quote covers.
	IMA        *IMAResult `json:"-"`
	IMAEntries []IMAEntry `json:"ima_entries,omitempty"`
	// IMANext is the IMA offset and PCR 10 value the next appraisal of
	// this boot starts from.
	IMANextOffset int    `json:"ima_next_offset,omitempty"`
	IMANextValue  []byte `json:"ima_next_value,omitempty"`
}

// Trusted reports whether the appraisal found no fault.
func (v *Verdict) Trusted() bool { return len(v.Faults) == 0 }

// ResetCount is the TPM reset count from the verified quote, and false when
// the quote did not verify.
func (v *Verdict) ResetCount() (uint32, bool) {
	if v.Quote == nil {
		return 0, false
	}
	return v.Quote.ClockInfo.ResetCount, true
}

// imaBanks is the order in which banks are preferred for the IMA replay.
var imaBanks = []string{evidence.BankSHA384, evidence.BankSHA256, evidence.BankSHA1}

// Appraise runs every check in order of trust: the quote, the event log
// replay, Secure Boot from PCR 7, disk encryption from systemd's measure
// log and, when asked for, the IMA replay. The event log is always
// required: Secure Boot is read from it.
//
// The quote's qualifying data must be evidence.QualifyingData of the
// verifier's nonce and the host facts sent with the quote, so the host
// facts are the ones the TPM signed for; other facts fail the quote with
// FaultQuoteNonce.
func Appraise(in Input, now time.Time) Verdict {
	v := Verdict{Time: now}
	var facts *evidence.HostInfo
	if in.Response != nil {
		facts = in.Response.HostInfo
	}
	q, faults := VerifyQuote(in.AKPublic, evidence.QualifyingData(in.Request.Nonce, facts), in.Response)
	if len(faults) > 0 {
		for i := range faults {
			if faults[i].Name == FaultQuoteNonce {
				faults[i].Description += " (extraData must be SHA-256(nonce || SHA-256(host facts)): the nonce or the host facts differ from what the TPM quoted)"
			}
		}
		v.Faults = faults
		return v
	}
	v.Quote = q
	v.Faults = append(v.Faults, checkBanks(in.Request, in.Policy, in.TPMBanks, q)...)
	v.appraiseEventLog(in.Response.EventLog)
	var claim evidence.DiskEncryption
	if facts != nil {
		claim = facts.DiskEncryption
	}
	v.DiskEncryption, faults = AppraiseDiskEncryption(in.Response.MeasureLog, claim, q.PCRs)
	v.Faults = append(v.Faults, faults...)
	if in.Request.IMAMeasureEnabled {
		v.appraiseIMA(in)
	}
	return v
}

func (v *Verdict) appraiseEventLog(raw []byte) {
	if len(raw) == 0 {
		v.Faults = append(v.Faults,
			fault(FaultEvidenceMissing, "the event log is missing"),
			fault(FaultSecureBootUnparsable, "there is no event log to read Secure Boot from"))
		return
	}
	log, err := ParseEventLog(raw)
	if err != nil {
		v.Faults = append(v.Faults,
			fault(FaultEventLogUnparsable, "%v", err),
			fault(FaultSecureBootUnparsable, "the event log does not decode"))
		return
	}
	faults, replayed := log.replay(v.Quote.PCRs)
	v.Faults = append(v.Faults, faults...)
	v.Events = map[string][]Event{}
	for bank, indexes := range replayed {
		ok := map[int]bool{}
		for _, i := range indexes {
			ok[i] = true
		}
		for _, ev := range log.Events(bank) {
			if ok[ev.Index] {
				v.Events[bank] = append(v.Events[bank], ev)
			}
		}
	}
	sb, faults := SecureBoot(log, v.Quote.PCRs)
	v.SecureBoot = sb
	v.Faults = append(v.Faults, faults...)
}

func (v *Verdict) appraiseIMA(in Input) {
	rsp := in.Response
	if rsp.IMAOffset != in.Request.IMAOffset {
		v.Faults = append(v.Faults, fault(FaultIMAUnparsable,
			"the IMA log starts at entry %d, the verifier asked for entry %d", rsp.IMAOffset, in.Request.IMAOffset))
		return
	}
	// An empty log from the first entry is the whole evidence of a kernel
	// that measured nothing (or has no IMA): it replays to the reset value,
	// so it passes only when the quoted PCR 10 is untouched.
	bank := ""
	for _, b := range imaBanks {
		if _, ok := v.Quote.PCRs[b][imaPCR]; ok {
			bank = b
			break
		}
	}
	if bank == "" {
		v.Faults = append(v.Faults, fault(FaultIMAReplay, "the quote does not cover PCR 10"))
		return
	}
	var start []byte
	if rsp.IMAOffset > 0 {
		if start = in.IMAStart[bank]; start == nil {
			v.Faults = append(v.Faults, fault(FaultIMAReplay,
				"the IMA log starts at entry %d but there is no %s PCR 10 value to start from", rsp.IMAOffset, bank))
			return
		}
	}
	res, faults := ReplayIMA(rsp.IMALog, start, bank)
	v.IMA = &res
	v.Faults = append(v.Faults, faults...)
	covered, faults := CompareIMA(res, v.Quote.PCRs)
	v.Faults = append(v.Faults, faults...)
	if len(faults) == 0 {
		v.IMAEntries = res.Entries[:covered]
		v.IMANextOffset = rsp.IMAOffset + covered
		v.IMANextValue = bytes.Clone(res.values[covered])
	}
}
