package manager

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
)

// env is a manager over fakes that survive a restart of the manager.
type env struct {
	t     *testing.T
	cfg   Config
	v     *fakeVerifier // its clock is the manager's
	nodes *fakeNodes
	sink  *fakeSink
	m     *Manager
}

func hostID(i int) string { return fmt.Sprintf("4c4c4544-0000-0000-0000-%012d", i) }

// lockedRand is a seeded, goroutine-safe random source.
func lockedRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed+1))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

func newEnv(t *testing.T, cfg Config, nodes int) *env {
	t.Helper()
	clock := newFakeClock()
	e := &env{t: t, cfg: cfg, v: newFakeVerifier(clock), nodes: newFakeNodes(), sink: &fakeSink{}}
	for i := 1; i <= nodes; i++ {
		e.nodes.add(fmt.Sprintf("edge-%d", i), hostID(i))
	}
	e.restart()
	return e
}

// restart replaces the manager by a new one over the same fakes.
func (e *env) restart() {
	e.t.Helper()
	m, err := New(e.cfg, Deps{
		Verifier: e.v, Nodes: e.nodes, Status: e.sink, Clock: e.v.clock,
		Logger: slog.New(slog.DiscardHandler), Rand: lockedRand(42),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
}

func (e *env) tick() { e.m.Tick(context.Background()) }

func (e *env) now() time.Time { return e.v.clock.Now() }

func (e *env) advance(d time.Duration) {
	e.v.clock.Advance(d)
	e.tick()
}

func (e *env) wantStatus(node string, want cluster.Status) {
	e.t.Helper()
	if got := e.nodes.get(node).Status; got != want {
		e.t.Fatalf("node %s status = %q, want %q; calls %v", node, got, want, e.nodes.calls)
	}
}

// failThenFix fails edge-1 on a tampered report at its next poll, then
// undoes the tamper: the reports after that pass.
func (e *env) failThenFix() {
	e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
	e.advance(2 * time.Hour)
	e.v.set(hostID(1), func(h *simHost) { h.tampered = false })
}

// wantNoCall fails the test when the nodes got a call of kind (a prefix of
// the recorded call), saying why that is wrong.
func (e *env) wantNoCall(kind, why string) {
	e.t.Helper()
	if e.nodes.count(kind) != 0 {
		e.t.Fatalf("%s: %v", why, e.nodes.calls)
	}
}

func TestAnEnabledNodeIsRegisteredBaselinedAndVerified(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	if e.v.registered != 1 {
		t.Fatalf("registrations = %d, want 1", e.v.registered)
	}
	if got := e.v.rebaselines[hostID(1)]; got != 1 {
		t.Fatalf("rebaselines = %d, want 1 (a new host has no flavors)", got)
	}
	e.wantStatus("edge-1", cluster.StatusVerified)
	if n := e.nodes.get("edge-1"); !n.Ready || n.Cordoned {
		t.Fatalf("node %+v: want ready and not cordoned", n.Node)
	}
	if got, want := e.sink.last(), hostID(1)+" VERIFIED Attestation successful"; got != want {
		t.Fatalf("eim = %q, want %q", got, want)
	}
	e.wantNoCall("failed", "a failure was recorded")
}

func TestAFailingReportCordonsTheNodeAndTellsTheEIM(t *testing.T) {
	tests := []struct {
		name       string
		change     func(*simHost)
		wantStatus cluster.Status
		wantParts  []string
		wantDetail string
	}{
		{
			name:       "a tampered IMA log is Attestation Failed naming IMA",
			change:     func(h *simHost) { h.tampered = true },
			wantStatus: cluster.StatusAttestationFailed, wantParts: []string{"IMA"},
			wantDetail: "FAILED IMA trust verification failed",
		},
		{
			name:       "Secure Boot off is Secure Boot Disabled even when the report is also untrusted",
			change:     func(h *simHost) { h.secureBootOff, h.tampered = true, true },
			wantStatus: cluster.StatusSecureBootDisabled,
			wantDetail: "FAILED SecureBoot Disabled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{EvictNamespaces: []string{"default", "apps"}}, 1)
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)

			e.v.set(hostID(1), tt.change)
			e.advance(2 * time.Hour)
			e.wantStatus("edge-1", tt.wantStatus)
			if len(e.nodes.failed) != 1 || !slices.Equal(e.nodes.failed[0].parts, tt.wantParts) {
				t.Fatalf("MarkFailed calls %+v, want one naming %v", e.nodes.failed, tt.wantParts)
			}
			if e.nodes.cordons != 1 || e.nodes.evictions != 1 {
				t.Fatalf("cordons %d evictions %d, want 1 and 1", e.nodes.cordons, e.nodes.evictions)
			}
			if got := e.sink.last(); got != hostID(1)+" "+tt.wantDetail {
				t.Fatalf("eim = %q, want %q", got, tt.wantDetail)
			}
		})
	}
}

