package hvs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// faultsOf lists the report's evidence faults and, as "PART:Name", the
// faults of its parts.
func faultsOf(r *report.Report) []string { return faultNames(r) }

func mustReport(t *testing.T, e *env, hostID string) *report.Report {
	t.Helper()
	r, err := e.svc.CreateReport(context.Background(), hostID)
	if err != nil {
		t.Fatalf("CreateReport(%s): %v", hostID, err)
	}
	return r
}

func wantTrusted(t *testing.T, r *report.Report) {
	t.Helper()
	if !r.Trusted() || !r.TrustInformation.Overall {
		t.Fatalf("report is not trusted: status %s, faults %v %+v", r.HostStatus, faultsOf(r), r.Faults)
	}
}

// wantUntrusted checks that the report is untrusted (OVERALL false too),
// that exactly the failed parts failed, and that every wanted fault is there.
func wantUntrusted(t *testing.T, r *report.Report, failedParts []string, faults ...string) {
	t.Helper()
	if r.Trusted() || r.TrustInformation.Overall {
		t.Fatalf("report is trusted (OVERALL %v), want untrusted", r.TrustInformation.Overall)
	}
	if failedParts != nil && !slices.Equal(r.FailedParts(), failedParts) {
		t.Errorf("failed parts %v, want %v (faults %v)", r.FailedParts(), failedParts, faultsOf(r))
	}
	got := faultsOf(r)
	for _, f := range faults {
		if !slices.Contains(got, f) {
			t.Errorf("faults %v lack %s", got, f)
		}
	}
}

func TestABaselinedHostIsTrustedAndItsReportIsSignedStoredAndPublished(t *testing.T) {
	e, n := newBaselinedEnv(t)
	r := mustReport(t, e, n.id)
	wantTrusted(t, r)
	if r.HostStatus != report.StatusConnected || r.ResetCount != 1 || r.Rebooted {
		t.Errorf("status %s, reset count %d, rebooted %v; want CONNECTED, 1, false", r.HostStatus, r.ResetCount, r.Rebooted)
	}
	if !r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled || r.HostInfo.HardwareUUID != n.uuid {
		t.Errorf("host info %+v: want Secure Boot on and hardware uuid %s", r.HostInfo, n.uuid)
	}
	if len(r.Nonce) != evidence.NonceSize || !slices.Equal(r.Nonce, e.agent.lastRequest().Nonce) {
		t.Errorf("report nonce %x is not the %d-byte nonce of the quote request", r.Nonce, evidence.NonceSize)
	}
	if !r.Expiration.Equal(r.Created.Add(time.Hour)) {
		t.Errorf("expiration %v, want an hour after %v", r.Expiration, r.Created)
	}

	stored, err := e.st.ReportByID(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Trusted {
		t.Error("stored report is not marked trusted")
	}
	subject, _ := bus.ReportSubject(n.id)
	msgs := e.pub.published(subject)
	if len(msgs) != 1 || msgs[0] != stored.JWS {
		t.Fatalf("published %d messages on %s, want the report's JWS", len(msgs), subject)
	}
	// (report.Verify of the published JWS under the real CMS root is in the
	// integration test.)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(msgs[0], ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var published report.Report
	if err := json.Unmarshal(payload, &published); err != nil {
		t.Fatal(err)
	}
	// The stored JSON is the signed payload, byte for byte, and the report
	// returned.
	if want, err := json.Marshal(r); err != nil || !bytes.Equal(stored.JSON, payload) || !bytes.Equal(stored.JSON, want) {
		t.Errorf("stored JSON %s\nis not the signed payload %s\nand the report returned %s (%v)", stored.JSON, payload, want, err)
	}
	if published.ID != r.ID || !published.Trusted() {
		t.Errorf("published report %s trusted=%v, want %s trusted", published.ID, published.Trusted(), r.ID)
	}
	h, err := e.st.HostByID(t.Context(), n.id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != report.StatusConnected || !h.LastConnected.Equal(e.clock.Now()) || !h.Boot.Known || h.Boot.ResetCount != 1 {
		t.Errorf("host after report: %+v", h)
	}
}

func TestEachTamperMakesTheRightPartUntrusted(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, n *node, e *env)
		parts  []string
		faults []string
	}{
		{"an extended PCR 0 fails PLATFORM", func(t *testing.T, n *node, _ *env) { n.extend(t, 0) },
			[]string{"PLATFORM"}, []string{"PLATFORM:" + flavor.FaultPcrValueMismatch, appraise.FaultEventLogReplay}},
		{"an extended PCR 8 fails OS", func(t *testing.T, n *node, _ *env) { n.extend(t, 8) },
			[]string{"OS"}, []string{"OS:" + flavor.FaultPcrValueMismatch}},
		{"a newly measured file fails IMA", func(t *testing.T, n *node, _ *env) { n.measureFile(t, "/usr/bin/evil", "x") },
			[]string{"IMA"}, []string{"IMA:" + flavor.FaultImaContainsUnexpectedEntries}},
		{"a changed measured file fails IMA", func(t *testing.T, n *node, _ *env) { n.measureFile(t, "/usr/bin/kata-runtime", "patched") },
			[]string{"IMA"}, []string{"IMA:" + flavor.FaultImaMeasurementMismatch}},
		{"another node's event log fails the replay", func(t *testing.T, n *node, e *env) {
			e.agent.set(func(f *fakeAgent) {
				f.tamper = func(_ *evidence.QuoteRequest, r *evidence.QuoteResponse) { r.EventLog = sandbox.BootLogSecureBootOff }
			})
		}, nil, []string{appraise.FaultEventLogReplay}},
		{"a replayed old quote fails the nonce", func(t *testing.T, n *node, e *env) {
			old, err := n.agent.Evidence(context.Background(), evidence.QuoteRequest{Version: evidence.Version,
				Nonce: make([]byte, 32), PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Banks: n.banks, EventLog: true, IMAMeasureEnabled: true})
			if err != nil {
				t.Fatal(err)
			}
			e.agent.set(func(f *fakeAgent) {
				f.tamper = func(_ *evidence.QuoteRequest, r *evidence.QuoteResponse) { *r = *old }
			})
		}, nil, []string{appraise.FaultQuoteNonce}},
		{"an unenrolled AK fails AikCertificateTrusted", func(t *testing.T, n *node, e *env) {
			e.enr.mu.Lock()
			delete(e.enr.enrolled, n.id)
			e.enr.mu.Unlock()
		}, nil, []string{FaultAikCertificateTrusted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, n := newBaselinedEnv(t)
			wantTrusted(t, mustReport(t, e, n.id))
			tt.tamper(t, n, e)
			r := mustReport(t, e, n.id)
			wantUntrusted(t, r, tt.parts, tt.faults...)
			if strings.Contains(tt.name, "newly measured") {
				f := findFault(r, flavor.FaultImaContainsUnexpectedEntries)
				if f == nil || !slices.Contains(f.UnexpectedEntries, "/usr/bin/evil") {
					t.Errorf("the IMA fault does not name the new file: %+v", f)
				}
			}
			stored, err := e.st.ReportByID(t.Context(), r.ID)
			if err != nil || stored.Trusted {
				t.Errorf("stored report trusted=%v (%v), want a stored untrusted report", stored.Trusted, err)
			}
		})
	}
}

