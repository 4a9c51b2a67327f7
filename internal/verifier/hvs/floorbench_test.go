package hvs

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	e, n, _ := newBenchReportEnvAt(b, dsn...)
	return e, n
}

// newBenchReportEnvAt is newBenchReportEnv, with the path of its SQLite
// file ("" on another database).
func newBenchReportEnvAt(b *testing.B, dsn ...string) (*env, *node, string) {
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
	path := ""
	if len(dsn) == 0 {
		path = filepath.Join(b.TempDir(), "bench.db")
		dsn = append(dsn, "sqlite:"+path)
	}
	st, err := store.Open(b.Context(), dsn[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	e := newEnvOn(b, st, []*node{n})
	e.baseline(b, n)
	return e, n, path
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

// BenchmarkReportWrites is what a steady report with one new IMA line
// writes to an SQLite file: the pages it writes to the WAL (wal-pages/op,
// each a frame of a page and a 24-byte header), and by which table or
// index (b.Log, from SQLite's dbstat), and how much the database grows
// (db-bytes/op). The WAL must hold every report's frames: run it with
// -benchtime 100x or fewer (SQLite checkpoints at 1,000 pages).
//
//	go test -run '^$' -bench ReportWrites -benchtime 100x -v ./internal/verifier/hvs
func BenchmarkReportWrites(b *testing.B) {
	e, n, path := newBenchReportEnvAt(b)
	wantTrustedReport(b, e, n)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	ctx := b.Context()
	if _, err := raw.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	pages := func() (n int) {
		if err := raw.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	before, next := pages(), 0
	for b.Loop() {
		p, c := imaFile(next % (imaLines - len(bootFiles)))
		next++
		if err := n.root.MeasureFiles(n.tpm, n.banks, map[string]string{p: c}); err != nil {
			b.Fatal(err)
		}
		wantTrustedReport(b, e, n)
	}
	grown := pages() - before
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	frames, err := walFramePages(wal)
	if err != nil {
		b.Fatal(err)
	}
	if len(frames) < b.N {
		b.Fatalf("the WAL holds %d frames of %d reports: it was checkpointed; run with -benchtime 100x", len(frames), b.N)
	}
	owner := map[uint32]string{}
	rows, err := raw.QueryContext(ctx, `SELECT name || ' ' || pagetype, pageno FROM dbstat`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var name string
		var page uint32
		if err := rows.Scan(&name, &page); err != nil {
			b.Fatal(err)
		}
		owner[page] = name
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		b.Fatal(err)
	}
	byOwner := map[string]int{}
	for _, p := range frames {
		byOwner[cmp.Or(owner[p], fmt.Sprintf("page %d", p))]++
	}
	for _, name := range slices.Sorted(maps.Keys(byOwner)) {
		b.Logf("%-40s %.2f pages a report", name, float64(byOwner[name])/float64(b.N))
	}
	b.ReportMetric(float64(len(frames))/float64(b.N), "wal-pages/op")
	b.ReportMetric(float64(grown*pageSize(wal))/float64(b.N), "db-bytes/op")
}

// walFramePages lists the page number of every frame of an SQLite WAL
// file, in order.
func walFramePages(wal []byte) ([]uint32, error) {
	const walHeader, frameHeader = 32, 24
	if len(wal) < walHeader {
		return nil, fmt.Errorf("wal of %d bytes", len(wal))
	}
	size := pageSize(wal)
	var pages []uint32
	for off := walHeader; off+frameHeader+size <= len(wal); off += frameHeader + size {
		pages = append(pages, binary.BigEndian.Uint32(wal[off:]))
	}
	return pages, nil
}

// pageSize is the page size a WAL file's header gives.
func pageSize(wal []byte) int { return int(binary.BigEndian.Uint32(wal[8:12])) }
