package appraise

import (
	"bytes"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-attestation/attest"

	"trustedcompute.io/tc/internal/evidence"
)

func TestEventLogReplaysToTheQuotedPCRs(t *testing.T) {
	l := newBootLog(t, 1, 3)
	log, err := ParseEventLog(l.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := log.Banks(); !slices.Equal(got, []string{evidence.BankSHA256, evidence.BankSHA384}) {
		t.Errorf("banks = %v", got)
	}
	if faults := log.Replay(l.quoted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)); len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
}

func TestEventLogReplayNamesEachFault(t *testing.T) {
	tests := []struct {
		name   string
		pcrs   func(l *bootLog) PCRs
		want   []string
		banks  []string
		pcrIdx []int
	}{
		{name: "a quoted PCR the log does not explain is a replay fault",
			pcrs: func(l *bootLog) PCRs {
				p := l.quoted(0, 7)
				p[evidence.BankSHA256][7] = bytes.Repeat([]byte{0xaa}, 32)
				return p
			},
			want: []string{FaultEventLogReplay}, banks: []string{evidence.BankSHA256}, pcrIdx: []int{7}},
		{name: "a quoted bank the log has no digests for is a replay fault",
			pcrs: func(l *bootLog) PCRs { return PCRs{evidence.BankSHA1: {0: make([]byte, 20)}} },
			want: []string{FaultEventLogReplay}, banks: []string{evidence.BankSHA1}},
		{name: "a log checked against no quoted PCR is a replay fault",
			pcrs: func(l *bootLog) PCRs { return PCRs{} },
			want: []string{FaultEventLogReplay}, banks: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newBootLog(t, 1, 0)
			log, err := ParseEventLog(l.bytes())
			if err != nil {
				t.Fatal(err)
			}
			faults := log.Replay(tt.pcrs(l))
			if got := faultNames(faults); !slices.Equal(got, tt.want) {
				t.Fatalf("faults = %v, want %v", faults, tt.want)
			}
			for i, f := range faults {
				if f.PCRBank != tt.banks[i] {
					t.Errorf("fault %d bank = %q, want %q", i, f.PCRBank, tt.banks[i])
				}
				if tt.pcrIdx != nil && (f.PCRIndex == nil || *f.PCRIndex != tt.pcrIdx[i] || f.Expected == "" || f.Actual == "") {
					t.Errorf("fault %d = %+v, want PCR %d with expected and actual values", i, f, tt.pcrIdx[i])
				}
			}
		})
	}
}

func TestPreOSPCRsMustBeExplainedByTheLog(t *testing.T) {
	b := newLogBuilder(evidence.BankSHA256).measure(0, evPostCode, []byte("crtm"))
	log := mustParse(t, b.bytes())
	quoted := b.quoted(0, 3, 10)
	quoted[evidence.BankSHA256][10] = bytes.Repeat([]byte{1}, 32) // IMA's PCR, not in the firmware log
	if faults := log.Replay(quoted); len(faults) > 0 {
		t.Fatalf("zero PCR 3 and a PCR outside the log's range must pass, faults: %v", faults)
	}
	quoted[evidence.BankSHA256][3] = bytes.Repeat([]byte{1}, 32)
	faults := log.Replay(quoted)
	if len(faults) != 1 || *faults[0].PCRIndex != 3 || faults[0].Actual != strings.Repeat("00", 32) {
		t.Fatalf("faults = %+v, want one PCR 3 fault replaying to zero", faults)
	}
}

func TestTamperedEventLogDoesNotReplay(t *testing.T) {
	l := newBootLog(t, 1, 0)
	raw := l.bytes()
	// Change one byte of the digest of the kernel event (the last one, PCR 9).
	i := bytes.LastIndex(raw, []byte("/vmlinuz\x00")) - 4 - 1
	raw[i] ^= 0xff
	log, err := ParseEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	faults := log.Replay(l.quoted(8, 9))
	if len(faults) != 1 || faults[0].PCRIndex == nil || *faults[0].PCRIndex != 9 || faults[0].PCRBank != evidence.BankSHA384 {
		t.Fatalf("faults = %v, want one SHA384 PCR 9 replay fault", faults)
	}
}

func TestParseEventLogRefusesMalformedLogs(t *testing.T) {
	good := newBootLog(t, 1, 0).bytes()
	tests := []struct {
		name string
		raw  []byte
	}{
		{"an empty log", nil},
		{"a log cut inside its first event", good[:30]},
		{"a log cut inside a later event", good[:len(good)-3]},
		{"a log with a trailing partial header", append(bytes.Clone(good), 1, 2, 3)},
		{"a Spec ID event of a version 1 log", bytes.Replace(bytes.Clone(good), []byte("Spec ID Event03\x00\x00\x00\x00\x00\x00\x02"), []byte("Spec ID Event03\x00\x00\x00\x00\x00\x00\x01"), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := ParseEventLog(tt.raw)
			var le *EventLogError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want an *EventLogError", err)
			}
		})
	}
}

