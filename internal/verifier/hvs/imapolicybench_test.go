package hvs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/store"
)

// go test -run '^$' -bench 'IMAPolicy' -benchtime 5x ./internal/verifier/hvs

// BenchmarkLoadIMAPolicy100k is what the first report of a host costs with
// a 100,000-entry policy (two digests each, about 20 MiB, as issue 16
// sizes it) not in the cache yet: reading the
// version from SQLite, verifying its signature over the document's digest,
// parsing and compiling. Every later report of any host that uses the
// version finds it in the cache. It reports the document's size and the
// compiled policy's (its share of the cache's byte bound).
func BenchmarkLoadIMAPolicy100k(b *testing.B) {
	e := newEnv(b, nil)
	doc := policyOfPaths(100_000)
	p, err := e.svc.CreateIMAPolicy(context.Background(), "large", "", []byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	ref := store.IMAPolicyRef{PolicyID: p.ID, Name: p.Name, Version: p.LatestVersion, SHA256: p.LatestSHA256}
	var before, after runtime.MemStats
	size := 0
	now := time.Now()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := e.svc.loadIMAPolicy(context.Background(), ref, now)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		size = c.SizeBytes()
		runtime.KeepAlive(c)
	}
	b.ReportMetric(float64(len(doc))/(1<<20), "doc-MiB")
	b.ReportMetric(float64(size)/(1<<20), "compiled-MiB")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
}

// policyOfPaths is a document of n paths of a Linux system's length, each
// with two allowed SHA-256 digests.
func policyOfPaths(n int) string {
	var b strings.Builder
	b.WriteString(`{"meta":{"version":1},"digests":{`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		one := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16), 1})
		two := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16), 2})
		fmt.Fprintf(&b, `"/usr/lib/x86_64-linux-gnu/package-%05d/lib/libcomponent-%07d.so.1.2.3":["sha256:%x","sha256:%x"]`, i/100, i, one, two)
	}
	b.WriteString(`}}`)
	return b.String()
}