func findFault(r *report.Report, name string) *appraise.Fault {
	for _, p := range flavor.Parts() {
		for _, rule := range r.TrustInformation.FlavorsTrust[p].Rules {
			for i := range rule.Faults {
				if rule.Faults[i].Name == name {
					return &rule.Faults[i]
				}
			}
		}
	}
	return nil
}

func TestAHostWithoutFlavorsIsNotTrusted(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.register(t, n)
	wantUntrusted(t, mustReport(t, e, n.id), []string{"OS", "PLATFORM"}, "PLATFORM:"+flavor.FaultFlavorMissing)
}

func TestAgentFailuresGiveAStoredUntrustedReportWithTheirStatus(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status string
		fault  string
	}{
		{"an agent that does not answer in time", &agentclient.RequestError{HostID: "edge-1", Request: bus.QuoteRequest,
			Kind: agentclient.ErrTimeout, Err: context.DeadlineExceeded}, report.StatusConnectionTimeout, FaultAgentTimeout},
		{"an agent that is not connected", &agentclient.RequestError{HostID: "edge-1", Request: bus.QuoteRequest,
			Kind: agentclient.ErrNoResponders}, report.StatusConnectionFailure, FaultAgentUnreachable},
		{"an agent whose reply does not decode", &agentclient.RequestError{HostID: "edge-1", Request: bus.QuoteRequest,
			Kind: agentclient.ErrBadReply}, report.StatusConnectionFailure, FaultAgentBadReply},
		{"an agent without a TPM", &agentclient.AgentError{HostID: "edge-1", Request: bus.QuoteRequest,
			Code: evidence.CodeTPMUnavailable, Message: "no tpm"}, report.StatusTPMNotPresent, FaultAgentError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, n := newBaselinedEnv(t)
			first := mustReport(t, e, n.id)
			wantTrusted(t, first)
			e.clock.Advance(time.Minute)
			e.agent.set(func(f *fakeAgent) { f.err = tt.err })
			r := mustReport(t, e, n.id)
			wantUntrusted(t, r, nil, tt.fault)
			if r.HostStatus != tt.status {
				t.Errorf("report status %s, want %s", r.HostStatus, tt.status)
			}
			latest, err := e.st.ListReports(t.Context(), store.ReportFilter{HostID: n.id, LatestPerHost: true})
			if err != nil || len(latest) != 1 || latest[0].ID != r.ID || latest[0].Trusted {
				t.Fatalf("latest stored report %+v (%v), want the new untrusted one", latest, err)
			}
			h, _ := e.st.HostByID(t.Context(), n.id)
			if h.Status != tt.status || !h.LastConnected.Equal(first.Created) {
				t.Errorf("host status %s last connected %v, want %s and %v", h.Status, h.LastConnected, tt.status, first.Created)
			}
		})
	}
}