func TestNothingUncordonsANodeButOnboarding(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.failThenFix()
	e.advance(2 * time.Hour) // a passing report
	if n := e.nodes.get("edge-1"); !n.Cordoned || e.nodes.uncordons != 0 {
		t.Fatalf("a Verified report uncordoned the node: %+v", n.Node)
	}
	e.wantNoCall("onboarded", "onboarded without a request")
}

func TestARebootReBaselinesThenAttests(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()

	// A kernel update and a reboot: the first report of the boot has
	// another OS measurement. On schedule:
	e.v.reboot(hostID(1), true)
	e.advance(2 * time.Hour)
	if got := e.v.rebaselines[hostID(1)]; got != 2 {
		t.Fatalf("rebaselines = %d, want 2", got)
	}
	e.wantStatus("edge-1", cluster.StatusVerified)

	// Again, this time learned from the report the verifier published after
	// the agent's boot event, before the poll time.
	e.v.reboot(hostID(1), true)
	e.v.publish(hostID(1))
	e.m.ReportPublished(hostID(1))
	e.tick()
	if got := e.v.rebaselines[hostID(1)]; got != 3 {
		t.Fatalf("rebaselines after the boot report = %d, want 3", got)
	}
	e.wantStatus("edge-1", cluster.StatusVerified)
	e.wantNoCall("failed", "the pre-baseline report was acted on")
}

// Root on a node changes what it boots (an initrd, a kernel command line)
// and reboots: under goldenFlavors everyBoot the boot's measurements become
// the golden flavors and the node is Verified again, as the seed asks. It
// must not be silent: the operator gets a Warning Event on the Node naming
// what this boot measured otherwise than the flavors it replaced.
func TestGoldenFlavorsReplacedByABootThatDifferedLeaveATrail(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.wantNoCall("flavors-replaced", "the first baseline of a host without flavors replaced nothing")

	e.v.reboot(hostID(1), false) // the same software: nothing differs
	e.advance(2 * time.Hour)
	e.wantNoCall("flavors-replaced", "a reboot into the same software left a trail")

	e.v.reboot(hostID(1), true)
	e.advance(2 * time.Hour)
	e.wantStatus("edge-1", cluster.StatusVerified)
	if n := e.nodes.count("flavors-replaced edge-1 "); n != 1 {
		t.Fatalf("%d trails of replaced flavors, want 1: %v", n, e.nodes.calls)
	}
	for _, c := range e.nodes.calls {
		if strings.HasPrefix(c, "flavors-replaced ") && (!strings.Contains(c, "measured OS otherwise") || !strings.Contains(c, "goldenFlavors everyBoot")) {
			t.Errorf("trail %q: want the part that differed and the policy", c)
		}
	}

	// firstBoot never replaces flavors: the boot fails instead.
	f := newEnv(t, Config{GoldenFlavors: FirstBoot}, 1)
	f.tick()
	f.v.reboot(hostID(1), true)
	f.advance(2 * time.Hour)
	f.wantStatus("edge-1", cluster.StatusAttestationFailed)
	f.wantNoCall("flavors-replaced", "firstBoot replaced flavors")
}

