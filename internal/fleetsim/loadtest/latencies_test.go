package loadtest

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestTheLatenciesFileListsEveryScheduledReportInScheduleOrder: each
// window's reports, completed out of order, come out in the order they were
// due, with their backend, fleet size, host, due time, latency and failure.
func TestTheLatenciesFileListsEveryScheduledReportInScheduleOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)
	windows := []scheduledResult{
		{Backend: "sqlite", Nodes: 100, samples: []reportSample{
			{Host: "b", Scheduled: t0.Add(2 * time.Second), Took: 1500 * time.Microsecond},
			{Host: "a", Scheduled: t0.Add(time.Second), Took: 250 * time.Millisecond, Failed: true},
		}},
		{Backend: "postgres", Nodes: 1000, samples: []reportSample{
			{Host: "c", Scheduled: t0.Add(3 * time.Second), Took: 7 * time.Millisecond},
		}},
	}
	path := filepath.Join(t.TempDir(), "latencies.csv")
	if err := writeLatencies(path, windows); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		latenciesHeader,
		{"sqlite", "100", "a", "2026-12-05T17:00:01.000000Z", "250.000", "true"},
		{"sqlite", "100", "b", "2026-12-05T17:00:02.000000Z", "1.500", "false"},
		{"postgres", "1000", "c", "2026-12-05T17:00:03.000000Z", "7.000", "false"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("latencies file:\n%q\nwant\n%q", rows, want)
	}
	if err := writeLatencies(filepath.Join(t.TempDir(), "missing", "latencies.csv"), windows); err == nil {
		t.Fatal("a file in a missing directory was reported written")
	}
}