func TestConcurrentReportsOfOneHostShareOneQuote(t *testing.T) {
	e, n := newBaselinedEnv(t)
	before := e.agent.calls.Load()
	e.agent.set(func(f *fakeAgent) {
		f.entered, f.release = make(chan struct{}, 4), make(chan struct{})
	})
	var (
		wg      sync.WaitGroup
		reports [2]*report.Report
		errs    [2]error
		started atomic.Int32
	)
	for i := range 2 {
		wg.Go(func() {
			started.Add(1)
			reports[i], errs[i] = e.svc.CreateReport(context.Background(), n.id)
		})
	}
	<-e.agent.entered
	for started.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the second caller join the flight
	close(e.agent.release)
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if calls := e.agent.calls.Load() - before; calls != 1 {
		t.Errorf("%d quotes for two concurrent reports, want 1", calls)
	}
	if reports[0].ID != reports[1].ID {
		t.Errorf("concurrent reports %s and %s, want one shared report", reports[0].ID, reports[1].ID)
	}
}

func TestARebootIsDetectedFromTheQuoteAndTheIMALogStartsOver(t *testing.T) {
	e, n := newBaselinedEnv(t)
	wantTrusted(t, mustReport(t, e, n.id))

	// Within a boot the IMA log is read from where the last report ended.
	n.measureFile(t, "/usr/bin/evil", "x")
	r := mustReport(t, e, n.id)
	if got := e.agent.lastRequest().IMAOffset; got != len(bootFiles) {
		t.Errorf("IMA offset of the second quote %d, want %d", got, len(bootFiles))
	}
	wantUntrusted(t, r, []string{"IMA"}, "IMA:"+flavor.FaultImaContainsUnexpectedEntries)

	e.clock.Advance(time.Minute)
	n.reboot(t)
	r = mustReport(t, e, n.id)
	wantTrusted(t, r)
	if !r.Rebooted || r.ResetCount != 2 {
		t.Errorf("after a reboot: rebooted %v, reset count %d; want true, 2", r.Rebooted, r.ResetCount)
	}
	if got := e.agent.lastRequest().IMAOffset; got != 0 {
		t.Errorf("the quote of the new boot read IMA from %d, want 0", got)
	}
	h, _ := e.st.HostByID(t.Context(), n.id)
	if h.Boot.ResetCount != 2 || !h.Boot.RebootedAt.Equal(e.clock.Now()) {
		t.Errorf("host boot %+v, want reset count 2 rebooted at %v", h.Boot, e.clock.Now())
	}
	r = mustReport(t, e, n.id)
	wantTrusted(t, r)
	if r.Rebooted {
		t.Error("the second report of a boot says rebooted")
	}
}