func TestARebootWhoseNoticeWasMissedIsSeenAtThePollTime(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.restart() // forgets the reset count it saw
	e.tick()
	e.v.reboot(hostID(1), true)
	e.v.publish(hostID(1)) // the NATS notice never arrives
	e.advance(2 * time.Hour)
	if got := e.v.rebaselines[hostID(1)]; got != 2 {
		t.Fatalf("rebaselines = %d, want 2", got)
	}
	e.wantStatus("edge-1", cluster.StatusVerified)
}

func TestAReportWithoutAQuoteDoesNotFakeAReboot(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	// The agent is unreachable: the verifier's report has no quote, no
	// reset count, and a connection fault.
	r := newReport(hostID(1)).id("offline").at(e.now()).fault("ConnectionFailure").build()
	r.HostStatus, r.ResetCount = "CONNECTION_FAILURE", 0
	e.v.put(r)
	e.m.ReportPublished(hostID(1))
	e.tick()
	e.wantStatus("edge-1", cluster.StatusAttestationFailed)
	// Back, same boot, but tampered meanwhile: no re-baseline may hide it.
	e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
	e.advance(2 * time.Hour)
	if got := e.v.rebaselines[hostID(1)]; got != 1 {
		t.Fatalf("rebaselines = %d, want 1: no reboot happened", got)
	}
	if f := e.nodes.failed[len(e.nodes.failed)-1]; !slices.Equal(f.parts, []string{"IMA"}) {
		t.Fatalf("last failure %+v, want IMA", f)
	}
}

func TestGoldenFlavorPolicies(t *testing.T) {
	// outcome is how often the host was baselined so far, and its status.
	type outcome struct {
		baselines int
		status    cluster.Status
	}
	verified, failed := cluster.StatusVerified, cluster.StatusAttestationFailed
	tests := []struct {
		name                 string
		policy               GoldenFlavors
		operatorFlavors      bool
		atStart, afterReboot outcome
	}{
		{"everyBoot baselines a new host and again after every reboot", EveryBoot, false, outcome{1, verified}, outcome{2, verified}},
		{"everyBoot keeps existing flavors until the next reboot", EveryBoot, true, outcome{0, verified}, outcome{1, verified}},
		{"firstBoot baselines a new host only, so new boot software fails", FirstBoot, false, outcome{1, verified}, outcome{1, failed}},
		{"provided never baselines: operator flavors are used", Provided, true, outcome{0, verified}, outcome{0, failed}},
		{"provided never baselines: a host without flavors fails", Provided, false, outcome{0, failed}, outcome{0, failed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{GoldenFlavors: tt.policy}, 1)
			if tt.operatorFlavors {
				e.v.set(hostID(1), func(h *simHost) { h.baseline = 0 })
			}
			e.tick()
			if got := e.v.rebaselines[hostID(1)]; got != tt.atStart.baselines {
				t.Fatalf("rebaselines at start = %d, want %d", got, tt.atStart.baselines)
			}
			e.wantStatus("edge-1", tt.atStart.status)
			e.v.reboot(hostID(1), true)
			e.advance(2 * time.Hour)
			if got := e.v.rebaselines[hostID(1)]; got != tt.afterReboot.baselines {
				t.Fatalf("rebaselines after reboot = %d, want %d", got, tt.afterReboot.baselines)
			}
			e.wantStatus("edge-1", tt.afterReboot.status)
		})
	}
}

