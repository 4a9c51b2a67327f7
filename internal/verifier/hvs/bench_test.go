package hvs

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/store"
)

// go test -run '^$' -bench . -benchtime 200x ./internal/verifier/hvs

// BenchmarkReport is one report in process: the node side is the real agent
// on a software TPM (ECDSA P-256 quote over a fresh nonce, event and IMA logs
// read from its root: the "canned" answer), then appraisal, flavor
// evaluation, JWS signing and the store transaction, on an SQLite file (WAL,
// fsync per commit) and in memory.
func BenchmarkReport(b *testing.B) {
	for name, dsn := range map[string]func() string{
		"sqlite-file":   func() string { return "sqlite:" + filepath.Join(b.TempDir(), "bench.db") },
		"sqlite-memory": func() string { return "sqlite::memory:" },
	} {
		b.Run(name, func(b *testing.B) {
			n := newNode(b, "edge-1")
			st, err := store.Open(b.Context(), dsn())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			e := newEnvOn(b, st, []*node{n})
			e.baseline(b, n)
			for b.Loop() {
				r, err := e.svc.CreateReport(context.Background(), n.id)
				if err != nil || !r.Trusted() {
					b.Fatalf("report: %v (trusted %v)", err, r != nil && r.Trusted())
				}
			}
		})
	}
}

// BenchmarkReportOverNATS is the end-to-end latency of one report: HVS asks
// a real trust agent on swtpm over the embedded NATS server (TLS), appraises,
// evaluates, signs and stores. It reports p50 and p99 besides the mean.
func BenchmarkReportOverNATS(b *testing.B) {
	tpmtest.Require(b, "swtpm")
	ctx := context.Background()
	bus := agentclienttest.NewBus(b)
	d := newRealDeps(b, bus, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	svc, err := New(ctx, Config{}, Deps{Store: d.st, Agent: d.client, Enroller: d.enroller, CA: d.ca}, discard)
	if err != nil {
		b.Fatal(err)
	}
	n := startRealNode(b, bus, "edge-1", "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a00", tpmtest.NewWithEKCert(b)).id
	mux := newMux(svc)
	if w := do(b, mux, "POST", "/hvs/v2/hosts", `{"host_name":"edge-1","connection_string":"nats://edge-1"}`); w.Code != 201 {
		b.Fatalf("register = %d %s", w.Code, w.Body)
	}
	if _, err := svc.FlavorsFromHost(ctx, n, DefaultRebaselineParts(), nil); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r, err := svc.CreateReport(ctx, n)
		if err != nil || r.HostStatus != "CONNECTED" {
			b.Fatalf("report: %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
