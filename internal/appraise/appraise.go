package appraise

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
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
	// HeldEventLog is the event log the verifier named in
	// Request.EventLogDigest: what a verdict of the host's boot said of
	// it (Verdict.EventLog). When the agent leaves the log out, it is
	// appraised from EventLogMemo by HeldEventLog and this quote's PCR
	// values; nil when the request names no log.
	HeldEventLog *HeldEventLog
}

// HeldEventLog names an event log whose appraisal EventLogMemo may hold:
// the SHA-256 of its bytes, the PCRs it has events for (the replay reads
// those and 0 to 9, pcrsRead) and the boot of the quote it was appraised
// against. It holds no event: it is worth nothing without the memo, whose
// key it completes with the quoted PCR values.
type HeldEventLog struct {
	Digest [sha256.Size]byte
	// EventPCRs has bit i set when the log has events for PCR i (i < 64).
	EventPCRs uint64
	// ResetCount and RestartCount are the clockInfo of the quote the log
	// was appraised against: an omitted log is only taken within that boot.
	ResetCount, RestartCount uint32
	// key is the memo key of the appraisal, against that quote's PCRs.
	key [sha256.Size]byte
}

// Kept reports whether memo still holds the appraisal of the log against
// the PCR values of the quote it was appraised with. When it does not, a
// request naming the log would only be answered without it in vain: the
// verifier asks for the whole log at once instead.
func (h *HeldEventLog) Kept(memo EventLogMemo) bool {
	if h == nil || memo == nil {
		return false
	}
	_, ok := memo.Get(h.key)
	return ok
}

// EventLogMemo remembers event log appraisals, so that a log and quoted
// PCR values seen before are not replayed again. Appraise keys it with
// eventLogKey: the SHA-256 of everything the appraisal reads, the SHA-256
// of the log's bytes, the quoted banks and the value of every quoted PCR
// the replay reads (0 to 9, and any other the log has events for; PCR 10,
// which IMA extends, is not one unless the log has events for it). Another
// log, or one of those values that differs, is another key; so one memo
// serves any number of hosts. As the key needs the log's digest, not its
// bytes, an agent may leave out a log the verifier holds an appraisal of
// (HeldEventLog): that appraisal is found only for the PCR values of the
// new quote. The appraisals it returns are shared: nobody may change them.
// The quote itself is verified on every call, never remembered.
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
// SHA-256 of the log's bytes, then every bank of pcrs and each of its PCRs,
// by index, with its value, each field length-prefixed. pcrs are the PCRs
// the replay reads (pcrsRead).
func eventLogKey(digest [sha256.Size]byte, pcrs PCRs) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	h.Write([]byte("tc event log appraisal v2\x00"))
	field(digest[:])
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
	// EventLog names the event log appraised, for the next request of the
	// boot (Input.HeldEventLog); nil when there was none that decoded.
	EventLog *HeldEventLog `json:"-"`
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
	v.appraiseBootLog(in)
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

// appraiseBootLog appraises the event log of the answer, or the one the
// request named when the answer left it out.
func (v *Verdict) appraiseBootLog(in Input) {
	if len(in.Response.EventLog) == 0 && len(in.Request.EventLogDigest) > 0 {
		v.appraiseHeldEventLog(in)
		return
	}
	v.appraiseEventLog(in.Response.EventLog, in.EventLogMemo)
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
	held := &HeldEventLog{Digest: sha256.Sum256(raw), EventPCRs: log.eventPCRs(),
		ResetCount: v.Quote.ClockInfo.ResetCount, RestartCount: v.Quote.ClockInfo.RestartCount}
	var a *EventLogAppraisal
	if memo != nil {
		held.key = eventLogKey(held.Digest, pcrsRead(v.Quote.PCRs, held.EventPCRs))
		var ok bool
		if a, ok = memo.Get(held.key); !ok {
			a = appraiseEventLog(log, v.Quote.PCRs)
			memo.Put(held.key, a)
		}
	} else {
		a = appraiseEventLog(log, v.Quote.PCRs)
	}
	v.useEventLogAppraisal(a, held)
}

func (v *Verdict) useEventLogAppraisal(a *EventLogAppraisal, held *HeldEventLog) {
	v.Faults = append(v.Faults, a.Faults...)
	v.Events, v.SecureBoot, v.EventLog = a.Events, a.SecureBoot, held
}

// appraiseHeldEventLog appraises a quote whose request named the event log
// the verifier holds (Request.EventLogDigest) and whose answer has no log.
// The agent's word that its log is that one is taken only as far as the
// memo vouches for it: the appraisal is the one made from a log with that
// digest replayed against exactly the PCR values this quote covers (which
// a log of other content replays to only with a hash collision), and only
// within the boot it was made in. Anything else, whatever the agent
// claims, is FaultEventLogNotHeld: the verifier asks again for the log.
func (v *Verdict) appraiseHeldEventLog(in Input) {
	held, asked, named := in.HeldEventLog, in.Request.EventLogDigest, in.Response.EventLogDigest
	clock := v.Quote.ClockInfo
	var why string
	switch {
	case held == nil || !bytes.Equal(asked, held.Digest[:]):
		why = "the request named an event log the verifier holds nothing of"
	case !bytes.Equal(named, asked):
		why = fmt.Sprintf("the agent left the event log out, naming log %x, not the one asked about", named)
	case clock.ResetCount != held.ResetCount || clock.RestartCount != held.RestartCount:
		why = "the quote is of another boot than the one the held event log was appraised in"
	case in.EventLogMemo == nil:
		why = "no event log appraisals are kept"
	default:
		kept := *held
		kept.key = eventLogKey(held.Digest, pcrsRead(v.Quote.PCRs, held.EventPCRs))
		if a, ok := in.EventLogMemo.Get(kept.key); ok {
			v.useEventLogAppraisal(a, &kept)
			return
		}
		why = "no appraisal of the held event log against the quoted PCR values is kept"
	}
	v.Faults = append(v.Faults,
		fault(FaultEventLogNotHeld, "%s", why),
		fault(FaultSecureBootUnparsable, "there is no event log to read Secure Boot from"))
}

// eventPCRs has bit i set for each PCR i < 64 the log has events for.
func (l *EventLog) eventPCRs() uint64 {
	var set uint64
	for _, ev := range l.events {
		if ev.typ != evNoAction && ev.index >= 0 && ev.index < 64 {
			set |= 1 << ev.index
		}
	}
	return set
}

// pcrsRead are the quoted PCRs the replay and Secure Boot read: every
// bank, and in each the PCRs 0 to 9 and those the log has events for
// (eventPCRs, EventLog.hasEvents); any PCR past 63, which eventPCRs cannot
// tell, is counted as read.
func pcrsRead(pcrs PCRs, eventPCRs uint64) PCRs {
	out := make(PCRs, len(pcrs))
	for bank, values := range pcrs {
		read := make(map[int][]byte, len(values))
		for i, value := range values {
			if i <= lastPreOSPCR || i >= 64 || eventPCRs&(1<<i) != 0 {
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