func TestOnboardingLiftsTheCordonOnlyAfterAPassingAttestation(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.v.set(hostID(1), func(h *simHost) { h.secureBootOff = true })
	e.advance(2 * time.Hour)
	e.wantStatus("edge-1", cluster.StatusSecureBootDisabled)

	// The operator asks for onboarding before fixing the firmware.
	e.nodes.update("edge-1", func(n *fakeNode) { n.OnboardRequested = true })
	before := e.v.rebaselines[hostID(1)]
	e.advance(DefaultRefreshInterval)
	if e.v.rebaselines[hostID(1)] != before+1 {
		t.Fatalf("onboarding did not re-baseline")
	}
	if e.nodes.count("onboarded") != 0 || !e.nodes.get("edge-1").Cordoned {
		t.Fatalf("a failing onboarding attestation lifted the cordon: %v", e.nodes.calls)
	}
	e.wantStatus("edge-1", cluster.StatusSecureBootDisabled)
	reports := e.v.count("report")
	e.advance(DefaultRefreshInterval)
	if e.v.count("report") != reports {
		t.Fatalf("a failed onboarding was retried before the poll time")
	}

	// Fixed: the next onboarding attempt (at the poll time) passes.
	e.v.set(hostID(1), func(h *simHost) { h.secureBootOff = false })
	e.advance(2 * time.Hour)
	if e.nodes.count("onboarded") != 1 || e.nodes.uncordons != 1 {
		t.Fatalf("onboarded %d uncordons %d, want 1 and 1; calls %v", e.nodes.count("onboarded"), e.nodes.uncordons, e.nodes.calls)
	}
	if n := e.nodes.get("edge-1"); n.Cordoned || n.OnboardRequested || n.Status != cluster.StatusVerified {
		t.Fatalf("after onboarding %+v", n.Node)
	}
	if got := e.sink.last(); !strings.HasSuffix(got, "VERIFIED Attestation successful") {
		t.Fatalf("eim = %q", got)
	}
}

func TestOnboardingIsSeenAtTheNextNodeRefresh(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.failThenFix()
	e.nodes.update("edge-1", func(n *fakeNode) { n.OnboardRequested = true })
	e.advance(DefaultRefreshInterval)
	if e.nodes.count("onboarded") != 1 || e.nodes.get("edge-1").Cordoned {
		t.Fatalf("onboarding not done within one refresh: %v", e.nodes.calls)
	}
}

func TestARestartedManagerDoesNotRepeatActions(t *testing.T) {
	e := newEnv(t, Config{EvictNamespaces: []string{"default"}}, 2)
	e.v.set(hostID(2), func(h *simHost) { h.tampered = true })
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	e.wantStatus("edge-2", cluster.StatusAttestationFailed)
	calls, notes, reports := len(e.nodes.calls), len(e.sink.all()), e.v.count("report")

	e.restart()
	e.tick()
	if got := e.nodes.calls[calls:]; len(got) != 0 {
		t.Fatalf("the restarted manager acted again on reports already acted on: %v", got)
	}
	if got := e.sink.all()[notes:]; len(got) != 0 {
		t.Fatalf("the restarted manager re-sent verdicts: %v", got)
	}
	if got := e.v.count("report"); got != reports {
		t.Fatalf("reports made = %d, want %d (no new report at restart)", got, reports)
	}

	// At the poll time the failing node fails again: the Node says so
	// already, so it is neither cordoned nor drained a second time.
	e.advance(2 * time.Hour)
	if e.nodes.cordons != 1 || e.nodes.evictions != 1 {
		t.Fatalf("cordons %d evictions %d after restart, want 1 and 1", e.nodes.cordons, e.nodes.evictions)
	}
	if len(e.nodes.failed) != 2 {
		t.Fatalf("MarkFailed calls %+v, want 2", e.nodes.failed)
	}

	// A restart right after a failure recorded with the same report id:
	// MarkFailed would change nothing.
	e.restart()
	before := len(e.nodes.failed)
	e.tick()
	if len(e.nodes.failed) != before {
		t.Fatalf("MarkFailed repeated after restart: %+v", e.nodes.failed[before:])
	}
}

