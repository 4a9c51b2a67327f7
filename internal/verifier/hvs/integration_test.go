package hvs

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/pgtest"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// The integration test runs HVS with every real part: the embedded NATS
// server with TLS and per-host credentials, trust agents on swtpm booted
// through a real OVMF event log, CMS, enrollment (EK certificates from
// swtpm's local CA, credential activation) and the store on SQLite, and on
// PostgreSQL when TC_TEST_POSTGRES_URL is set.

func TestIntegrationSQLite(t *testing.T) {
	runIntegration(t, "sqlite:"+filepath.Join(t.TempDir(), "verifier.db"))
}

func TestIntegrationPostgres(t *testing.T) {
	runIntegration(t, pgtest.Schema(t))
}

// postReport asks the API for a new report of the host.
func postReport(t *testing.T, mux http.Handler, hostID string) *report.Report {
	t.Helper()
	w := do(t, mux, "POST", "/hvs/v2/reports", `{"host_id":"`+hostID+`"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create report = %d %s", w.Code, w.Body)
	}
	r := decode[report.Report](t, w)
	return &r
}

// realNode is an edge node: swtpm through a measured boot, its file system
// root, and the real trust agent serving on the bus.
type realNode struct {
	measuredBoot
	id     string
	sw     *tpmtest.Swtpm
	bus    *agentclienttest.Bus
	dir    string
	uuid   string
	tpm    *agent.NodeTPM
	stop   func()
	client *agentclient.Client
	// life is the test the node lives as long as (its bus connection is
	// closed when it ends).
	life testing.TB
}

func startRealNode(t testing.TB, b *agentclienttest.Bus, id, uuid string, sw *tpmtest.Swtpm) *realNode {
	t.Helper()
	n := &realNode{id: id, sw: sw, bus: b, dir: t.TempDir(), uuid: uuid, client: agentclient.New(b.ServiceConn(t), 5*time.Second), life: t}
	n.boot(t)
	t.Cleanup(func() { n.stop() })
	return n
}

// boot opens the TPM, replays the firmware log, measures the boot files
// and runs the agent.
func (n *realNode) boot(t testing.TB) {
	t.Helper()
	raw, err := tpm.Open(n.sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	nt, err := agent.NewNodeTPM(raw, tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.measuredBoot = bootMeasured(t, nt, n.dir, n.uuid, n.id, sandbox.BootLogSecureBootOn)
	a, err := agent.New(agent.Config{HostID: n.id, IMAPollInterval: 50 * time.Millisecond, IMADebounce: 50 * time.Millisecond},
		nt, measure.New(n.root.Dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	n.tpm = nt
	nc := n.bus.AgentConn(n.life, n.id)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, natsbus.Adapt(nc)) }()
	n.stop = func() {
		cancel()
		if err := <-done; err != nil {
			n.life.Errorf("agent %s: %v", n.id, err)
		}
		nc.Close()
		_ = raw.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := n.client.Version(context.Background(), n.id)
		if err == nil {
			return
		}
		if !errors.Is(err, agentclient.ErrNoResponders) || time.Now().After(deadline) {
			t.Fatalf("agent %s does not answer: %v", n.id, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shutdown sends TPM2_Shutdown(SU_CLEAR) as an orderly OS shutdown does,
// so that swtpm's restart is a clean TPM Reset (no dictionary-attack
// penalty for an unorderly shutdown).
func (n *realNode) shutdown(t testing.TB) {
	t.Helper()
	conn, err := net.Dial("unix", n.sw.ServerSock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0} // TPM_ST_NO_SESSIONS, TPM_CC_Shutdown, TPM_SU_CLEAR
	if _, err := conn.Write(cmd); err != nil {
		t.Fatal(err)
	}
	rsp := make([]byte, 10)
	if _, err := io.ReadFull(conn, rsp); err != nil {
		t.Fatal(err)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		t.Fatalf("TPM2_Shutdown: rc %#x", rc)
	}
}

// reboot restarts swtpm (a TPM reset) and boots again.
func (n *realNode) reboot(t testing.TB) {
	t.Helper()
	n.stop()
	n.shutdown(t)
	n.sw.Restart()
	n.boot(t)
}

// tamperingAgent passes quotes through the real agent client and lets the
// test change the answers, as a compromised node or network could.
type tamperingAgent struct {
	inner  Agent
	mu     sync.Mutex
	tamper func(resp *evidence.QuoteResponse)
	last   *evidence.QuoteResponse
}

func (a *tamperingAgent) Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	resp, err := a.inner.Quote(ctx, hostID, req)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tamper != nil {
		a.tamper(resp)
	} else {
		saved := *resp
		a.last = &saved
	}
	return resp, nil
}

func (a *tamperingAgent) set(f func(resp *evidence.QuoteResponse)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tamper = f
}

// reportWatcher collects the JWS published on trust-reports.>.
type reportWatcher struct {
	mu   sync.Mutex
	jws  map[string][]string
	cond chan struct{}
}

func watchReports(t *testing.T, b *agentclienttest.Bus) *reportWatcher {
	t.Helper()
	creds, err := b.Authority.ManagerCredentials("manager", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := busserver.ConnectInProcess(b.Server, creds, "manager", discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := &reportWatcher{jws: map[string][]string{}, cond: make(chan struct{}, 1)}
	if _, err := nc.Subscribe(bus.AllReports, func(m *nats.Msg) {
		host, err := bus.ParseReportSubject(m.Subject)
		if err != nil {
			return
		}
		w.mu.Lock()
		w.jws[host] = append(w.jws[host], string(m.Data))
		w.mu.Unlock()
		select {
		case w.cond <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor waits until the report with the id was published for the host.
func (w *reportWatcher) waitFor(t *testing.T, hostID, id string, roots *x509.CertPool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		msgs := slices.Clone(w.jws[hostID])
		w.mu.Unlock()
		for _, jws := range msgs {
			r, err := report.Verify(jws, roots, time.Now())
			if err != nil {
				t.Fatalf("a published report does not verify: %v", err)
			}
			if r.ID == id {
				return
			}
		}
		select {
		case <-w.cond:
		case <-deadline:
			t.Fatalf("report %s of %s was not published on trust-reports.%s", id, hostID, hostID)
		}
	}
}

// newRealDeps opens the store at dsn and makes HVS's real dependencies on
// it: CMS, an agent client on the bus's service connection and an enroller
// that trusts swtpm's local EK CA.
func newRealDeps(t testing.TB, b *agentclienttest.Bus, dsn string) realDeps {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ca, err := cms.New(ctx, cms.Config{NotFound: store.ErrNotFound, Conflict: store.ErrConflict}, st, discard)
	if err != nil {
		t.Fatal(err)
	}
	nc := b.ServiceConn(t)
	client := agentclient.New(nc, 10*time.Second)
	tpmtest.EnsureLocalCA(t)
	localCA, err := os.ReadFile(tpmtest.LocalCACert)
	if err != nil {
		t.Fatal(err)
	}
	ekRoots := x509.NewCertPool()
	ekRoots.AppendCertsFromPEM(localCA)
	enroller, err := enroll.New(ctx, enroll.Config{EKRoots: ekRoots}, st, client, discard)
	if err != nil {
		t.Fatal(err)
	}
	return realDeps{st: st, ca: ca, nc: nc, client: client, enroller: enroller}
}

// realDeps are HVS's real dependencies on one store.
type realDeps struct {
	st       *store.Store
	ca       *cms.CA
	nc       *nats.Conn
	client   *agentclient.Client
	enroller *enroll.Enroller
}

func runIntegration(t *testing.T, dsn string) {
	tpmtest.Require(t, "swtpm")
	ctx := context.Background()
	b := agentclienttest.NewBus(t)
	d := newRealDeps(t, b, dsn)
	st, ca := d.st, d.ca
	agentc := &tamperingAgent{inner: d.client}
	svc, err := New(ctx, Config{}, Deps{Store: st, Agent: agentc, Enroller: d.enroller, CA: ca, NATS: d.nc}, discard)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	watcher := watchReports(t, b)
	mux := newMux(svc)
	roots := ca.RootPool()

	n := startRealNode(t, b, "edge-1", "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a00", tpmtest.NewWithEKCert(t))
	w := do(t, mux, "POST", "/hvs/v2/hosts", `{"host_name":"edge-1","connection_string":"intel:nats://edge-1","flavorgroup_names":["automatic"]}`)
	if h := decode[restapi.Host](t, w); w.Code != http.StatusCreated || h.Status != report.StatusConnected {
		t.Fatalf("register host = %d %s", w.Code, w.Body)
	}
	// swtpm_setup allocates only SHA-256: the quote HVS asks for in SHA-384
	// and SHA-256 covers SHA-256 alone, which is no fault (the reports
	// below are trusted) because enrollment recorded that the TPM lacks
	// SHA-384.
	if _, banks, err := d.enroller.VerifyAK(ctx, "edge-1"); err != nil {
		t.Fatalf("the host's AK is not enrolled after registration: %v", err)
	} else if !slices.Equal(banks, []string{evidence.BankSHA256}) {
		t.Errorf("enrolled PCR banks %v, want swtpm_setup's [SHA256]", banks)
	}
	w = do(t, mux, "POST", "/hvs/v2/flavors", `{"connection_string":"nats://edge-1","partial_flavor_types":["PLATFORM","OS","IMA"],"flavorgroup_names":["automatic"]}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("baseline flavors = %d %s", w.Code, w.Body)
	}
	for _, sf := range decode[flavor.SignedFlavorCollection](t, w).SignedFlavors {
		if err := flavor.Verify(sf, roots, time.Now()); err != nil {
			t.Fatalf("a baseline flavor does not verify under the CMS root: %v", err)
		}
	}

	attest := func(t *testing.T) *report.Report {
		t.Helper()
		return postReport(t, mux, "edge-1")
	}
	first := attest(t)
	wantTrusted(t, first)
	watcher.waitFor(t, "edge-1", first.ID, roots)

	rebootTrusted := func(t *testing.T) {
		t.Helper()
		before := first.ResetCount
		n.reboot(t)
		r := attest(t)
		wantTrusted(t, r)
		if r.ResetCount <= before {
			t.Errorf("reset count %d after a reboot, want more than %d", r.ResetCount, before)
		}
	}

	tests := []struct {
		name   string
		tamper func(t *testing.T)
		undo   func(t *testing.T)
		parts  []string
		faults []string
	}{
		{"an extended PCR 0 fails PLATFORM", func(t *testing.T) { n.extend(t, 0) }, rebootTrusted,
			[]string{"PLATFORM"}, []string{"PLATFORM:" + flavor.FaultPcrValueMismatch, appraise.FaultEventLogReplay}},
		{"an extended PCR 8 fails OS", func(t *testing.T) { n.extend(t, 8) }, rebootTrusted,
			[]string{"OS"}, []string{"OS:" + flavor.FaultPcrValueMismatch}},
		{"a new file in the IMA log fails IMA", func(t *testing.T) { n.measureFile(t, "/usr/bin/evil", "x") }, rebootTrusted,
			[]string{"IMA"}, []string{"IMA:" + flavor.FaultImaContainsUnexpectedEntries}},
		{"a changed measured file fails IMA", func(t *testing.T) { n.measureFile(t, "/usr/bin/kata-runtime", "patched") }, rebootTrusted,
			[]string{"IMA"}, []string{"IMA:" + flavor.FaultImaMeasurementMismatch}},
		{"another node's event log fails the replay", func(t *testing.T) {
			agentc.set(func(r *evidence.QuoteResponse) { r.EventLog = sandbox.BootLogSecureBootOff })
		}, func(t *testing.T) { agentc.set(nil) }, nil, []string{appraise.FaultEventLogReplay}},
		{"a replayed old quote fails the nonce", func(t *testing.T) {
			agentc.mu.Lock()
			old := agentc.last
			agentc.mu.Unlock()
			agentc.set(func(r *evidence.QuoteResponse) { *r = *old })
		}, func(t *testing.T) { agentc.set(nil) }, nil, []string{appraise.FaultQuoteNonce}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tamper(t)
			r := attest(t)
			wantUntrusted(t, r, tt.parts, tt.faults...)
			if strings.Contains(tt.name, "new file") {
				if f := findFault(r, flavor.FaultImaContainsUnexpectedEntries); f == nil || !slices.Contains(f.UnexpectedEntries, "/usr/bin/evil") {
					t.Errorf("the IMA fault does not name the file: %+v", f)
				}
			}
			watcher.waitFor(t, "edge-1", r.ID, roots)
			tt.undo(t)
			wantTrusted(t, attest(t))
		})
	}

	t.Run("a reboot is detected from the quote and recorded with the host", func(t *testing.T) {
		before := attest(t)
		n.reboot(t)
		r := attest(t)
		wantTrusted(t, r)
		// The agent's boot event may have made a report first: one report
		// after the reboot says so.
		since, err := st.ListReports(ctx, store.ReportFilter{HostID: "edge-1", From: before.Created.Add(time.Microsecond)})
		if err != nil {
			t.Fatal(err)
		}
		rebooted := 0
		for _, rec := range since {
			var got report.Report
			if err := json.Unmarshal(rec.JSON, &got); err != nil {
				t.Fatal(err)
			}
			if got.Rebooted {
				rebooted++
				if got.ResetCount != before.ResetCount+1 {
					t.Errorf("reset count %d after the reboot, want %d", got.ResetCount, before.ResetCount+1)
				}
			}
		}
		if rebooted != 1 {
			t.Errorf("%d of %d reports since the reboot say rebooted, want 1", rebooted, len(since))
		}
		h := decode[restapi.Host](t, do(t, mux, "GET", "/hvs/v2/hosts/edge-1", ""))
		if h.ResetCount == nil || *h.ResetCount != r.ResetCount || h.RebootedAt == nil {
			t.Errorf("host after the reboot: %+v", h)
		}
	})

	t.Run("the agent's boot event makes a report by itself", func(t *testing.T) {
		rs, _ := st.ListReports(ctx, store.ReportFilter{HostID: "edge-1", Limit: 1})
		n.reboot(t) // the new agent publishes a boot event
		deadline := time.Now().Add(15 * time.Second)
		for {
			latest, err := st.ListReports(ctx, store.ReportFilter{HostID: "edge-1", Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(latest) == 1 && latest[0].ID != rs[0].ID {
				var r report.Report
				if err := json.Unmarshal(latest[0].JSON, &r); err != nil {
					t.Fatal(err)
				}
				if !r.Rebooted || !r.Trusted() {
					t.Errorf("the event's report: rebooted %v trusted %v (%v)", r.Rebooted, r.Trusted(), faultsOf(&r))
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no report was made on the boot event")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("a host whose AK is not enrolled gets AikCertificateTrusted", func(t *testing.T) {
		startRealNode(t, b, "edge-2", "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a02", tpmtest.New(t)) // no EK certificate
		w := do(t, mux, "POST", "/hvs/v2/hosts", `{"host_name":"edge-2","connection_string":"nats://edge-2"}`)
		h := decode[restapi.Host](t, w)
		if w.Code != http.StatusCreated || h.Status != report.StatusAIKNotProvisioned || h.EnrollmentError == "" {
			t.Fatalf("register a host without an EK certificate = %d %+v", w.Code, h)
		}
		w = do(t, mux, "POST", "/hvs/v2/reports", `{"host_name":"edge-2"}`)
		r := decode[report.Report](t, w)
		wantUntrusted(t, &r, nil, FaultAikCertificateTrusted)
		if r.HostStatus != report.StatusAIKNotProvisioned {
			t.Errorf("status %s, want %s", r.HostStatus, report.StatusAIKNotProvisioned)
		}
	})

	t.Run("a host whose agent is gone gets an untrusted report", func(t *testing.T) {
		n.stop()
		n.stop = func() {}
		r := attest(t)
		wantUntrusted(t, r, nil, FaultAgentUnreachable)
		if r.HostStatus != report.StatusConnectionFailure {
			t.Errorf("status %s, want %s", r.HostStatus, report.StatusConnectionFailure)
		}
		st := decode[struct {
			HostStatus []restapi.HostStatus `json:"host_status"`
		}](t, do(t, mux, "GET", "/hvs/v2/host-status?hostId=edge-1", "")).HostStatus
		if len(st) != 1 || st[0].Status != report.StatusConnectionFailure {
			t.Errorf("host status %+v", st)
		}
	})
}
