package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// retentionFixture stores, at the cutoff t0: host busy with seven reports
// before it and two after, host quiet with two before it, host gone-quiet
// with one before it; report ids are time-ordered within each host, as
// UUIDv7s are.
func retentionFixture(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	group(t, s, "g1")
	add := func(hostID string, ages ...time.Duration) {
		must(t, "CreateHost", s.CreateHost(ctx, host(hostID, "g1")))
		for i, age := range ages {
			id := fmt.Sprintf("%s-%02d", hostID, i)
			must(t, "CreateReport", s.CreateReport(ctx, report(id, hostID, true, t0.Add(-age))))
		}
	}
	day := 24 * time.Hour
	add("busy", 40*day, 39*day, 38*day, 37*day, 36*day, 35*day, time.Microsecond, 0, -time.Hour)
	add("quiet", 50*day, 45*day)
	add("gone-quiet", 90*day)
}

func remainingReports(t *testing.T, s *Store) []string {
	t.Helper()
	rs, err := s.ListReports(t.Context(), ReportFilter{})
	must(t, "ListReports", err)
	ids := reportIDs(rs)
	slices.Sort(ids)
	return ids
}

func testDeleteReportsBefore(t *testing.T, s *Store) {
	ctx := t.Context()
	retentionFixture(t, s)
	latest, err := s.ListReports(ctx, ReportFilter{LatestPerHost: true})
	must(t, "ListReports(latest per host)", err)
	// Eight to delete (busy's seven before the cutoff and quiet's older one) in
	// batches of three: three statements.
	n, err := s.DeleteReportsBefore(ctx, t0, 3)
	must(t, "DeleteReportsBefore", err)
	want := []string{"busy-07", "busy-08", "gone-quiet-00", "quiet-01"}
	if got := remainingReports(t, s); n != 8 || !slices.Equal(got, want) {
		t.Errorf("DeleteReportsBefore deleted %d and left %v; want 8 deleted and %v left", n, got, want)
	}
	after, err := s.ListReports(ctx, ReportFilter{LatestPerHost: true})
	must(t, "ListReports(latest per host)", err)
	if !slices.Equal(reportIDs(after), reportIDs(latest)) {
		t.Errorf("the newest report per host is %v after the deletion, was %v", reportIDs(after), reportIDs(latest))
	}
	// A report exactly at the cutoff is not before it; a second run finds
	// nothing; a batch of 0 is the default batch.
	if n, err := s.DeleteReportsBefore(ctx, t0, 0); err != nil || n != 0 {
		t.Errorf("DeleteReportsBefore again = %d, %v; want 0 deleted", n, err)
	}
	// Long after, everything but each host's newest goes.
	if n, err := s.DeleteReportsBefore(ctx, t0.Add(365*24*time.Hour), 1); err != nil || n != 1 {
		t.Errorf("DeleteReportsBefore a year later = %d, %v; want 1 deleted", n, err)
	}
	if got, want := remainingReports(t, s), []string{"busy-08", "gone-quiet-00", "quiet-01"}; !slices.Equal(got, want) {
		t.Errorf("a year later %v are left, want each host's newest %v", got, want)
	}
}

func testDeleteReportsKeepsTheRest(t *testing.T, s *Store) {
	ctx := t.Context()
	retentionFixture(t, s)
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("bound", "PLATFORM", "busy", "", "g1")))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("fleet", "OS", "", "", "g1")))
	tables := []string{"hosts", "flavor_groups", "flavors", "host_flavor_groups", "flavor_group_flavors"}
	counts := func() []int {
		var n []int
		for _, table := range tables {
			n = append(n, count(t, s, table, ""))
		}
		return n
	}
	before := counts()
	if _, err := s.DeleteReportsBefore(ctx, t0.Add(time.Hour), 2); err != nil {
		t.Fatal(err)
	}
	if after := counts(); !slices.Equal(after, before) {
		t.Errorf("rows of %v: %v after deleting reports, %v before", tables, after, before)
	}
}