func TestRebaselineReplacesTheHostsFlavorsAtomically(t *testing.T) {
	var failIDs atomic.Bool
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n}, func(cfg *Config, _ *Deps) {
		cfg.NewID = func() string {
			if failIDs.Load() {
				return "taken"
			}
			return uuidString()
		}
	})
	old := e.baseline(t, n)
	n.reboot(t, bootLogCmdline2(t))
	wantUntrusted(t, mustReport(t, e, n.id), []string{"OS"}, "OS:"+flavor.FaultPcrValueMismatch)

	t.Run("a rebaseline whose flavors cannot be stored keeps the old ones", func(t *testing.T) {
		failIDs.Store(true)
		defer failIDs.Store(false)
		if _, err := e.svc.Rebaseline(t.Context(), n.id, nil); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Rebaseline with colliding flavor ids = %v, want a conflict", err)
		}
		checkFlavorIDs(t, e, n.id, old)
	})
	t.Run("a rebaseline on evidence that does not verify keeps the old ones", func(t *testing.T) {
		e.agent.set(func(f *fakeAgent) {
			f.tamper = func(_ *evidence.QuoteRequest, r *evidence.QuoteResponse) { r.EventLog = sandbox.BootLogSecureBootOff }
		})
		defer e.agent.set(func(f *fakeAgent) { f.tamper = nil })
		var ee *EvidenceError
		if _, err := e.svc.Rebaseline(t.Context(), n.id, nil); !errors.As(err, &ee) {
			t.Fatalf("Rebaseline on a swapped event log = %v, want an *EvidenceError", err)
		}
		checkFlavorIDs(t, e, n.id, old)
	})
	t.Run("a rebaseline replaces PLATFORM, OS and IMA and the host is trusted again", func(t *testing.T) {
		signed, err := e.svc.Rebaseline(t.Context(), n.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, sf := range signed {
			ids = append(ids, sf.Flavor.Meta.ID)
			if err := flavor.Verify(sf, e.roots(), e.clock.Now()); err != nil {
				t.Errorf("rebaselined flavor does not verify: %v", err)
			}
		}
		if len(ids) != 3 {
			t.Fatalf("%d flavors, want 3", len(ids))
		}
		checkFlavorIDs(t, e, n.id, ids)
		wantTrusted(t, mustReport(t, e, n.id))
	})
}

func checkFlavorIDs(t *testing.T, e *env, hostID string, want []string) {
	t.Helper()
	fs, err := e.st.ListFlavors(t.Context(), store.FlavorFilter{HostID: hostID})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(fieldOf(fs, func(f store.Flavor) string { return f.ID })))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("flavors of the host %v, want %v", got, want)
	}
}

func TestFlavorsAreMadeOnlyFromVerifiedEvidence(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(e *env, n *node)
		status string
	}{
		{"a swapped event log", func(e *env, _ *node) {
			e.agent.set(func(f *fakeAgent) {
				f.tamper = func(_ *evidence.QuoteRequest, r *evidence.QuoteResponse) { r.EventLog = sandbox.BootLogSecureBootOff }
			})
		}, report.StatusConnected},
		{"an unenrolled AK", func(e *env, n *node) {
			e.enr.mu.Lock()
			delete(e.enr.enrolled, n.id)
			e.enr.mu.Unlock()
		}, report.StatusAIKNotProvisioned},
		{"a silent agent", func(e *env, _ *node) {
			e.agent.set(func(f *fakeAgent) { f.err = &agentclient.RequestError{Kind: agentclient.ErrTimeout} })
		}, report.StatusConnectionTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name+" makes no flavor", func(t *testing.T) {
			n := newNode(t, "edge-1")
			e := newEnv(t, []*node{n})
			e.register(t, n)
			tt.tamper(e, n)
			_, err := e.svc.FlavorsFromHost(t.Context(), n.id, DefaultRebaselineParts(), nil)
			var ee *EvidenceError
			if !errors.As(err, &ee) || ee.Status != tt.status {
				t.Fatalf("FlavorsFromHost = %v, want an *EvidenceError with status %s", err, tt.status)
			}
			checkFlavorIDs(t, e, n.id, nil)
		})
	}
}

func TestFlavorsOfOneHostDoNotMatchAnother(t *testing.T) {
	a, b := newNode(t, "edge-a"), newNode(t, "edge-b")
	e := newEnv(t, []*node{a, b})
	e.baseline(t, a)
	e.register(t, b)
	wantTrusted(t, mustReport(t, e, a.id))
	wantUntrusted(t, mustReport(t, e, b.id), []string{"OS", "PLATFORM"}, "PLATFORM:"+flavor.FaultFlavorMissing)
}

func TestAReportThatCannotBeSignedIsNotStored(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n}, func(_ *Config, d *Deps) {
		d.NewReportSigner = func(crypto.Signer, []*x509.Certificate) (ReportSigner, error) { return failingSigner{}, nil }
	})
	e.register(t, n)
	if _, err := e.svc.CreateReport(t.Context(), n.id); err == nil {
		t.Fatal("CreateReport with a failing signer succeeded")
	}
	if rs, _ := e.st.ListReports(t.Context(), store.ReportFilter{}); len(rs) != 0 {
		t.Errorf("%d reports stored without a signature", len(rs))
	}
}

