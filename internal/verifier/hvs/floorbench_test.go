package hvs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/pgtest"
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
// IMA log of imaLines lines, on an SQLite file, or on the database dsn
// names.
func newBenchReportEnv(b *testing.B, dsn ...string) (*env, *node) {
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
	if len(dsn) == 0 {
		dsn = append(dsn, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	}
	st, err := store.Open(b.Context(), dsn[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	e := newEnvOn(b, st, []*node{n})
	e.baseline(b, n)
	return e, n
}

// startMeter starts the Meter of the benchmark's CPU time, with the node's
// side of every report inside its Exclude, and times the node side.
func startMeter(e *env) *benchfloor.Meter {
	cpu := benchfloor.StartOwn("verifier")
	e.agent.set(func(f *fakeAgent) {
		f.timed, f.exclude = true, cpu.Exclude
		f.elapsed.Store(0)
	})
	return cpu
}

// reportRatios reports the benchmark's ratios to the floor. The whole:
// wall time per report (x-floor) and the process's CPU time per report
// (cpu-ns, cpu-x-floor), both with the node side (the agent collecting its
// evidence and the software TPM quoting, in process here) and cpu-ns also
// with the work between reports (forgetting the boot, measuring new
// files). The verifier's share: the CPU time less the node side and the
// work between reports (verifier-cpu-ns, verifier-cpu-x-floor), and the
// wall time less the node side's (agent-ns, without-agent-x-floor).
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
	b.ResetTimer()
	cpu := startMeter(e)
	for b.Loop() {
		cpu.Exclude(func() { // stopping the timer reads the runtime's statistics: excluded too
			b.StopTimer()
			if err := e.st.SetHostBoot(ctx, n.id, store.HostBoot{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		})
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
			next := 0
			b.ResetTimer()
			cpu := startMeter(e)
			for b.Loop() {
				if newLines > 0 {
					cpu.Exclude(func() {
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
					})
				}
				wantTrustedReport(b, e, n)
			}
			reportRatios(b, e, cpu)
		})
	}
}

// BenchmarkReportSteadyPostgres is BenchmarkReportSteady without new IMA
// lines on PostgreSQL (TC_TEST_POSTGRES_URL). The verifier's CPU figures
// are the client's side only; the wall time has the server's work too.
func BenchmarkReportSteadyPostgres(b *testing.B) {
	e, n := newBenchReportEnv(b, pgtest.Schema(b))
	wantTrustedReport(b, e, n)
	b.ResetTimer()
	cpu := startMeter(e)
	for b.Loop() {
		wantTrustedReport(b, e, n)
	}
	reportRatios(b, e, cpu)
}
