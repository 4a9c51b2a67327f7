package hvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/verifier/agentclient"
)

// quoteSeen is what one quote request named and what its answer carried.
type quoteSeen struct {
	named   bool // the request named an event log (EventLogDigest)
	sentLog bool // the answer carried the event log
}

// watchQuotes records the host's quotes from now on, after tamper (nil:
// none) changed the answer; the function returned gives those recorded
// since it was last called.
func watchQuotes(e *env, tamper func(req *evidence.QuoteRequest, resp *evidence.QuoteResponse)) func() []quoteSeen {
	var mu sync.Mutex
	var seen []quoteSeen
	e.agent.set(func(f *fakeAgent) {
		f.tamper = func(req *evidence.QuoteRequest, resp *evidence.QuoteResponse) {
			if tamper != nil {
				tamper(req, resp)
			}
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, quoteSeen{named: req.EventLogDigest != nil, sentLog: len(resp.EventLog) > 0})
		}
	})
	return func() []quoteSeen {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
}

var (
	namedLeftOut = quoteSeen{named: true}
	wholeLog     = quoteSeen{sentLog: true}
)

func TestASteadyReportNamesTheEventLogAndTheAgentLeavesItOut(t *testing.T) {
	e, n := newBaselinedEnv(t)
	wantTrusted(t, mustReport(t, e, n.id))
	seen := watchQuotes(e, nil)
	for range 3 {
		wantTrusted(t, mustReport(t, e, n.id))
	}
	if got, want := seen(), []quoteSeen{namedLeftOut, namedLeftOut, namedLeftOut}; !slices.Equal(got, want) {
		t.Fatalf("quotes %+v, want %+v", got, want)
	}
	sum := sha256.Sum256(sandbox.BootLogSecureBootOn)
	if got := e.agent.lastRequest().EventLogDigest; !bytes.Equal(got, sum[:]) {
		t.Fatalf("the request names log %x, want the node's %x", got, sum)
	}
}

// The attacks on a left-out event log, and the verifier's own misses: in
// each the verifier either finds the appraisal made from a real log with
// the named digest against exactly the quoted PCR values, in the same
// boot, or asks again for the whole log; it never trusts the agent's word.
func TestAnEventLogLeftOutIsTrustedOnlyWhereTheVerifierHoldsItsAppraisal(t *testing.T) {
	leaveOut := func(digest func() []byte, always bool) func(*env, *evidence.QuoteRequest, *evidence.QuoteResponse) {
		return func(_ *env, req *evidence.QuoteRequest, resp *evidence.QuoteResponse) {
			if always || req.EventLogDigest != nil {
				resp.EventLog, resp.EventLogDigest = nil, digest()
			}
		}
	}
	neverAppraised := func() []byte { return bytes.Repeat([]byte{0x5a}, sha256.Size) }
	ownLog := func() []byte { sum := sha256.Sum256(sandbox.BootLogSecureBootOn); return sum[:] }
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env, n *node)
		tamper  func(*env, *evidence.QuoteRequest, *evidence.QuoteResponse)
		quotes  []quoteSeen
		trusted bool
		faults  []string
	}{
		{
			// PCR 1 is in no flavor: only the replay of the whole log
			// sees it moved. An appraisal keyed by the log alone would
			// be trusted here.
			name:   "a boot log PCR extended after the log was appraised is replayed from the whole log",
			setup:  func(t *testing.T, _ *env, n *node) { n.extend(t, 1) },
			quotes: []quoteSeen{namedLeftOut, wholeLog}, faults: []string{appraise.FaultEventLogReplay},
		},
		{
			name:   "an agent naming a log the verifier never appraised is asked for the whole log",
			tamper: leaveOut(neverAppraised, false), quotes: []quoteSeen{namedLeftOut, wholeLog}, trusted: true,
		},
		{
			name:   "an agent that leaves the log out again when asked for the whole log is not trusted",
			tamper: leaveOut(neverAppraised, true), quotes: []quoteSeen{namedLeftOut, {}},
			faults: []string{appraise.FaultEvidenceMissing},
		},
		{
			name:   "an agent that leaves its log out when the request names none is not trusted",
			setup:  func(_ *testing.T, e *env, _ *node) { forgetHostsEventLogs(e) },
			tamper: leaveOut(ownLog, true), quotes: []quoteSeen{{}}, faults: []string{appraise.FaultEvidenceMissing},
		},
		{
			// The request names no log the memo no longer vouches for.
			name:   "a host whose log's appraisal was evicted from the memo sends the whole log",
			setup:  func(_ *testing.T, e *env, _ *node) { evictEventLogAppraisals(e) },
			quotes: []quoteSeen{wholeLog}, trusted: true,
		},
		{
			name:   "an appraisal evicted while the agent answered is made again from the whole log",
			tamper: func(e *env, _ *evidence.QuoteRequest, _ *evidence.QuoteResponse) { evictEventLogAppraisals(e) },
			quotes: []quoteSeen{namedLeftOut, wholeLog}, trusted: true,
		},
		{
			name:   "a host whose log this replica never appraised sends the whole log",
			setup:  func(_ *testing.T, e *env, _ *node) { forgetHostsEventLogs(e) },
			quotes: []quoteSeen{wholeLog}, trusted: true,
		},
		{
			// The log after the reboot is the same: the agent leaves it
			// out, and the appraisal of the last boot is not taken.
			name:   "a rebooted host is asked again for the whole log",
			setup:  func(t *testing.T, _ *env, n *node) { n.reboot(t) },
			quotes: []quoteSeen{namedLeftOut, wholeLog}, trusted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, n := newBaselinedEnv(t)
			wantTrusted(t, mustReport(t, e, n.id))
			if tt.setup != nil {
				tt.setup(t, e, n)
			}
			var tamper func(*evidence.QuoteRequest, *evidence.QuoteResponse)
			if tt.tamper != nil {
				tamper = func(req *evidence.QuoteRequest, resp *evidence.QuoteResponse) { tt.tamper(e, req, resp) }
			}
			seen := watchQuotes(e, tamper)
			r := mustReport(t, e, n.id)
			if got := seen(); !slices.Equal(got, tt.quotes) {
				t.Errorf("quotes %+v, want %+v", got, tt.quotes)
			}
			if tt.trusted {
				wantTrusted(t, r)
			} else {
				wantUntrusted(t, r, nil, tt.faults...)
			}
			if !tt.trusted {
				return
			}
			// Once the whole log was appraised again, the next report
			// of an honest agent leaves it out again.
			seen = watchQuotes(e, nil)
			wantTrusted(t, mustReport(t, e, n.id))
			if got := seen(); !slices.Equal(got, []quoteSeen{namedLeftOut}) {
				t.Errorf("the next report's quotes %+v, want one that left the log out", got)
			}
		})
	}
}

