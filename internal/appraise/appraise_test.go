package appraise

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/evidence"
)

var testNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func TestAppraiseTrustsConsistentEvidence(t *testing.T) {
	n := newNode(t, "ecc-p256", 5, 20)
	v := Appraise(n.input(), testNow)
	if !v.Trusted() {
		t.Fatalf("faults: %v", v.Faults)
	}
	if rc, ok := v.ResetCount(); !ok || rc != 7 {
		t.Errorf("reset count %d %t, want 7", rc, ok)
	}
	if !v.SecureBoot.Enabled || len(v.SecureBoot.Authorities) != 1 {
		t.Errorf("secure boot %+v", v.SecureBoot)
	}
	if len(v.IMAEntries) != 21 || v.IMANextOffset != 21 || len(v.IMANextValue) != 32 || v.IMA.Bank != evidence.BankSHA256 {
		t.Errorf("IMA: %d entries, next offset %d, next %s value %x", len(v.IMAEntries), v.IMANextOffset, v.IMA.Bank, v.IMANextValue)
	}
	for _, bank := range []string{evidence.BankSHA256, evidence.BankSHA384} {
		if len(v.Events[bank]) == 0 || len(v.Events[bank]) != len(mustParse(t, n.rsp.EventLog).Events(bank))-0 {
			t.Errorf("%s events: %d", bank, len(v.Events[bank]))
		}
	}
	if !v.Time.Equal(testNow) {
		t.Errorf("time %v", v.Time)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Errorf("verdict does not marshal: %v", err)
	}
}

func TestAppraiseNamesFaults(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, n *node, in *Input)
		want   []string
		sb     bool
	}{
		{name: "a bad quote stops the appraisal at the quote",
			mutate: func(t *testing.T, n *node, in *Input) { in.Request.Nonce = []byte("stale") },
			want:   []string{FaultQuoteNonce}},
		{name: "no quote response is missing evidence",
			mutate: func(t *testing.T, n *node, in *Input) { in.Response = nil },
			want:   []string{FaultEvidenceMissing}},
		{name: "a requested PCR the quote does not cover is a fault",
			mutate: func(t *testing.T, n *node, in *Input) { in.Request.PCRs = append(in.Request.PCRs, 14) },
			want:   []string{FaultQuotePCRSelection, FaultQuotePCRSelection}, sb: true},
		{name: "a quote of none of the requested banks is a fault",
			mutate: func(t *testing.T, n *node, in *Input) {
				in.Request.Banks = []string{evidence.BankSHA1}
				in.Request.IMAMeasureEnabled = false
				in.Policy.AllowSHA1 = true
			},
			want: []string{FaultQuotePCRSelection}, sb: true},
		{name: "a missing event log leaves Secure Boot unknown",
			mutate: func(t *testing.T, n *node, in *Input) { in.Response.EventLog = nil },
			want:   []string{FaultEvidenceMissing, FaultSecureBootUnparsable}},
		{name: "an unparsable event log leaves Secure Boot unknown",
			mutate: func(t *testing.T, n *node, in *Input) { in.Response.EventLog = in.Response.EventLog[:100] },
			want:   []string{FaultEventLogUnparsable, FaultSecureBootUnparsable}},
		{name: "an IMA log left out while PCR 10 holds measurements does not replay",
			mutate: func(t *testing.T, n *node, in *Input) { in.Response.IMALog = "" },
			want:   []string{FaultIMAReplay}, sb: true},
		{name: "an IMA log from another offset is refused",
			mutate: func(t *testing.T, n *node, in *Input) { in.Response.IMAOffset = 4 },
			want:   []string{FaultIMAUnparsable}, sb: true},
		{name: "an IMA log continued without a start value is refused",
			mutate: func(t *testing.T, n *node, in *Input) { in.Request.IMAOffset, in.Response.IMAOffset = 4, 4 },
			want:   []string{FaultIMAReplay}, sb: true},
		{name: "a tampered IMA entry is named and breaks the replay",
			mutate: func(t *testing.T, n *node, in *Input) {
				in.Response.IMALog = strings.Replace(in.Response.IMALog, "lib3.so", "lib3.sx", 1)
			},
			want: []string{FaultIMAUnparsable, FaultIMAReplay}, sb: true},
		{name: "the log of another boot breaks the replay and leaves Secure Boot unknown",
			mutate: func(t *testing.T, n *node, in *Input) {
				// One option ROM fewer (PCR 2) and other keys (PCR 7).
				in.Response.EventLog = newBootLog(t, 1, 4).bytes()
			},
			want: []string{FaultEventLogReplay, FaultEventLogReplay, FaultEventLogReplay, FaultEventLogReplay, FaultSecureBootUnparsable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, "ecc-p256", 5, 5)
			in := n.input()
			tt.mutate(t, n, &in)
			v := Appraise(in, testNow)
			if got := faultNames(v.Faults); !slices.Equal(got, tt.want) {
				t.Fatalf("faults = %v, want %v", v.Faults, tt.want)
			}
			if v.SecureBoot.Enabled != tt.sb {
				t.Errorf("secure boot enabled = %t, want %t", v.SecureBoot.Enabled, tt.sb)
			}
			if v.Trusted() {
				t.Error("a verdict with faults is trusted")
			}
		})
	}
}

