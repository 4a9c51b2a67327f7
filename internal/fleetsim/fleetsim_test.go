package fleetsim_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// fleetNodes is the size of the fleet the test runs: enough that nodes
// start in parallel and share the verifier, small enough for `make test`.
const fleetNodes = 50

// TestASimulatedFleetEnrollsIsVerifiedAndATamperIsCaught runs a whole
// verifier in process, trusting the simulator's EK CA only, and a fleet of
// simulated nodes against it: every node's AK is enrolled by credential
// activation (which needs the EK certificate to chain and the soft TPM to
// recover the secret), every node gets a trusted report, a node whose IMA
// log grew with known files stays trusted, a rebooted node is trusted and
// reported rebooted, and a node that measures a file
// outside its golden flavors is reported untrusted on its own IMA event,
// with no report asked for.
func TestASimulatedFleetEnrollsIsVerifiedAndATamperIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole verifier and a fleet")
	}
	ca, err := softtpm.NewEKCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	vt := verifiertest.Start(t, t.TempDir(), func(c *verifier.Config) {
		c.Enrollment = enroll.Config{EKRoots: ca.Pool()}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	api := fleetsim.NewAPI(vt.Base, vt.Roots, "admin", verifiertest.AdminPassword, 8)
	defer api.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := fleetsim.New(ctx, fleetsim.Options{
		API: api, NATSURL: vt.NATSURL(), Roots: vt.Roots, EKCA: ca,
		Agent:  agent.Config{IMAPollInterval: 100 * time.Millisecond, IMADebounce: 50 * time.Millisecond},
		Logger: logger, AgentLogger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	start := time.Now()
	if err := f.AddNodes(ctx, fleetNodes); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes enrolled, registered and baselined in %s", fleetNodes, time.Since(start).Round(time.Millisecond))
	nodes := f.Nodes()
	if len(nodes) != fleetNodes {
		t.Fatalf("the fleet has %d nodes, want %d", len(nodes), fleetNodes)
	}

	reports := watch(t, ctx, api, vt.NATSURL(), vt.Roots)

	// Every node is trusted; the first one after its IMA log grew.
	if err := nodes[0].Remeasure(3); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		r, err := api.CreateReport(ctx, n.HostID)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Trusted() {
			t.Fatalf("report of %s: host status %s, overall %v, faults %v; want trusted", n.HostID, r.HostStatus, r.Trust.Overall, r.Faults)
		}
	}

	// A reboot: the TPM resets and the node boots the same image again.
	if err := nodes[1].Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := api.CreateReport(ctx, nodes[1].HostID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Trusted() || r.ResetCount != 2 {
		t.Fatalf("report of %s after a reboot: trusted %v, reset count %d; want trusted, 2", nodes[1].HostID, r.Trusted(), r.ResetCount)
	}
	if !r.Rebooted { // the agent's boot event had the verifier attest the node first
		reports.waitFor(t, ctx, "a rebooted report of "+nodes[1].HostID, func(r *fleetsim.Report) bool {
			return r.HostID == nodes[1].HostID && r.Rebooted && r.ResetCount == 2 && r.Trusted()
		})
	}

	// A tamper: a file no flavor lists. The agent sees its IMA log grow,
	// publishes an IMA event, the verifier attests the node at once.
	target := nodes[fleetNodes/2]
	tampered := time.Now()
	if err := target.Measure("/usr/bin/evil", "a file that is in no golden flavor"); err != nil {
		t.Fatal(err)
	}
	r = reports.waitFor(t, ctx, "an untrusted report of "+target.HostID, func(r *fleetsim.Report) bool {
		return r.HostID == target.HostID && !r.Trusted()
	})
	t.Logf("tamper of %s reported untrusted after %s (faults %v)", target.HostID, time.Since(tampered).Round(time.Millisecond), r.Faults)
	for _, n := range nodes {
		if n != target && reports.untrusted(n.HostID) {
			t.Errorf("bystander %s was reported untrusted", n.HostID)
		}
	}
}

// reportLog records the reports published on the bus.
type reportLog struct {
	mu      sync.Mutex
	reports []*fleetsim.Report
	changed chan struct{}
}

func watch(t *testing.T, ctx context.Context, api *fleetsim.API, natsURL string, roots *x509.CertPool) *reportLog {
	t.Helper()
	creds, err := api.Credentials(ctx, restapi.CredentialsManager, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsbus.Connect(ctx, natsURL, creds, roots, "fleetsim-test-manager", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	l := &reportLog{changed: make(chan struct{}, 1)}
	if _, err := fleetsim.WatchReports(nc, func(r *fleetsim.Report, _ time.Time) {
		l.mu.Lock()
		l.reports = append(l.reports, r)
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *reportLog) untrusted(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.reports, func(r *fleetsim.Report) bool { return r.HostID == host && !r.Trusted() })
}

func (l *reportLog) waitFor(t *testing.T, ctx context.Context, what string, match func(*fleetsim.Report) bool) *fleetsim.Report {
	t.Helper()
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.reports, match)
		var r *fleetsim.Report
		if i >= 0 {
			r = l.reports[i]
		}
		l.mu.Unlock()
		if r != nil {
			return r
		}
		select {
		case <-l.changed:
		case <-ctx.Done():
			t.Fatalf("%s was never published: %v", what, ctx.Err())
		}
	}
}