func TestAReportOfAnUnknownHostIsNotFound(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.CreateReport(t.Context(), "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CreateReport(unknown) = %v, want ErrNotFound", err)
	}
}

func TestEventsQueueReportsOfRegisteredHostsOnly(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.register(t, n)
	for _, subject := range []string{
		"trust-events.edge-1.boot",
		"trust-events.edge-1.ima",
		"trust-events.stranger.boot",
		"trust-events.edge-1.unknown",
		"trust-events.edge-1",
	} {
		e.svc.HandleEvent(t.Context(), subject)
	}
	var queued []string
	for len(e.svc.queue) > 0 {
		queued = append(queued, <-e.svc.queue)
	}
	if !slices.Equal(queued, []string{"edge-1"}) {
		t.Errorf("queued %v, want edge-1 once (events coalesce, strangers and bad subjects are dropped)", queued)
	}
}

func TestTheRefresherQueuesHostsWhoseReportsExpire(t *testing.T) {
	n, m := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{n, m}, func(cfg *Config, _ *Deps) { cfg.RefreshInterval = time.Hour })
	e.baseline(t, n)
	e.baseline(t, m)
	mustReport(t, e, n.id)
	e.clock.Advance(40 * time.Minute)
	mustReport(t, e, m.id)
	e.clock.Advance(15 * time.Minute) // edge-1's report expires in 5 minutes, edge-2's in 45
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.svc.refresh(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.svc.queue) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("refresh = %v, want context.Canceled", err)
	}
	var queued []string
	for len(e.svc.queue) > 0 {
		queued = append(queued, <-e.svc.queue)
	}
	if !slices.Equal(queued, []string{n.id}) {
		t.Errorf("refresher queued %v, want [%s]", queued, n.id)
	}
}

func TestTheSigningCertificateIsSharedAndReissuedNearItsExpiry(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ca := newFakeCA(t)
	clk := newClock()
	ca.now = clk.Now
	newSvc := func() *Service {
		s, err := New(t.Context(), Config{Now: clk.Now, SigningValidity: 3 * time.Hour},
			Deps{Store: st, Agent: newFakeAgent(), Enroller: newFakeEnroller(newFakeAgent()), CA: ca}, discard)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	serial := func(s *Service) string {
		k, err := s.signingKey(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return k.chain[0].SerialNumber.String()
	}
	a := newSvc()
	first := serial(a)
	if got := serial(newSvc()); got != first {
		t.Errorf("a second replica signs with certificate %s, want the stored %s", got, first)
	}
	clk.Advance(time.Hour)
	if got := serial(a); got != first {
		t.Errorf("the certificate was re-issued with two thirds of its validity left")
	}
	clk.Advance(75 * time.Minute)
	renewed := serial(a)
	if renewed == first {
		t.Fatal("the certificate was not re-issued with less than a third of its validity left")
	}
	if got := serial(newSvc()); got != renewed {
		t.Errorf("a replica started after the renewal signs with %s, want the renewed %s", got, renewed)
	}
}

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{"nats://edge-1", "intel:nats://edge-1", "nats://", "nats://a.b", "https://x", "intel:intel:nats://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseConnectionString(s)
		if err != nil {
			return
		}
		if bus.ValidateHostID(id) != nil {
			t.Fatalf("ParseConnectionString(%q) = %q, not a valid host id", s, id)
		}
		if s != "nats://"+id && s != "intel:nats://"+id {
			t.Fatalf("ParseConnectionString(%q) = %q, which the input does not name", s, id)
		}
	})
}

func TestAnEvidenceFaultOutsideTheFlavorsMakesTheReportUntrusted(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.register(t, n)
	// PLATFORM and OS flavors only: IMA is REQUIRED_IF_DEFINED and not evaluated.
	if _, err := e.svc.FlavorsFromHost(t.Context(), n.id, []flavor.Part{flavor.PartPlatform, flavor.PartOS}, nil); err != nil {
		t.Fatal(err)
	}
	wantTrusted(t, mustReport(t, e, n.id))
	// A measurement the IMA log hides: the log no longer replays to PCR 10.
	n.extend(t, 10)
	r := mustReport(t, e, n.id)
	if parts := r.FailedParts(); len(parts) != 0 {
		t.Fatalf("failed parts %v, want none: only the evidence is faulty", parts)
	}
	wantUntrusted(t, r, []string{}, appraise.FaultIMAReplay)
}