func TestAppraiseContinuesTheIMALogOfTheBoot(t *testing.T) {
	n := newNode(t, "rsassa", 0, 10)
	lines := strings.SplitAfter(n.rsp.IMALog, "\n")
	start := extendIMA(t, strings.Join(lines[:4], ""), evidence.BankSHA256)
	in := n.input()
	in.Request.IMAOffset, in.Response.IMAOffset = 4, 4
	in.Response.IMALog = strings.Join(lines[4:], "")
	in.IMAStart = map[string][]byte{evidence.BankSHA256: start}
	v := Appraise(in, testNow)
	if !v.Trusted() {
		t.Fatalf("faults: %v", v.Faults)
	}
	if v.IMANextOffset != 11 || len(v.IMAEntries) != 7 {
		t.Fatalf("next offset %d, %d entries; want 11 and 7", v.IMANextOffset, len(v.IMAEntries))
	}
}

func TestAppraiseWithoutIMA(t *testing.T) {
	n := newNode(t, "ecc-p384", 0, 1)
	in := n.input()
	in.Request.IMAMeasureEnabled = false
	in.Response.IMALog = ""
	if v := Appraise(in, testNow); !v.Trusted() || v.IMA != nil {
		t.Fatalf("faults %v, IMA %v", v.Faults, v.IMA)
	}
}

func TestFaultsMarshalInTheReportShape(t *testing.T) {
	f := pcrFault(FaultEventLogReplay, evidence.BankSHA256, 7, []byte{1}, []byte{2}, "x")
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"fault_name":"EventLogReplay","description":"x","pcr_index":7,"pcr_bank":"SHA256","expected_pcrvalue":"01","actual_pcrvalue":"02"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// BenchmarkAppraise appraises one quote, a boot log of about 150 events and
// an IMA log of 800 entries.
func BenchmarkAppraise(b *testing.B) {
	benchmarkAppraise(b, false)
}

// BenchmarkAppraiseKeptAK is BenchmarkAppraise with the AK parsed once
// (Input.AK), as the verifier keeps it from one report to the next.
func BenchmarkAppraiseKeptAK(b *testing.B) {
	benchmarkAppraise(b, true)
}

func benchmarkAppraise(b *testing.B, keptAK bool) {
	n := newNode(b, "ecc-p256", 130, 799)
	in := n.input()
	if keptAK {
		ak, err := ParseAK(in.AKPublic)
		if err != nil {
			b.Fatal(err)
		}
		in.AK = ak
	}
	if v := Appraise(in, testNow); !v.Trusted() {
		b.Fatalf("faults: %v", v.Faults)
	}
	events := len(mustParse(b, in.Response.EventLog).events)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := benchfloor.Start()
	for b.Loop() {
		Appraise(in, testNow)
	}
	cpu.Report(b)
	benchfloor.ReportRatio(b)
	b.ReportMetric(float64(events), "boot-events")
}
