package appraise

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/evidence"
)

// An agent may leave out the event log a request names. The verdict must
// then be exactly the one the log itself gives, and only where the memo
// holds the appraisal made from a log with the named digest against the
// very PCR values of this quote, in the boot it was made in; anything else
// is FaultEventLogNotHeld, or, where the request named no log,
// FaultEvidenceMissing as for any missing log.
func TestAnEventLogLeftOutIsTakenFromTheMemoOnlyForTheSameLogPCRsAndBoot(t *testing.T) {
	log := readFile(t, "testdata/ovmf/sb-on-reboot.bin")
	pcrs := only(readPCRs(t, "testdata/ovmf/sb-on-reboot.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	clock := ClockInfo{ResetCount: 4, RestartCount: 1}
	memo := &mapMemo{m: map[[sha256.Size]byte]*EventLogAppraisal{}}
	genuine := Verdict{Quote: &Quote{PCRs: clonePCRs(pcrs), ClockInfo: clock}}
	genuine.appraiseEventLog(log, memo)
	if len(genuine.Faults) != 0 || genuine.EventLog == nil {
		t.Fatalf("the genuine boot: faults %v, event log named %v", genuine.Faults, genuine.EventLog)
	}
	held := *genuine.EventLog
	if held.Digest != sha256.Sum256(log) || held.ResetCount != 4 || held.RestartCount != 1 {
		t.Fatalf("the verdict names %+v", held)
	}
	digest := held.Digest[:]
	moved := clonePCRs(pcrs)
	moved["SHA256"][1][0] ^= 1
	other := bytes.Repeat([]byte{0x5a}, sha256.Size)

	tests := []struct {
		name   string
		edit   func(in *Input, q *Quote)
		faults []string // nil: the genuine verdict
	}{
		{"the named log against the same PCRs in the same boot is the genuine verdict", func(*Input, *Quote) {}, nil},
		{"a quoted PCR 10 (IMA) that moved changes nothing", func(_ *Input, q *Quote) {
			q.PCRs["SHA256"][10] = bytes.Repeat([]byte{0x10}, sha256.Size)
		}, nil},
		{"a boot log PCR that moved is not held", func(_ *Input, q *Quote) { q.PCRs = moved },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a quote of another boot is not held", func(_ *Input, q *Quote) { q.ClockInfo.ResetCount++ },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a quote after a resume is not held", func(_ *Input, q *Quote) { q.ClockInfo.RestartCount++ },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"an agent naming another log is not held", func(in *Input, _ *Quote) { in.Response.EventLogDigest = other },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"an agent naming no log is not held", func(in *Input, _ *Quote) { in.Response.EventLogDigest = nil },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a request naming a log the verifier does not hold is not held", func(in *Input, _ *Quote) {
			in.Request.EventLogDigest, in.Response.EventLogDigest = other, other
		}, []string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a verifier that holds nothing of the log is not held", func(in *Input, _ *Quote) { in.HeldEventLog = nil },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a verifier without a memo is not held", func(in *Input, _ *Quote) { in.EventLogMemo = nil },
			[]string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"an appraisal evicted from the memo is not held", func(in *Input, _ *Quote) {
			in.EventLogMemo = &mapMemo{m: map[[sha256.Size]byte]*EventLogAppraisal{}}
		}, []string{FaultEventLogNotHeld, FaultSecureBootUnparsable}},
		{"a log left out when the request named none is missing", func(in *Input, _ *Quote) { in.Request.EventLogDigest = nil },
			[]string{FaultEvidenceMissing, FaultSecureBootUnparsable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{
				Request:      evidence.QuoteRequest{EventLog: true, EventLogDigest: slices.Clone(digest)},
				Response:     &evidence.QuoteResponse{EventLogDigest: slices.Clone(digest)},
				EventLogMemo: memo,
				HeldEventLog: &held,
			}
			q := &Quote{PCRs: clonePCRs(pcrs), ClockInfo: clock}
			tt.edit(&in, q)
			got := Verdict{Quote: q}
			got.appraiseBootLog(in)
			if tt.faults == nil {
				if len(got.Faults) != 0 || !reflect.DeepEqual(got.Events, genuine.Events) ||
					!reflect.DeepEqual(got.SecureBoot, genuine.SecureBoot) || !reflect.DeepEqual(got.EventLog, genuine.EventLog) {
					t.Fatalf("faults %v, secure boot %+v, log %+v; the log itself gives secure boot %+v, log %+v",
						got.Faults, got.SecureBoot, got.EventLog, genuine.SecureBoot, genuine.EventLog)
				}
				return
			}
			var names []string
			for _, f := range got.Faults {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, tt.faults) || got.Events != nil || got.EventLog != nil || got.SecureBoot.Enabled {
				t.Fatalf("faults %v, events of %d banks, log %+v, secure boot %+v; want faults %v and nothing read",
					names, len(got.Events), got.EventLog, got.SecureBoot, tt.faults)
			}
		})
	}
}

// A held log is Kept while the memo holds its last appraisal, so that a
// verifier names no log whose answer without it would be in vain.
func TestAHeldLogIsKeptWhileTheMemoHoldsItsAppraisal(t *testing.T) {
	memo := &mapMemo{m: map[[sha256.Size]byte]*EventLogAppraisal{}}
	v := Verdict{Quote: &Quote{PCRs: only(readPCRs(t, "testdata/ovmf/sb-on-reboot.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}}
	v.appraiseEventLog(readFile(t, "testdata/ovmf/sb-on-reboot.bin"), memo)
	if !v.EventLog.Kept(memo) {
		t.Fatal("a log just appraised is not kept")
	}
	if v.EventLog.Kept(nil) || (*HeldEventLog)(nil).Kept(memo) {
		t.Fatal("a log is kept without a memo, or no log is")
	}
	clear(memo.m)
	if v.EventLog.Kept(memo) {
		t.Fatal("a log whose appraisal was evicted is kept")
	}
}

// The memo key reads the log's digest and, beyond PCRs 0 to 9, exactly the
// PCRs the log has events for: what the held log records (EventPCRs) picks
// the same PCRs as the log itself (hasEvents).
func TestTheHeldLogReadsThePCRsTheLogHasEventsFor(t *testing.T) {
	for _, name := range []string{"sb-on-reboot", "sb-on-cmdline2"} {
		t.Run(name, func(t *testing.T) {
			log, err := ParseEventLog(readFile(t, "testdata/ovmf/"+name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			all := PCRs{"SHA256": {}}
			for i := range 24 {
				all["SHA256"][i] = []byte{byte(i)}
			}
			var want []int
			for i := range 24 {
				if i <= lastPreOSPCR || log.hasEvents(i) {
					want = append(want, i)
				}
			}
			if got := sortedIndexes(pcrsRead(all, log.eventPCRs())["SHA256"]); !slices.Equal(got, want) {
				t.Fatalf("the key reads PCRs %v, the replay %v", got, want)
			}
		})
	}
}

// BenchmarkSteadyBootLog is the boot log's part of a steady report whose
// appraisal the memo holds: the log sent whole (decoded, hashed, its memo
// key made) or left out as the request named it (the memo key made from
// the named digest). Logs: a real OVMF boot and the 152-event log of
// BenchmarkAppraise.
func BenchmarkSteadyBootLog(b *testing.B) {
	n := newNode(b, "ecc-p256", 130, 0)
	logs := []struct {
		name string
		log  []byte
		pcrs PCRs
	}{
		{"ovmf", readFile(b, "testdata/ovmf/sb-on-reboot.bin"), only(readPCRs(b, "testdata/ovmf/sb-on-reboot.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
		{"152-events", n.rsp.EventLog, only(n.pcrs, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
	}
	for _, l := range logs {
		memo := &mapMemo{m: map[[sha256.Size]byte]*EventLogAppraisal{}}
		first := Verdict{Quote: &Quote{PCRs: l.pcrs}}
		first.appraiseEventLog(l.log, memo)
		if len(first.Faults) != 0 {
			b.Fatalf("%s: %v", l.name, first.Faults)
		}
		held := first.EventLog
		named := evidence.QuoteRequest{EventLog: true, EventLogDigest: held.Digest[:]}
		for _, c := range []struct {
			name string
			in   Input
		}{
			{"sent", Input{Request: evidence.QuoteRequest{EventLog: true}, Response: &evidence.QuoteResponse{EventLog: l.log}, EventLogMemo: memo}},
			{"left-out", Input{Request: named, Response: &evidence.QuoteResponse{EventLogDigest: held.Digest[:]}, EventLogMemo: memo, HeldEventLog: held}},
		} {
			b.Run(l.name+"/log="+c.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu := benchfloor.Start()
				for b.Loop() {
					v := Verdict{Quote: first.Quote}
					v.appraiseBootLog(c.in)
					if len(v.Faults) != 0 {
						b.Fatal(v.Faults)
					}
				}
				cpu.Report(b)
				benchfloor.ReportRatio(b)
				b.ReportMetric(float64(len(l.log)), "log-bytes")
			})
		}
	}
}
