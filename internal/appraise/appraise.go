package appraise

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"trustedcompute.io/tc/internal/evidence"
)

// Input is everything one appraisal needs.
type Input struct {
	// AKPublic is the TPMT_PUBLIC of the node's enrolled AK.
	AKPublic []byte
	// AK, when set, is AKPublic parsed already (ParseAK), kept by the
	// caller so that it is not decoded at every appraisal. It is used only
	// when its public area is AKPublic byte for byte; otherwise AKPublic
	// is parsed again.
	AK *AK
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
	// EventLogMemo, when set, remembers event log appraisals (nil: none).
	EventLogMemo EventLogMemo
}

// EventLogMemo remembers event log appraisals, so that a log and quoted
// PCR values seen before are not replayed again. Appraise keys it with
// eventLogKey: the SHA-256 of everything the appraisal reads, the log's
// bytes, the quoted banks and the value of every quoted PCR the replay
// reads (0 to 9, and any other the log has events for; PCR 10, which IMA
// extends, is not one unless the log has events for it). Another log, or
// one of those values that differs, is another key; so one memo serves any
// number of hosts. The appraisals it returns are shared: nobody may change
// them. The quote itself is verified on every call, never remembered.
type EventLogMemo interface {
	Get(key [sha256.Size]byte) (*EventLogAppraisal, bool)
	Put(key [sha256.Size]byte, a *EventLogAppraisal)
}

// EventLogAppraisal is what the event log tells against a verified quote:
// its faults, the events of the PCRs that replayed, and Secure Boot.
type EventLogAppraisal struct {
	Faults     []Fault
	Events     map[string][]Event
	SecureBoot SecureBootState
}

// eventLogKey is the memo key of an event log appraisal: SHA-256 over the
// log's length and bytes, then every bank of pcrs and each of its PCRs, by
// index, with its value, each field length-prefixed. pcrs are the PCRs the
// replay reads (EventLog.readPCRs).
func eventLogKey(raw []byte, pcrs PCRs) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	h.Write([]byte("tc event log appraisal v1\x00"))
	field(raw)
	banks := make([]string, 0, len(pcrs))
	for bank := range pcrs {
		banks = append(banks, bank)
	}
	slices.Sort(banks)
	for _, bank := range banks {
		field([]byte(bank))
		for _, i := range sortedIndexes(pcrs[bank]) {
			binary.BigEndian.PutUint64(n[:], uint64(i))
			h.Write(n[:])
			field(pcrs[bank][i])
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
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
// SHA-256 comes first: the replay binds every line to the quoted PCR 10 of
// one bank, and SHA-256 binds it as well as SHA-384 does, at a third to a
// quarter of the cost on CPUs with SHA instructions (they accelerate
// SHA-1 and SHA-256, not SHA-512 and SHA-384), for two hashes a line. The
// verdict names the bank replayed (IMA.Bank); the next appraisal of the
// boot must start from that bank's value (Input.IMAStart).
var imaBanks = []string{evidence.BankSHA256, evidence.BankSHA384, evidence.BankSHA1}

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
	q, faults := verifyQuote(in.AKPublic, in.AK, evidence.QualifyingData(in.Request.Nonce, facts), in.Response)
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
	v.appraiseEventLog(in.Response.EventLog, in.EventLogMemo)
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

func (v *Verdict) appraiseEventLog(raw []byte, memo EventLogMemo) {
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
	var a *EventLogAppraisal
	if memo != nil {
		key := eventLogKey(raw, log.readPCRs(v.Quote.PCRs))
		var ok bool
		if a, ok = memo.Get(key); !ok {
			a = appraiseEventLog(log, v.Quote.PCRs)
			memo.Put(key, a)
		}
	} else {
		a = appraiseEventLog(log, v.Quote.PCRs)
	}
	v.Faults = append(v.Faults, a.Faults...)
	v.Events, v.SecureBoot = a.Events, a.SecureBoot
}

// readPCRs are the quoted PCRs the replay and Secure Boot read: every
// bank, and in each the PCRs 0 to 9 and those the log has events for.
func (l *EventLog) readPCRs(pcrs PCRs) PCRs {
	out := make(PCRs, len(pcrs))
	for bank, values := range pcrs {
		read := make(map[int][]byte, len(values))
		for i, value := range values {
			if i <= lastPreOSPCR || l.hasEvents(i) {
				read[i] = value
			}
		}
		out[bank] = read
	}
	return out
}

// appraiseEventLog replays a decoded event log against the verified
// quote's PCRs and reads Secure Boot from it.
func appraiseEventLog(log *EventLog, pcrs PCRs) *EventLogAppraisal {
	a := &EventLogAppraisal{Events: map[string][]Event{}}
	faults, replayed := log.replay(pcrs)
	a.Faults = append(a.Faults, faults...)
	for bank, indexes := range replayed {
		if events := log.publicEvents(bank, indexes); len(events) > 0 {
			a.Events[bank] = events
		}
	}
	sb, faults := SecureBoot(log, pcrs)
	a.SecureBoot = sb
	a.Faults = append(a.Faults, faults...)
	return a
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
		v.IMANextValue = bytes.Clone(res.valueAt(covered))
	}
}