func TestAnUnreachableVerifierLeavesTheStatusAndSaysWhy(t *testing.T) {
	e := newEnv(t, Config{}, 2)
	e.v.setDown(errUnreachable)
	e.tick()
	e.wantStatus("edge-1", cluster.StatusPending)
	if e.nodes.count("pending edge-1 VerifierUnreachable verifier unreachable:") != 1 {
		t.Fatalf("no Pending saying why: %v", e.nodes.calls)
	}
	if e.nodes.count("verified") != 0 || len(e.sink.all()) != 0 {
		t.Fatalf("a decision was made without the verifier: %v %v", e.nodes.calls, e.sink.all())
	}

	e.v.setDown(nil)
	e.advance(time.Minute) // RetryMin 30s with ±10% jitter
	e.wantStatus("edge-1", cluster.StatusVerified)

	e.v.setDown(errUnreachable)
	e.advance(90 * time.Minute)                    // due, and the evidence is younger than maxEvidenceAge
	e.wantStatus("edge-1", cluster.StatusVerified) // stays
	e.wantNoCall("failed", "an unreachable verifier failed the node")
	if !strings.Contains(e.nodes.calls[len(e.nodes.calls)-1], "connection refused") {
		t.Fatalf("the Pending message lacks the cause: %q", e.nodes.calls[len(e.nodes.calls)-1])
	}
	// The retry waits RetryMin, then twice that, within the jitter.
	st := e.m.hosts["edge-1"]
	if wait := st.next.Sub(e.now()); wait < 27*time.Second || wait > 33*time.Second {
		t.Fatalf("first retry in %s, want 30s ± 10%%", wait)
	}
}

func TestJitterKeepsAttestationsWithinBoundsAndSpreadsThem(t *testing.T) {
	e := newEnv(t, Config{}, 100)
	e.tick()
	now := e.now()
	lo, hi := now.Add(54*time.Minute), now.Add(66*time.Minute)
	first, last := hi, lo
	for name, st := range e.m.hosts {
		if st.next.Before(lo) || st.next.After(hi) {
			t.Fatalf("node %s next attestation at %s, want within 60m ± 10%%", name, st.next.Sub(now))
		}
		if st.next.Before(first) {
			first = st.next
		}
		if st.next.After(last) {
			last = st.next
		}
	}
	if spread := last.Sub(first); spread < 8*time.Minute {
		t.Fatalf("next attestations spread over %s only, want most of 12m", spread)
	}
}

