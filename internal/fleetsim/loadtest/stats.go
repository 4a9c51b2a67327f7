package loadtest

import (
	"slices"
	"time"
)

// latencies collects durations and reports their percentiles.
type latencies []time.Duration

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100), 0 when empty.
func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
