package dashboard

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
)

// BenchmarkFleetPage renders the fleet page of 500 nodes with 5 reports
// each on SQLite: the first render walks every node's reports for "since",
// later ones reuse what it found until a node's latest report changes.
func BenchmarkFleetPage(b *testing.B) {
	f := newFixture(b)
	const nodes, reports = 500, 5
	for i := range nodes {
		id := fmt.Sprintf("host-%04d", i)
		f.addHost(b, id, "node-"+id)
		for j := range reports {
			var faults []appraise.Fault
			if (i+j)%7 == 0 {
				faults = append(faults, appraise.Fault{Name: "ImaMeasurementMismatch", File: "/usr/bin/kubelet"})
			}
			f.addReport(b, id, t0.Add(-time.Duration(reports-j)*time.Minute), faults...)
		}
	}
	br := f.browser(b)
	br.login("operator", operatorPassword)
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			f.d.mu.Lock()
			clear(f.d.since)
			f.d.mu.Unlock()
			if res := br.do(http.MethodGet, "/", nil); res.code != http.StatusOK {
				b.Fatalf("status %d", res.code)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if res := br.do(http.MethodGet, "/", nil); res.code != http.StatusOK {
				b.Fatalf("status %d", res.code)
			}
		}
	})
}