func TestJittered(t *testing.T) {
	tests := []struct {
		name string
		u    float64
		want time.Duration
	}{
		{"the lowest draw is the poll duration less the jitter", 0, 54 * time.Minute},
		{"the middle draw is the poll duration", 0.5, 60 * time.Minute},
		{"the highest draws approach the poll duration plus the jitter", 0.999999, 66 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Jittered(time.Hour, 0.1, tt.u)
			if d := got - tt.want; d < -time.Second || d > time.Second {
				t.Fatalf("Jittered = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestThePollDurationAnnotationOverridesTheDefault(t *testing.T) {
	tests := []struct {
		name       string
		annotation string
		lo, hi     time.Duration
	}{
		{"minutes like the Helm value", "10", 9 * time.Minute, 11 * time.Minute},
		{"a Go duration", "2h", 108 * time.Minute, 132 * time.Minute},
		{"an invalid value falls back to the default", "soon", 54 * time.Minute, 66 * time.Minute},
		{"a value below a minute falls back to the default", "0", 54 * time.Minute, 66 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, 1)
			e.nodes.update("edge-1", func(n *fakeNode) { n.PollDuration = tt.annotation })
			e.tick()
			wait := e.m.hosts["edge-1"].next.Sub(e.now())
			if wait < tt.lo || wait > tt.hi {
				t.Fatalf("next attestation in %s, want %s to %s", wait, tt.lo, tt.hi)
			}
		})
	}
}

func TestAPublishedReportIsEvaluatedAtOnce(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	reports := e.v.count("report")

	// The echo of our own report changes nothing.
	e.m.ReportPublished(hostID(1))
	e.tick()
	if e.v.count("report") != reports || e.nodes.count("verified") != 1 {
		t.Fatalf("the echo of our own report was acted on: %v", e.nodes.calls)
	}

	// An IMA event of the agent: the verifier appraises and publishes.
	e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
	r := e.v.publish(hostID(1))
	e.m.ReportPublished(strings.ToUpper(hostID(1)))
	e.tick() // no time passes
	e.wantStatus("edge-1", cluster.StatusAttestationFailed)
	if got := e.nodes.get("edge-1").LastReport; got != r.ID {
		t.Fatalf("acted on report %s, want the published %s", got, r.ID)
	}
	if e.v.count("report") != reports {
		t.Fatalf("a new report was made instead of acting on the published one")
	}
}

func TestTheControllerEvaluatesAPublishedReportWithoutWaitingForThePollTime(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	watch, stop := startController(t, e.m, 2)
	enqueueAll(t, e, watch)
	waitFor(t, 5*time.Second, "edge-1 verified", func() bool { return e.nodes.get("edge-1").Status == cluster.StatusVerified })

	e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
	e.v.publish(hostID(1))
	e.m.ReportPublished(hostID(1))
	waitFor(t, 5*time.Second, "edge-1 failed", func() bool { return e.nodes.get("edge-1").Status == cluster.StatusAttestationFailed })
	stop()
}

// waitFor polls cond until it holds; the test fails when it does not hold
// within the given time.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestANodeWithoutHostIDIsPendingAndNotRegistered(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	e.nodes.add("edge-x", "")
	e.tick()
	if e.nodes.count("pending edge-x HostIDMissing") != 1 || e.v.registered != 0 {
		t.Fatalf("calls %v, registrations %d", e.nodes.calls, e.v.registered)
	}
}

func TestANodeNoLongerEnabledIsForgotten(t *testing.T) {
	e := newEnv(t, Config{}, 2)
	e.tick()
	e.nodes.mu.Lock()
	delete(e.nodes.nodes, "edge-2")
	e.nodes.mu.Unlock()
	e.advance(2 * time.Hour)
	if _, ok := e.m.hosts["edge-2"]; ok {
		t.Fatal("state of a removed node kept")
	}
	if got := e.v.count("report " + hostID(2)); got != 2 { // before and after its first baseline
		t.Fatalf("reports of the removed node = %d, want 2", got)
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.PollDuration != time.Hour || d.Jitter != 0.1 || d.GoldenFlavors != EveryBoot || d.Concurrency != 4 {
		t.Fatalf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if (Config{Jitter: -1}).WithDefaults().Jitter != 0 {
		t.Fatal("a negative jitter does not turn it off")
	}
	err := Config{PollDuration: time.Second, Jitter: 0.9, GoldenFlavors: "always", Concurrency: -1,
		RefreshInterval: time.Millisecond, RetryMin: -1, EvictNamespaces: []string{""}}.Validate()
	for _, want := range []string{"poll duration", "jitter", "golden flavors", "concurrency", "refresh interval", "retry min", "evict namespaces"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestParsePollDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"60", time.Hour, false},
		{" 5 ", 5 * time.Minute, false},
		{"90m", 90 * time.Minute, false},
		{"0", 0, true},
		{"30s", 0, true},
		{"-5", 0, true},
		{"20000", 0, true},
		{"hourly", 0, true},
	}
	for _, tt := range tests {
		t.Run("the poll duration "+strings.TrimSpace(tt.in), func(t *testing.T) {
			got, err := ParsePollDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParsePollDuration(%q) = %s, %v", tt.in, got, err)
			}
		})
	}
}

func FuzzParsePollDuration(f *testing.F) {
	for _, s := range []string{"60", "90m", "0", "-1", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParsePollDuration(s)
		if err == nil && (d < MinPollDuration || d > MaxPollDuration) {
			t.Fatalf("ParsePollDuration(%q) = %s out of bounds", s, d)
		}
	})
}
