package loadtest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
)

func TestPercentilesAreNearestRank(t *testing.T) {
	var l latencies
	for i := 1; i <= 100; i++ {
		l = append(l, time.Duration(101-i)*time.Millisecond) // unsorted on purpose
	}
	tests := []struct {
		name string
		p    float64
		want time.Duration
	}{
		{"the median of 1..100 ms is 50 ms", 50, 50 * time.Millisecond},
		{"the 99th percentile of 1..100 ms is 99 ms", 99, 99 * time.Millisecond},
		{"the 100th percentile is the maximum", 100, 100 * time.Millisecond},
		{"a tiny percentile is the minimum", 0.1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.percentile(tt.p); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if got := (latencies{}).percentile(99); got != 0 {
		t.Fatalf("percentile of nothing = %v, want 0", got)
	}
}

func TestProcSamplesSeeThisProcessWork(t *testing.T) {
	a, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ma, err := sampleMachine()
	if err != nil {
		t.Fatal(err)
	}
	// Write 64 MiB (resident from then on) until this process has used
	// 100 ms of CPU more: on a busy machine that takes longer, never forever.
	buf := make([]byte, 64<<20)
	deadline := time.Now().Add(time.Minute)
	var b procSample
	for {
		for i := range buf {
			buf[i] = byte(i)
		}
		if b, err = sampleProc(0); err != nil {
			t.Fatal(err)
		}
		if b.cpu-a.cpu >= 100*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process used %v of CPU in a minute of busy work, by /proc/self/stat", b.cpu-a.cpu)
		}
	}
	mb, err := sampleMachine()
	if err != nil {
		t.Fatal(err)
	}
	if c := cpuShare(a, b); c <= 0 {
		t.Errorf("cpu share %.2f cores during busy work, want more than 0", c)
	}
	if mb.busy-ma.busy < 0.1 {
		t.Errorf("the machine was busy %.2f s while this process used %v", mb.busy-ma.busy, b.cpu-a.cpu)
	}
	if b.rss < 64<<20 || b.peakRSS < b.rss {
		t.Errorf("rss %d, peak %d after writing 64 MiB", b.rss, b.peakRSS)
	}
}

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	ports, err := freePorts(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ports)))) != 3 {
		t.Fatalf("freePorts(3) = %v, want 3 distinct ports", ports)
	}
	var lc net.ListenConfig
	for _, p := range ports {
		l, err := lc.Listen(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}

func TestTheChartIsAnSVGWithEveryMeasuredSeries(t *testing.T) {
	res := &Results{Interval: "1m0s", Machine: "test <machine>"}
	for _, b := range []string{"sqlite", "postgres"} {
		for _, n := range []int{100, 1000} {
			res.Scheduled = append(res.Scheduled, scheduledResult{Backend: b, Nodes: n, P50: 10, P90: 30, P99: 300, Achieved: float64(n) / 60})
			res.Max = append(res.Max, maxResult{Backend: b, Nodes: n, Throughput: 200, Projected: 400})
		}
	}
	svg := chart(res)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	// p50, p90, p99, the manager's rate, the highest rate and its projection per backend.
	if lines != 12 {
		t.Errorf("the chart draws %d lines, want 12", lines)
	}
	for _, want := range []string{"sqlite p99", "postgres highest sustained", "goal p99 &lt; 250 ms", "test &lt;machine&gt;", ">1,000<"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
}

func TestUntrustedCausesNameStatusFaultsAndFailedParts(t *testing.T) {
	r := &report.Report{
		HostStatus: report.StatusConnected,
		Faults:     []appraise.Fault{{Name: appraise.FaultQuoteNonce}},
		TrustInformation: flavor.TrustInformation{FlavorsTrust: map[flavor.Part]flavor.PartTrust{
			flavor.PartIMA: {Trust: false}, flavor.PartPlatform: {Trust: true},
		}},
	}
	got := untrustedCauses(r)
	want := []string{"status " + report.StatusConnected, "fault " + appraise.FaultQuoteNonce, "part IMA"}
	if !slices.Equal(got, want) {
		t.Fatalf("untrustedCauses = %q, want %q", got, want)
	}
}

func TestTheTableGivesTheVerifiersCPUAsAMultipleOfTheFloor(t *testing.T) {
	res := &Results{
		Scheduled: []scheduledResult{
			{Backend: "sqlite", Nodes: 100, VerifierCPUPerReport: 0.9, FloorMicros: 90},
			{Backend: "postgres", Nodes: 100, VerifierCPUPerReport: 1.2}, // merged from a run before the floor
		},
		Max: []maxResult{{Backend: "sqlite", Nodes: 100, Concurrency: 16, VerifierCPUPerReport: 1.35, FloorMicros: 90}},
	}
	var out strings.Builder
	printTable(&out, res)
	lines := strings.Split(out.String(), "\n")
	var sqlite, postgres, best string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "| sqlite | 100 | 16 |"):
			best = l
		case strings.HasPrefix(l, "| sqlite | 100 |"):
			sqlite = l
		case strings.HasPrefix(l, "| postgres | 100 |"):
			postgres = l
		}
	}
	if !strings.Contains(sqlite, "| 0.9 | 10.0 | 90 |") {
		t.Errorf("sqlite row %q: want 0.9 ms = 10.0 x-floor of a 90 µs floor", sqlite)
	}
	if !strings.Contains(postgres, "| 1.2 | - | 0 |") {
		t.Errorf("postgres row %q: want no ratio without a floor", postgres)
	}
	if !strings.Contains(best, "| 1.4 | 15.0 |") {
		t.Errorf("max row %q: want 1.35 ms = 15.0 x-floor", best)
	}
}

// TestEveryRowHasItsHeadersColumns: each table's separator and rows have
// as many cells as its header, and the fleet's collections in a window
// stand under their heading ("-" for a run that did not count them).
func TestEveryRowHasItsHeadersColumns(t *testing.T) {
	seven, five := uint64(7), uint64(5)
	res := &Results{
		Scheduled: []scheduledResult{
			{Backend: "sqlite", Nodes: 100, FleetCollections: &seven},
			{Backend: "postgres", Nodes: 100}, // merged from a run before they were counted
		},
		Max: []maxResult{{Backend: "sqlite", Nodes: 100, Concurrency: 16, FleetCollections: &five}},
	}
	var out strings.Builder
	printTable(&out, res)
	var header []string
	for l := range strings.Lines(out.String()) {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			header = nil
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if header == nil {
			header = cells
			continue
		}
		if len(cells) != len(header) {
			t.Errorf("%d cells, want the header's %d: %s", len(cells), len(header), l)
			continue
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		col := slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(h) == "fleet collections" })
		if col < 0 {
			t.Fatalf("no fleet collections column in %q", header)
		}
		want := map[string]string{"sqlite": "7", "postgres": "-"}[strings.TrimSpace(cells[0])]
		if slices.ContainsFunc(header, func(h string) bool { return strings.TrimSpace(h) == "clients" }) {
			want = "5" // the back-to-back table
		}
		if got := strings.TrimSpace(cells[col]); got != want {
			t.Errorf("fleet collections %q, want %s: %s", got, want, l)
		}
	}
}
