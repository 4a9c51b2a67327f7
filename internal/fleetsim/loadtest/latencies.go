package loadtest

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// reportSample is one scheduled report of a window.
type reportSample struct {
	Host      string
	Scheduled time.Time // when the manager's schedule asked for it
	Took      time.Duration
	Failed    bool
}

// latenciesHeader is the first row of the -latencies file.
var latenciesHeader = []string{"backend", "nodes", "host_id", "scheduled", "latency_ms", "error"}

// writeLatencies writes every scheduled report of the windows to path as
// CSV, each window's in the order they were scheduled: the backend, the
// fleet size, the host, when the report was due (RFC 3339, UTC, to the
// microsecond), its latency from then in milliseconds and whether it
// failed. The verifier's log has the same clock, so the slow reports can
// be laid beside what the verifier did then (GODEBUG=gctrace=1 reaches
// the verifier through tc-loadtest's environment).
func writeLatencies(path string, windows []scheduledResult) error {
	f, err := os.Create(path) //nolint:gosec // G304: the path the operator names
	if err != nil {
		return fmt.Errorf("latencies: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(latenciesHeader)
	for _, r := range windows {
		samples := slices.SortedStableFunc(slices.Values(r.samples), func(a, b reportSample) int {
			return a.Scheduled.Compare(b.Scheduled)
		})
		for _, s := range samples {
			_ = w.Write([]string{r.Backend, strconv.Itoa(r.Nodes), s.Host, s.Scheduled.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
				strconv.FormatFloat(ms(s.Took), 'f', 3, 64), strconv.FormatBool(s.Failed)})
		}
	}
	w.Flush()
	if err := cmp.Or(w.Error(), f.Close()); err != nil {
		return fmt.Errorf("latencies: %w", err)
	}
	return nil
}