func evictEventLogAppraisals(e *env) {
	m := e.svc.eventLogs.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.m)
}

func forgetHostsEventLogs(e *env) {
	m := e.svc.eventLogs.hosts
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.m)
}

// quoteRequestV1Fields are the fields of evidence.QuoteRequest that agents
// before EventLogDigest know: they decode strictly and refuse any other.
var quoteRequestV1Fields = []string{"version", "nonce", "pcrs", "pcrbanks", "ima_measure_enabled", "ima_offset", "event_log"}

// olderAgent answers as an agent older than EventLogDigest does: a
// request it cannot decode is a BAD_REQUEST.
type olderAgent struct {
	Agent
	mu    sync.Mutex
	asked []bool // for each request, whether it named an event log
}

func (a *olderAgent) Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req.EventLogDigest != nil)
	a.mu.Unlock()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	for name := range fields {
		if !slices.Contains(quoteRequestV1Fields, name) {
			return nil, &agentclient.AgentError{HostID: hostID, Request: bus.QuoteRequest, Code: evidence.CodeBadRequest,
				Message: fmt.Sprintf("decode evidence message: json: unknown field %q", name)}
		}
	}
	return a.Agent.Quote(ctx, hostID, req)
}

func (a *olderAgent) requests() []bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.asked
	a.asked = nil
	return r
}

// An agent older than EventLogDigest refuses a request that names the
// log: the verifier asks again without it, and names no log to that host
// for the rest of its boot.
func TestAnAgentThatRefusesANamedEventLogIsAskedForTheWholeLog(t *testing.T) {
	n := newNode(t, "edge-1")
	older := &olderAgent{}
	e := newEnv(t, []*node{n}, func(_ *Config, deps *Deps) {
		older.Agent = deps.Agent
		deps.Agent = older
	})
	e.baseline(t, n)
	older.requests()
	steps := []struct {
		name   string
		before func()
		asked  []bool
	}{
		{"the first report names the log, is refused and asks again", nil, []bool{true, false}},
		{"the next report of the boot names no log", nil, []bool{false}},
		// (asked twice: the IMA log of the new boot is read from 0)
		{"the first report after a reboot names no log", func() { n.reboot(t) }, []bool{false, false}},
		{"the next one names the log again, once", nil, []bool{true, false}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		wantTrusted(t, mustReport(t, e, n.id))
		if got := older.requests(); !slices.Equal(got, s.asked) {
			t.Fatalf("%s: requests naming a log %v, want %v", s.name, got, s.asked)
		}
	}
}
