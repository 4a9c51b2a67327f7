package hvs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// The report path against the crypto floor (issue 13): one ECDSA P-256
// verify plus one sign, measured in the same process (internal/benchfloor).
//
//	go test -run '^$' -bench 'ReportFirst|ReportSteady' -count 3 ./internal/verifier/hvs

// imaLines is the length of the IMA log of a node in these benchmarks.
const imaLines = 800

// imaFile is the i-th file a benchmark node measures; its content is fixed
// so that measuring it again gives a line its IMA flavor expects.
func imaFile(i int) (path, content string) {
	return fmt.Sprintf("/usr/lib/bench/f%04d", i), fmt.Sprintf("content of file %d", i)
}

// newBenchReportEnv is a baselined node with a 152-event boot log and an
// IMA log of imaLines lines, on an SQLite file.
func newBenchReportEnv(b *testing.B) (*env, *node) {
	b.Helper()
	n := newNode(b, "edge-1")
	files := map[string]string{}
	for i := range imaLines - len(bootFiles) {
		p, c := imaFile(i)
		files[p] = c
	}
	if err := n.root.MeasureFiles(n.tpm, n.banks, files); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	e := newEnvOn(b, st, []*node{n})
	e.baseline(b, n)
	e.agent.set(func(f *fakeAgent) { f.timed = true })
	return e, n
}

// reportRatios reports the benchmark's ratio to the floor (x-floor), and
// the verifier's alone: the time per report less the node side's (the
// agent collecting its evidence and the software TPM quoting, in process
// here) as agent-ns and without-agent-x-floor; and the CPU time per
// report against the floor in CPU time (cpu-x-floor), which a loaded
// machine stretches less. The CPU time includes the node side and the
// work between reports (forgetting the boot, measuring new files).
func reportRatios(b *testing.B, e *env, cpu *benchfloor.Meter) {
	b.Helper()
	cpu.Report(b)
	benchfloor.ReportRatioWithout(b, "agent", time.Duration(e.agent.elapsed.Load()))
}

func wantTrustedReport(b *testing.B, e *env, n *node) {
	b.Helper()
	r, err := e.svc.CreateReport(context.Background(), n.id)
	if err != nil || !r.Trusted() {
		b.Fatalf("report: %v (trusted %v, faults %v)", err, r != nil && r.Trusted(), r)
	}
}

// BenchmarkReportFirst is a host's first report of a boot: quote, the whole
// boot log and the whole IMA log replayed, every flavor matched, the report
// signed and committed to an SQLite file. Between reports the host's boot
// is forgotten, so that each report is a first one.
func BenchmarkReportFirst(b *testing.B) {
	e, n := newBenchReportEnv(b)
	ctx := context.Background()
	e.agent.elapsed.Store(0)
	b.ResetTimer()
	cpu := benchfloor.Start()
	for b.Loop() {
		b.StopTimer()
		if err := e.st.SetHostBoot(ctx, n.id, store.HostBoot{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		wantTrustedReport(b, e, n)
	}
	reportRatios(b, e, cpu)
}

// BenchmarkReportSteady is a report within a known boot, after 0, 1 or 10
// new IMA lines (files measured again, which the IMA flavor expects).
func BenchmarkReportSteady(b *testing.B) {
	for _, newLines := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("new-ima-lines=%d", newLines), func(b *testing.B) {
			e, n := newBenchReportEnv(b)
			wantTrustedReport(b, e, n)
			e.agent.elapsed.Store(0)
			next := 0
			b.ResetTimer()
			cpu := benchfloor.Start()
			for b.Loop() {
				if newLines > 0 {
					b.StopTimer()
					files := map[string]string{}
					for range newLines {
						p, c := imaFile(next % (imaLines - len(bootFiles)))
						files[p] = c
						next++
					}
					if err := n.root.MeasureFiles(n.tpm, n.banks, files); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				wantTrustedReport(b, e, n)
			}
			reportRatios(b, e, cpu)
		})
	}
}
