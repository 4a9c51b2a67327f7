package imapolicy

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/benchfloor"
)

// benchPaths is the size of the benchmark policy: 100,000 paths (two in
// three with a second digest), about 20 MiB of JSON, the size Keylime's
// users ran.
const benchPaths = 100_000

func benchPath(i int) string {
	return fmt.Sprintf("/usr/lib/x86_64-linux-gnu/package-%05d/libexample-component-%05d.so.1.2.3", i/8, i)
}

func benchContent(i int) string { return "contents of file " + fmt.Sprint(i) }

// benchPolicy returns the benchmark policy's JSON document.
func benchPolicy(tb testing.TB, keys ...string) []byte {
	tb.Helper()
	digests := make(map[string][]string, benchPaths)
	for i := range benchPaths {
		ds := []string{digestOfContent(benchContent(i))}
		if i%3 != 0 {
			ds = append(ds, digestOfContent(benchContent(i)+" previous version"))
		}
		digests[benchPath(i)] = ds
	}
	doc, err := json.Marshal(map[string]any{
		"meta":              map[string]any{"version": 1, "generator": "benchmark"},
		"digests":           digests,
		"excludes":          []string{"^/tmp/.*", "^/var/log/.*", "^/run/.*", "^/proc/.*"},
		"verification_keys": keys,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// imaLine is an ima-ng line of a file, or an ima-sig line when sig is not
// nil, with its template hash.
func imaLine(path, content string, sig []byte) string {
	d := sha256.Sum256([]byte(content))
	field := func(b []byte, data []byte) []byte {
		return append(binary.LittleEndian.AppendUint32(b, uint32(len(data))), data...)
	}
	data := field(nil, append([]byte("sha256:\x00"), d[:]...))
	data = field(data, append([]byte(path), 0))
	if sig == nil {
		th := sha1.Sum(data)
		return fmt.Sprintf("10 %x ima-ng sha256:%x %s", th, d, path)
	}
	data = field(data, sig)
	th := sha1.Sum(data)
	return fmt.Sprintf("10 %x ima-sig sha256:%x %s %x", th, d, path, sig)
}

// benchLog returns n IMA lines of files in the benchmark policy, from the
// first-th on; every 80th is a file signed by s instead, whose path is
// not in the policy.
func benchLog(tb testing.TB, s *signer, first, n int) string {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		if s != nil && i%80 == 79 {
			d := sha256.Sum256([]byte(benchContent(i)))
			b.WriteString(imaLine(fmt.Sprintf("/opt/vendor/bin/signed-%d", i), benchContent(i), s.sign(tb, d[:])))
		} else {
			j := (i * 7919) % benchPaths // spread over the policy
			b.WriteString(imaLine(benchPath(j), benchContent(j), nil))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func benchCompiled(b *testing.B, s *signer) *Compiled {
	b.Helper()
	return loadPolicy(b, benchPolicy(b, s.pem))
}

// BenchmarkPolicyLoad parses and compiles the 100,000-path policy, and
// reports the compiled policy's memory: as SizeBytes estimates it
// (compiled-MiB) and as the heap it keeps alive (heap-MiB).
func BenchmarkPolicyLoad(b *testing.B) {
	doc := benchPolicy(b)
	before := liveHeap()
	c := loadPolicy(b, doc)
	after := liveHeap()
	runtime.KeepAlive(c)
	b.ResetTimer()
	for b.Loop() {
		loadPolicy(b, doc)
	}
	b.ReportMetric(float64(len(doc))/(1<<20), "doc-MiB")
	b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "heap-MiB")
	b.ReportMetric(float64(c.SizeBytes())/(1<<20), "compiled-MiB")
}

// loadPolicy parses and compiles a policy document.
//
//go:noinline
func loadPolicy(tb testing.TB, doc []byte) *Compiled {
	tb.Helper()
	p, err := Parse(doc)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := Compile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// liveHeap returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkPolicyAppraise10 is the IMA part of a steady report against the
// 100,000-path policy: 10 new lines replayed from the PCR 10 value after
// the 800 lines appraised before, and appraised, continuing the kept
// progress. x-floor is its cost as a multiple of the report's crypto floor;
// without-replay-x-floor is the policy's part alone (the replay is done for
// every report, with or without a policy).
func BenchmarkPolicyAppraise10(b *testing.B) {
	s := newSigner(b, "ecdsa")
	c := benchCompiled(b, s)
	prefix, _ := appraise.ReplayIMA(benchLog(b, s, 0, 800), nil, "SHA256")
	kept := c.Continue(Progress{}, prefix.Entries, nil)
	if len(kept.Faults()) != 0 {
		b.Fatalf("faults %+v", kept.Faults())
	}
	news := benchLog(b, s, 800, 10)
	entries := make([]appraise.IMAEntry, len(prefix.Entries), len(prefix.Entries)+10)
	copy(entries, prefix.Entries)
	b.ReportAllocs()
	var replay time.Duration
	cpu := benchfloor.Start()
	for b.Loop() {
		t0 := time.Now()
		res, faults := appraise.ReplayIMA(news, prefix.Value, "SHA256")
		replay += time.Since(t0)
		all := append(entries[:len(prefix.Entries)], res.Entries...)
		p := c.Continue(kept, all, nil)
		if len(faults) != 0 || len(p.Faults()) != 0 || p.Entries != 810 {
			b.Fatalf("faults %v %v", faults, p.Faults())
		}
	}
	cpu.Report(b)
	benchfloor.ReportRatioWithout(b, "replay", replay)
}

// BenchmarkPolicyAppraise800 is the IMA part of a host's first report: an
// 800-line log (ten files signed by a trusted key, not in the policy)
// replayed and appraised against the 100,000-path policy. The signatures
// were verified for an earlier host: a signed file costs one verification
// per verifier, not per host.
func BenchmarkPolicyAppraise800(b *testing.B) {
	s := newSigner(b, "ecdsa")
	c := benchCompiled(b, s)
	log := benchLog(b, s, 0, 800)
	res, _ := appraise.ReplayIMA(log, nil, "SHA256")
	if f := c.Appraise(res.Entries, nil); len(f) != 0 {
		b.Fatalf("faults %+v", f)
	}
	b.ReportAllocs()
	var replay time.Duration
	cpu := benchfloor.Start()
	for b.Loop() {
		t0 := time.Now()
		res, faults := appraise.ReplayIMA(log, nil, "SHA256")
		replay += time.Since(t0)
		if len(faults) != 0 || len(res.Entries) != 800 {
			b.Fatal(faults)
		}
		if f := c.Appraise(res.Entries, nil); len(f) != 0 {
			b.Fatalf("faults %+v", f)
		}
	}
	cpu.Report(b)
	benchfloor.ReportRatioWithout(b, "replay", replay)
}
