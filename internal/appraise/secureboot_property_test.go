package appraise

import (
	"bytes"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The property: whatever an attacker with root does to the log of a real
// boot — relabel any event's type, insert events and extend their digests
// into the PCRs — either PCR 7 no longer replays or the Secure Boot
// verdict is unchanged; a fault is allowed, a boot with Secure Boot off
// never reads on, and one with it on never gets another policy.

// capture is one real boot: its log and the PCRs read in the same boot.
type capture struct {
	name string
	raw  []byte
	log  *editLog
	pcrs PCRs
	// genuine is what SecureBoot reads from the unaltered log.
	genuine SecureBootState
}

func loadCaptures(t testing.TB) []capture {
	t.Helper()
	paths, err := filepath.Glob("testdata/ovmf/*.bin")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no OVMF captures in testdata/ovmf (%v)", err)
	}
	var cs []capture
	for _, p := range paths {
		c := capture{name: strings.TrimSuffix(filepath.Base(p), ".bin"), raw: readFile(t, p),
			pcrs: readPCRs(t, strings.TrimSuffix(p, ".bin")+".pcrs.json")}
		c.log = openLog(t, c.raw)
		st, faults := SecureBoot(mustParse(t, c.raw), c.pcrs)
		if len(faults) > 0 {
			t.Fatalf("%s: %v", c.name, faults)
		}
		c.genuine = st
		cs = append(cs, c)
	}
	return cs
}

// forgery is what the attacker does to a capture, in order.
type forgery struct {
	ops []forgeOp
}

type forgeOp struct {
	insert bool
	// at is the event to relabel, or where to insert (both modulo the
	// number of events).
	at  int
	typ uint32
	// For an insert: the PCR, the data, the content its digest is the hash
	// of, and whether the digest is extended into the PCR.
	pcr           int
	data, content []byte
	extend        bool
}