func TestParseEventLogReadsLegacySHA1Logs(t *testing.T) {
	var b bytes.Buffer
	var pcr0 [20]byte
	for _, data := range []string{"crtm", "bios"} {
		sum := crypto.SHA1.New()
		sum.Write([]byte(data))
		digest := sum.Sum(nil)
		le(&b, uint32(0))
		le(&b, uint32(evPostCode))
		b.Write(digest)
		le(&b, uint32(len(data)))
		b.WriteString(data)
		ext := crypto.SHA1.New()
		ext.Write(pcr0[:])
		ext.Write(digest)
		copy(pcr0[:], ext.Sum(nil))
	}
	log, err := ParseEventLog(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if faults := log.Replay(PCRs{evidence.BankSHA1: {0: pcr0[:]}}); len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	if ev := log.Events(evidence.BankSHA1); len(ev) != 2 || ev[1].Description != "bios" {
		t.Fatalf("events = %+v", ev)
	}
}

func TestEventsDescribeTheLog(t *testing.T) {
	l := newBootLog(t, 1, 0)
	log, err := ParseEventLog(l.bytes())
	if err != nil {
		t.Fatal(err)
	}
	events := log.Events(evidence.BankSHA256)
	var names []string
	for _, ev := range events {
		if ev.Index == 7 {
			names = append(names, ev.TypeName+" "+ev.Description)
		}
	}
	want := []string{
		"EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot",
		"EV_EFI_VARIABLE_DRIVER_CONFIG PK",
		"EV_EFI_VARIABLE_DRIVER_CONFIG KEK",
		"EV_EFI_VARIABLE_DRIVER_CONFIG db",
		"EV_EFI_VARIABLE_DRIVER_CONFIG dbx",
		"EV_SEPARATOR separator",
		"EV_EFI_VARIABLE_AUTHORITY db",
	}
	if !slices.Equal(names, want) {
		t.Errorf("PCR 7 events = %q, want %q", names, want)
	}
	if events[0].TypeName != "EV_S_CRTM_VERSION" || events[0].Description != "edk2-stable202408" || len(events[0].Digest) != 64 {
		t.Errorf("first event = %+v", events[0])
	}
	if log.Events(evidence.BankSHA1) != nil {
		t.Error("events of a bank the log does not carry")
	}
	if !strings.HasPrefix(EventTypeName(0x1234), "0x") {
		t.Error("unknown event types are not named by number")
	}
}

// TestBuilderLogsParseLikeFirmwareLogs checks the test builder against
// go-attestation, which is tested on real firmware logs: if it accepts the
// log, replays it and reads the same Secure Boot state, our fixtures are
// shaped like real logs.
func TestBuilderLogsParseLikeFirmwareLogs(t *testing.T) {
	l := newBootLog(t, 1, 2)
	el, err := attest.ParseEventLog(l.bytes())
	if err != nil {
		t.Fatalf("go-attestation does not parse the log: %v", err)
	}
	var pcrs []attest.PCR
	quoted := l.quoted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	for _, i := range sortedIndexes(quoted[evidence.BankSHA256]) {
		pcrs = append(pcrs, attest.PCR{Index: i, Digest: quoted[evidence.BankSHA256][i], DigestAlg: crypto.SHA256})
	}
	events, err := el.Verify(pcrs)
	if err != nil {
		t.Fatalf("go-attestation does not replay the log: %v", err)
	}
	sb, err := attest.ParseSecurebootState(events)
	if err != nil {
		t.Fatalf("go-attestation does not read Secure Boot: %v", err)
	}
	ours, faults := SecureBoot(mustParse(t, l.bytes()), quoted)
	if len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	if sb.Enabled != ours.Enabled || len(sb.PlatformKeys) != len(ours.PK) || len(sb.PermittedKeys) != len(ours.DB) ||
		len(sb.ForbiddenHashes) != len(ours.DBX) || len(sb.PostSeparatorAuthority) != len(ours.Authorities) {
		t.Fatalf("go-attestation reads %+v, we read %+v", sb, ours)
	}
	if sb.PostSeparatorAuthority[0].Subject.String() != ours.Authorities[0] {
		t.Errorf("authority %q, go-attestation %q", ours.Authorities[0], sb.PostSeparatorAuthority[0].Subject)
	}
}

func mustParse(t testing.TB, raw []byte) *EventLog {
	t.Helper()
	log, err := ParseEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func TestStartupLocalitySetsTheInitialPCR0(t *testing.T) {
	b := newLogBuilder(evidence.BankSHA256)
	b.measure(0, evNoAction, append([]byte(startupLocalitySignature), 3))
	b.measure(0, evPostCode, []byte("crtm"))
	start := make([]byte, 32)
	start[31] = 3
	want := sha256Sum(append(start, sha256Sum([]byte("crtm"))...))
	log := mustParse(t, b.bytes())
	if faults := log.Replay(PCRs{evidence.BankSHA256: {0: want}}); len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
}
