package hvs

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/evidence"
)

// wireAgent passes the fake agent's answers through their wire form, as
// the bus does: the node encodes the answer (the node's side: excluded
// from the verifier's CPU time, counted in agent-ns) and the verifier
// decodes it strictly, as agentclient does.
type wireAgent struct{ f *fakeAgent }

func (w wireAgent) Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	resp, err := w.f.Quote(ctx, hostID, req)
	if err != nil {
		return nil, err
	}
	w.f.mu.Lock()
	exclude, timed := w.f.exclude, w.f.timed
	w.f.mu.Unlock()
	var body []byte
	encode := func() {
		start := time.Now()
		body, err = json.Marshal(resp)
		if timed {
			w.f.elapsed.Add(int64(time.Since(start)))
		}
	}
	if exclude == nil {
		encode()
	} else {
		exclude(encode)
	}
	if err != nil {
		return nil, err
	}
	var out evidence.QuoteResponse
	if err := evidence.Decode(body, &out); err != nil {
		return nil, fmt.Errorf("quote reply: %w", err)
	}
	return &out, nil
}

// BenchmarkReportSteadyWire is BenchmarkReportSteady without new IMA
// lines, with the agent's answer decoded from its wire form: the
// verifier's share then has what a deployment's has of the answer, the
// strict JSON decode of the evidence, less the bus itself. With
// boot-log-named=false the verifier forgets, before each report, which
// boot log it appraised for the host, so that the agent sends it whole
// and it is decoded, hashed and parsed again (as before event_log_digest);
// with true the agent leaves it out.
func BenchmarkReportSteadyWire(b *testing.B) {
	for _, named := range []bool{true, false} {
		b.Run(fmt.Sprintf("boot-log-named=%v", named), func(b *testing.B) {
			e, n := newBenchReportEnv(b)
			e.svc.agent = wireAgent{e.agent}
			wantTrustedReport(b, e, n)
			b.ResetTimer()
			cpu := startMeter(e)
			for b.Loop() {
				if !named {
					cpu.Exclude(func() {
						b.StopTimer()
						e.svc.eventLogs.hosts.Delete(n.id)
						b.StartTimer()
					})
				}
				wantTrustedReport(b, e, n)
			}
			reportRatios(b, e, cpu)
		})
	}
}