// forgeTypes are the types the attacker gives events: every type we know
// of and two we do not.
var forgeTypes = func() []uint32 {
	types := []uint32{0xdeadbeef, 0x800000ff}
	for t := range eventTypeNames {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	return types
}()

// forgeData are event data an attacker would insert into PCR 7.
var forgeData = func() [][2][]byte {
	list := sigList(efiCertSHA256, bytes.Repeat([]byte{0xab}, 32))
	sbOn := variable(efiGlobalVariable, "SecureBoot", []byte{1})
	same := func(b []byte) [2][]byte { return [2][]byte{b, b} }
	return [][2][]byte{
		same(sbOn),
		same(variable(efiGlobalVariable, "SecureBoot", []byte{0})),
		same(variable(efiGlobalVariable, "SecureBoot", nil)),
		same(variable(testOwner, "SecureBoot", []byte{1})),
		same(variable(efiGlobalVariable, "PK", list)),
		same(variable(efiGlobalVariable, "KEK", list)),
		same(variable(efiImageSecurityDB, "db", list)),
		same(variable(efiImageSecurityDB, "dbx", list)),
		same(variable(efiImageSecurityDB, "db", append(testOwner[:], 0x30, 0x82, 0, 1, 0))),
		same(variable(testOwner, "SbatLevel", []byte("sbat,1,2021030218\n"))),
		{append(bytes.Clone(sbOn), 0), sbOn}, // old shim's excess byte
		{sbOn, []byte("an image")},           // data the digest does not cover
		same([]byte{0, 0, 0, 0}),
		same([]byte{0xff, 0xff, 0xff, 0xff}),
		same([]byte(actionDebugMode)),
		same([]byte(actionDMAProtectionDisabled)),
		same([]byte("Calling EFI Application from Boot Option")),
		same(nil),
	}
}()

// apply rewrites the capture's log and returns it with the PCR values the
// TPM holds after the genuine boot and the attacker's extends.
func (f forgery) apply(t testing.TB, c capture) ([]byte, PCRs) {
	l := &editLog{header: c.log.header, algs: c.log.algs, events: slices.Clone(c.log.events)}
	pcrs := PCRs{}
	for bank, values := range c.pcrs {
		pcrs[bank] = map[int][]byte{}
		for i, v := range values {
			pcrs[bank][i] = bytes.Clone(v)
		}
	}
	for _, op := range f.ops {
		if !op.insert {
			if len(l.events) > 0 {
				l.events[op.at%len(l.events)].typ = op.typ
			}
			continue
		}
		ev := l.event(op.pcr, op.typ, op.content)
		ev.data = op.data
		l.events = slices.Insert(l.events, op.at%(len(l.events)+1), ev)
		if op.extend {
			l.extend(pcrs, ev)
		}
	}
	return l.bytes(), pcrs
}

// checkForgery asserts the property for one forgery of one capture.
func checkForgery(t *testing.T, c capture, f forgery) {
	t.Helper()
	raw, pcrs := f.apply(t, c)
	log, err := ParseEventLog(raw)
	if err != nil {
		t.Fatalf("%s: the rewritten log does not decode: %v", c.name, err)
	}
	st, faults := SecureBoot(log, pcrs)
	if st.Enabled && !c.genuine.Enabled {
		t.Fatalf("%s with Secure Boot off reads on after %+v", c.name, f.ops)
	}
	if len(faults) > 0 {
		if st.Enabled {
			t.Fatalf("%s: Secure Boot on with faults %v", c.name, faults)
		}
		return
	}
	g := c.genuine
	if st.Enabled != g.Enabled || !slices.Equal(st.PK, g.PK) || !slices.Equal(st.KEK, g.KEK) ||
		!slices.Equal(st.DB, g.DB) || !slices.Equal(st.DBX, g.DBX) {
		t.Fatalf("%s: the Secure Boot verdict changed without a fault after %+v:\n got %+v\nwant %+v", c.name, f.ops, st, g)
	}
}

func TestSecureBootSurvivesRelabellingAnyEvent(t *testing.T) {
	for _, c := range loadCaptures(t) {
		t.Run("every event of "+c.name+" relabelled to every type", func(t *testing.T) {
			n := len(mustParse(t, c.raw).events)
			for at := 0; at < n; at++ {
				for _, typ := range forgeTypes {
					checkForgery(t, c, forgery{ops: []forgeOp{{at: at, typ: typ}}})
				}
			}
		})
	}
}

func TestSecureBootSurvivesExtendedInsertions(t *testing.T) {
	for _, c := range loadCaptures(t) {
		if c.name != "sb-off" && c.name != "sb-on" {
			continue // the other captures have the PCR 7 events of sb-on
		}
		t.Run("events inserted into "+c.name+" and extended", func(t *testing.T) {
			n := len(c.log.events)
			// Before the PCR 7 separator, after it, at the end.
			for _, at := range []int{3, 9, n} {
				for _, typ := range forgeTypes {
					for _, d := range forgeData {
						checkForgery(t, c, forgery{ops: []forgeOp{{insert: true, at: at, typ: typ, pcr: 7,
							data: d[0], content: d[1], extend: true}}})
					}
				}
			}
			// Not extended, or into another PCR.
			for _, typ := range forgeTypes {
				for _, d := range forgeData {
					checkForgery(t, c, forgery{ops: []forgeOp{{insert: true, at: n, typ: typ, pcr: 7, data: d[0], content: d[1]}}})
					checkForgery(t, c, forgery{ops: []forgeOp{{insert: true, at: n, typ: typ, pcr: 4, data: d[0], content: d[1], extend: true}}})
				}
			}
		})
	}
}

// TestSecureBootSurvivesTheRelabelAttackWithAnyTypes plays the attack of
// issue 12 with every pair of types: the separator and the SecureBoot
// variable of PCR 7 relabelled, SecureBoot=1 appended and extended.
func TestSecureBootSurvivesTheRelabelAttackWithAnyTypes(t *testing.T) {
	for _, c := range loadCaptures(t) {
		if c.name != "sb-off" && c.name != "sb-on" {
			continue
		}
		sep := slices.IndexFunc(c.log.events, func(ev rawEvent) bool { return ev.index == 7 && ev.typ == evSeparator })
		sb := slices.IndexFunc(c.log.events, func(ev rawEvent) bool { return ev.index == 7 && isVariable("SecureBoot")(ev) })
		if sep < 0 || sb < 0 {
			t.Fatalf("%s has no PCR 7 separator or SecureBoot variable", c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			for _, sepType := range forgeTypes {
				for _, sbType := range forgeTypes {
					checkForgery(t, c, forgery{ops: []forgeOp{{at: sep, typ: sepType}, {at: sb, typ: sbType},
						{insert: true, at: len(c.log.events), typ: evEFIVariableDriverConfig, pcr: 7,
							data: forgeData[0][0], content: forgeData[0][1], extend: true}}})
				}
			}
		})
	}
}

// FuzzSecureBootRelabel rewrites the real OVMF logs as the fuzzer says:
// each op is 6 bytes (kind, where, type, PCR, data, extend).
func FuzzSecureBootRelabel(f *testing.F) {
	cs := loadCaptures(f)
	// The captures in name order: sb-off, sb-on-cmdline2, sb-on-reboot, sb-on.
	f.Add(byte(3), []byte{})
	// The attack of issue 12 on sb-off: events 3 (SecureBoot) and 8 (the
	// separator) of PCR 7 relabelled EV_EFI_VARIABLE_BOOT and EV_EFI_ACTION,
	// SecureBoot=1 appended and extended.
	f.Add(byte(0), []byte{0, 3, typeIndex(evEFIVariableBoot), 0, 0, 0, 0, 8, typeIndex(evEFIAction), 0, 0, 0,
		1, 255, typeIndex(evEFIVariableDriverConfig), 0, 0, 1})
	f.Add(byte(3), []byte{1, 255, typeIndex(evEFIVariableAuthority), 0, 8, 1})
	f.Fuzz(func(t *testing.T, which byte, ops []byte) {
		c := cs[int(which)%len(cs)]
		var fg forgery
		for ; len(ops) >= 6 && len(fg.ops) < 8; ops = ops[6:] {
			d := forgeData[int(ops[4])%len(forgeData)]
			fg.ops = append(fg.ops, forgeOp{insert: ops[0]%2 == 1, at: int(ops[1]), typ: forgeTypes[int(ops[2])%len(forgeTypes)],
				pcr: []int{7, 7, 7, 0, 4, 14}[int(ops[3])%6], data: d[0], content: d[1], extend: ops[5]%2 == 1})
		}
		checkForgery(t, c, fg)
	})
}

func typeIndex(typ uint32) byte { return byte(slices.Index(forgeTypes, typ)) }
