package appraise

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// An attacker with root on a node rewrites its event log at will: no
// digest covers an event's type, and root can extend any PCR with any
// digest. These tests play that attacker against the real OVMF captures.

// editLog is a crypto-agile event log opened for rewriting.
type editLog struct {
	header []byte // the Spec ID event, as it was
	algs   []logAlg
	events []rawEvent
}

func openLog(t testing.TB, raw []byte) *editLog {
	t.Helper()
	log, err := ParseEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 32 {
		t.Fatalf("a log of %d bytes has no Spec ID event", len(raw))
	}
	// TCG_PCClientPCREvent: PCR, type, SHA-1 digest, data size, data.
	n := 32 + int(binary.LittleEndian.Uint32(raw[28:32]))
	return &editLog{header: raw[:n:n], algs: log.algs, events: slices.Clone(log.events)}
}

func (e *editLog) bytes() []byte {
	var b bytes.Buffer
	b.Write(e.header)
	for _, ev := range e.events {
		le(&b, uint32(ev.index))
		le(&b, ev.typ)
		le(&b, uint32(len(e.algs)))
		for i, a := range e.algs {
			le(&b, uint16(a.id))
			b.Write(ev.digests[i])
		}
		le(&b, uint32(len(ev.data)))
		b.Write(ev.data)
	}
	return b.Bytes()
}

// event makes an event whose digest in every bank is the hash of data.
func (e *editLog) event(pcr int, typ uint32, data []byte) rawEvent {
	ev := rawEvent{index: pcr, typ: typ, data: data}
	for _, a := range e.algs {
		h, _ := bankHash(a.bank)
		d := h.New()
		d.Write(data)
		ev.digests = append(ev.digests, d.Sum(nil))
	}
	return ev
}

// extend extends an event's digests into the PCR values, as root can.
func (e *editLog) extend(pcrs PCRs, ev rawEvent) {
	for i, a := range e.algs {
		values, ok := pcrs[a.bank]
		if !ok {
			continue
		}
		h, _ := bankHash(a.bank)
		d := h.New()
		d.Write(values[ev.index])
		d.Write(ev.digests[i])
		values[ev.index] = d.Sum(nil)
	}
}

// measure appends an event whose digests are the hashes of data and
// extends them into the PCR values, as root can.
func (e *editLog) measure(pcrs PCRs, pcr int, typ uint32, data []byte) {
	ev := e.event(pcr, typ, data)
	e.events = append(e.events, ev)
	e.extend(pcrs, ev)
}

// relabel gives the PCR 7 events that match a new type.
func (e *editLog) relabel(match func(ev rawEvent) bool, typ uint32) int {
	n := 0
	for i := range e.events {
		if e.events[i].index == secureBootPCR && match(e.events[i]) {
			e.events[i].typ = typ
			n++
		}
	}
	return n
}

func isType(typ uint32) func(rawEvent) bool { return func(ev rawEvent) bool { return ev.typ == typ } }

func isVariable(name string) func(rawEvent) bool {
	return func(ev rawEvent) bool {
		v, err := parseVariableData(ev.data)
		return err == nil && v.name == name
	}
}

// appraiseLog is the event log part of Appraise over quoted PCR values:
// decode, replay, Secure Boot.
func appraiseLog(t testing.TB, raw []byte, pcrs PCRs) (SecureBootState, []Fault) {
	t.Helper()
	log, err := ParseEventLog(raw)
	if err != nil {
		t.Fatalf("the rewritten log does not decode: %v", err)
	}
	faults := log.Replay(pcrs)
	st, sb := SecureBoot(log, pcrs)
	return st, append(faults, sb...)
}

// TestSecureBootForgedOnByRewritingTheLogIsNotOn plays the attack of issue
// 12 on the real log of an OVMF boot with Secure Boot off, and variants of
// it: every forgery replays to the quoted PCRs (the test checks that), and
// Secure Boot must never read on.
func TestSecureBootForgedOnByRewritingTheLogIsNotOn(t *testing.T) {
	sbOn := variable(efiGlobalVariable, "SecureBoot", []byte{1})
	tests := []struct {
		name   string
		forge  func(t *testing.T, l *editLog, pcrs PCRs)
		faults bool // false: it must read as Secure Boot off without doubt
	}{
		{"the separator relabelled EV_EFI_ACTION, SecureBoot=0 relabelled EV_EFI_VARIABLE_BOOT and SecureBoot=1 appended",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				if l.relabel(isType(evSeparator), evEFIAction) != 1 || l.relabel(isVariable("SecureBoot"), evEFIVariableBoot) != 1 {
					t.Fatal("the capture does not have one PCR 7 separator and one SecureBoot variable")
				}
				l.measure(pcrs, 7, evEFIVariableDriverConfig, sbOn)
			}, true},
		{"SecureBoot=1 appended after the separator",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				l.measure(pcrs, 7, evEFIVariableDriverConfig, sbOn)
			}, true},
		{"the separator relabelled EV_EFI_SPDM_DEVICE_POLICY and SecureBoot=1 appended",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				l.relabel(isType(evSeparator), evEFISPDMDevicePolicy)
				l.measure(pcrs, 7, evEFIVariableDriverConfig, sbOn)
			}, true},
		{"SecureBoot=0 relabelled EV_EFI_VARIABLE_AUTHORITY and SecureBoot=1 appended as an authority",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				l.relabel(isVariable("SecureBoot"), evEFIVariableAuthority)
				l.measure(pcrs, 7, evEFIVariableAuthority, sbOn)
			}, true},
		{"SecureBoot=0 relabelled EV_NO_ACTION so that replay skips it",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				l.relabel(isVariable("SecureBoot"), evNoAction)
			}, true},
		{"an EV_NO_ACTION event with SecureBoot=1, never extended",
			func(t *testing.T, l *editLog, pcrs PCRs) {
				l.events = slices.Insert(l.events, 1, l.event(7, evNoAction, sbOn))
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name+" does not read on", func(t *testing.T) {
			l := openLog(t, readFile(t, "testdata/ovmf/sb-off.bin"))
			pcrs := only(readPCRs(t, "testdata/ovmf/sb-off.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11)
			tt.forge(t, l, pcrs)
			st, faults := appraiseLog(t, l.bytes(), pcrs)
			if st.Enabled {
				t.Fatalf("Secure Boot reads on; faults %v", faults)
			}
			var sb []Fault
			for _, f := range faults {
				switch f.Name {
				case FaultSecureBootUnparsable:
					sb = append(sb, f)
				case FaultEventLogReplay:
					// A forgery that does not replay proves nothing about
					// the Secure Boot check, except for the one that is
					// meant to break replay.
					if *f.PCRIndex != 7 || !tt.faults {
						t.Fatalf("the forged log does not replay: %v", f)
					}
				default:
					t.Fatalf("unexpected fault %v", f)
				}
			}
			if (len(sb) > 0) != tt.faults {
				t.Fatalf("Secure Boot faults %v, want faults %t", sb, tt.faults)
			}
		})
	}
}