func testDeleteReportsConcurrently(t *testing.T, s *Store) {
	ctx := t.Context()
	const hosts, each = 4, 60
	for h := range hosts {
		id := fmt.Sprintf("h%d", h)
		must(t, "CreateHost", s.CreateHost(ctx, host(id)))
		for i := range each {
			created := t0.Add(-time.Duration(each-i) * time.Hour)
			must(t, "CreateReport", s.CreateReport(ctx, report(fmt.Sprintf("%s-%03d", id, i), id, true, created)))
		}
	}
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, 2)
	for range cap(results) {
		go func() {
			n, err := s.DeleteReportsBefore(ctx, t0, 7)
			results <- result{n, err}
		}()
	}
	var deleted [2]int64
	for i := range deleted {
		r := <-results
		must(t, "DeleteReportsBefore", r.err)
		deleted[i] = r.n
	}
	var want []string
	for h := range hosts {
		want = append(want, fmt.Sprintf("h%d-%03d", h, each-1))
	}
	if got := remainingReports(t, s); deleted[0]+deleted[1] != hosts*(each-1) || !slices.Equal(got, want) {
		t.Errorf("the replicas deleted %d and %d and left %v; want %d in all and %v left",
			deleted[0], deleted[1], got, hosts*(each-1), want)
	}
}

// A prune of a large table must find the old reports by reports_created_at
// and each one's newer report by reports_host_id_id, never by reading the
// whole table.
func TestDeletingOldReportsSearchesByIndexOnSQLite(t *testing.T) {
	plan := sqlitePlan(t, deleteReportsBefore, t0.UnixMicro(), 10)
	for _, want := range []string{"USING INDEX reports_created_at", "USING COVERING INDEX reports_host_id_id"} {
		if !slices.ContainsFunc(plan, func(d string) bool { return strings.Contains(d, want) }) {
			t.Errorf("plan %q does not search %s", plan, want)
		}
	}
	for _, d := range plan {
		if strings.HasPrefix(d, "SCAN r") || strings.HasPrefix(d, "SCAN l") || strings.HasPrefix(d, "SCAN reports") {
			t.Errorf("plan %q reads the whole reports table (%s)", plan, d)
		}
	}
}

// BenchmarkDeleteReportsBefore deletes 10,000 old reports of 100 hosts a
// run (DefaultDeleteBatch per statement), each the size of a steady report
// of the 800-line IMA benchmark node (3.9 kB of JSON, 7.7 kB of JWS, random
// so that PostgreSQL cannot compress them). It reports the time per
// statement and the database's bytes per stored report.
//
//	go test -run '^$' -bench DeleteReportsBefore -benchtime 3x ./internal/verifier/store
func BenchmarkDeleteReportsBefore(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store) {
		const hosts, each = 100, 100
		ctx := b.Context()
		json, jws := make([]byte, 3900), make([]byte, 7700/4*3)
		for h := range hosts {
			must(b, "CreateHost", s.CreateHost(ctx, host(fmt.Sprintf("h%03d", h))))
		}
		var statements, bytesPerReport float64
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			must(b, "InTx", s.InTx(ctx, func(tx *Tx) error {
				for r := range hosts * (each + 1) {
					h, n := r%hosts, r/hosts
					rep := report(fmt.Sprintf("%04d-%05d-h%03d", i, n, h), fmt.Sprintf("h%03d", h), true, t0.Add(-time.Duration(each-n)*time.Hour))
					_, _ = rand.Read(json)
					_, _ = rand.Read(jws)
					rep.JSON, rep.JWS = []byte(hex.EncodeToString(json)[:3900]), base64.RawURLEncoding.EncodeToString(jws)
					if err := tx.CreateReport(ctx, rep); err != nil {
						return err
					}
				}
				return nil
			}))
			if i == 0 { // later, PostgreSQL's table also holds the dead rows
				bytesPerReport = float64(databaseBytes(b, s)) / float64(count(b, s, "reports", ""))
			}
			b.StartTimer()
			n, err := s.DeleteReportsBefore(ctx, t0, 0)
			must(b, "DeleteReportsBefore", err)
			if n != hosts*each {
				b.Fatalf("deleted %d, want %d", n, hosts*each)
			}
			statements += float64(n/DefaultDeleteBatch + 1)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/statements, "ms/statement")
		b.ReportMetric(bytesPerReport, "B/report")
	})
}

// databaseBytes is the size of the store's database (SQLite) or of its
// reports table with its indexes and TOAST (PostgreSQL).
func databaseBytes(b *testing.B, s *Store) int64 {
	query := `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`
	if s.Backend() == backendPostgres {
		query = `SELECT pg_total_relation_size('reports')`
	}
	var n int64
	if err := s.rdb.QueryRowContext(b.Context(), query).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
