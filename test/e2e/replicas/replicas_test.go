// Package replicas_test runs verifier replicas past one machine (issue 14):
// three verifiers in one process on one PostgreSQL, their embedded NATS
// servers joined into one cluster, and a simulated fleet whose agents are
// given every replica's URL. One replica is stopped in the middle of the
// run; every node must still be attested within one interval, by exactly
// one replica each time, and a tamper made during the failover must be
// caught. The figures are printed.
//
// TestAFleetStaysAttestedWhenAVerifierReplicaStops has no manager: the
// verifiers' own schedule (claims in the database) attests the fleet.
// TestTheFleetStaysAttestedWhenAVerifierReplicaAndTheLeaderManagerStop
// (failover_test.go) adds two attestation managers with leader election on
// a real kube-apiserver and stops the leader too.
package replicas_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/pgtest"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

const (
	replicas   = 3
	fleetNodes = 50
	// interval is how long a report holds; each replica refreshes the
	// hosts whose report expires within margin, checking every tick, and
	// holds a claim for margin/2.
	interval = 30 * time.Second
	margin   = 12 * time.Second
	tick     = time.Second
)

// arrivals records when each host's reports arrived on the bus, and when
// the verifier started them.
type arrivals struct {
	mu        sync.Mutex
	at        map[string][]time.Time
	created   map[string][]time.Time
	untrusted map[string][]time.Time
	causes    []string // of the untrusted reports: host, status, faults
}

func (a *arrivals) add(r *fleetsim.Report, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at[r.HostID] = append(a.at[r.HostID], at)
	a.created[r.HostID] = append(a.created[r.HostID], r.Created)
	if !r.Trusted() {
		a.causes = append(a.causes, fmt.Sprintf("%s at %s: %s %+v overall %v", r.HostID, at.Format("15:04:05.000"), r.HostStatus, r.Faults, r.Trust.Overall))
		a.untrusted[r.HostID] = append(a.untrusted[r.HostID], at)
	}
}

// untrustedAfter is when the first untrusted report of host after t came.
func (a *arrivals) untrustedAfter(host string, t time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, at := range a.untrusted[host] {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// since counts, per host, the reports started after t. A report started
// before t and published after it holds evidence from before t: the host's
// last success stays before t too.
func (a *arrivals) since(t time.Time) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for h, ts := range a.created {
		for _, at := range ts {
			if at.After(t) {
				out[h]++
			}
		}
	}
	return out
}

// duplicates names, over the hosts but skip, the pairs of consecutive
// reports of one host closer than gap: a host attested twice in one round.
func (a *arrivals) duplicates(gap time.Duration, skip string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for h, ts := range a.at {
		if h == skip {
			continue
		}
		s := slices.Clone(ts)
		slices.SortFunc(s, func(x, y time.Time) int { return x.Compare(y) })
		for i := 1; i < len(s); i++ {
			if s[i].Sub(s[i-1]) < gap {
				out = append(out, fmt.Sprintf("%s at %s and %s", h, s[i-1].Format("15:04:05.000"), s[i].Format("15:04:05.000")))
			}
		}
	}
	return out
}

// site is the verifiers' side of a test: replicas on one PostgreSQL
// schema, their embedded servers in one NATS cluster, and a simulated fleet
// whose agents are given every replica's URL.
type site struct {
	vs       []*verifiertest.Verifier
	natsURLs string
	last     *verifiertest.Verifier // the operator's API; it keeps running
	api      *fleetsim.API
	fleet    *fleetsim.Fleet
	logger   *slog.Logger
	enrolled time.Duration // to enroll, register and baseline the fleet
}

// startSite starts the replicas, with hvsConfig's settings for each, and
// the fleet of fleetNodes nodes.
func startSite(t *testing.T, ctx context.Context, hvsConfig func(replica string) hvs.Config) *site {
	t.Helper()
	dsn := pgtest.Schema(t)
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ca, err := softtpm.NewEKCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &site{logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	var routes, urls []string
	for i := range replicas {
		v := verifiertest.Start(t, t.TempDir(), func(c *verifier.Config) {
			c.Database = dsn
			c.KeyEncryption = verifier.KeyEncryptionConfig{Key: base64.StdEncoding.EncodeToString(kek)}
			c.Enrollment = enroll.Config{EKRoots: ca.Pool()}
			c.NATS.ServerName = fmt.Sprintf("verifier-%d", i+1)
			c.NATS.Cluster = verifier.NATSClusterConfig{Name: "tc-replicas", Host: "127.0.0.1", Routes: routes}
			c.HVS = hvsConfig(fmt.Sprintf("replica-%d", i+1))
		})
		s.vs = append(s.vs, v)
		routes = append(routes, v.NATSClusterURL())
		urls = append(urls, v.NATSURL())
	}
	s.natsURLs = strings.Join(urls, ",")
	s.last = s.vs[replicas-1]
	s.api = fleetsim.NewAPI(s.last.Base, s.last.Roots, "admin", verifiertest.AdminPassword, 8)
	t.Cleanup(s.api.Close)
	s.fleet, err = fleetsim.New(ctx, fleetsim.Options{
		API: s.api, NATSURL: s.natsURLs, Roots: s.last.Roots, EKCA: ca,
		Agent:  agent.Config{IMAPollInterval: 200 * time.Millisecond, IMADebounce: 50 * time.Millisecond},
		Logger: s.logger, AgentLogger: s.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.fleet.Stop)
	start := time.Now()
	if err := s.fleet.AddNodes(ctx, fleetNodes); err != nil {
		t.Fatal(err)
	}
	s.enrolled = time.Since(start)
	return s
}

// watch hears every report on the bus, as a manager does, and calls also
// with each.
func (s *site) watch(t *testing.T, ctx context.Context, also func(hostID string)) *arrivals {
	t.Helper()
	creds, err := s.api.Credentials(ctx, restapi.CredentialsManager, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsbus.Connect(ctx, s.natsURLs, creds, s.last.Roots, "replicas-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	seen := &arrivals{at: map[string][]time.Time{}, created: map[string][]time.Time{}, untrusted: map[string][]time.Time{}}
	if _, err := fleetsim.WatchReports(nc, func(r *fleetsim.Report, at time.Time) {
		seen.add(r, at)
		if also != nil {
			also(r.HostID)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return seen
}

func TestAFleetStaysAttestedWhenAVerifierReplicaStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three verifiers and a fleet")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	s := startSite(t, ctx, func(replica string) hvs.Config {
		return hvs.Config{ReportValidity: interval, RefreshMargin: margin, RefreshInterval: tick, Interval: interval, Replica: replica}
	})
	vs, f, api, enrolled := s.vs, s.fleet, s.api, s.enrolled
	start := time.Now().Add(-enrolled)
	seen := s.watch(t, ctx, nil)

	// Steady state: the replicas' schedule attests every node.
	waitAll(t, ctx, seen, start, f.Nodes(), interval+margin)

	// Replica 1 stops: its bus connections drop, its claims lapse.
	killed := time.Now()
	vs[0].Stop()
	target := f.Nodes()[fleetNodes/2]
	if err := target.Measure("/usr/bin/evil", "a file that is in no golden flavor"); err != nil {
		t.Fatal(err)
	}
	// Within one interval every node has a new report, and the tampered
	// one an untrusted one.
	waitAll(t, ctx, seen, killed, f.Nodes(), interval)
	attested := time.Since(killed)
	caught, ok := seen.untrustedAfter(target.HostID, killed)
	if !ok {
		t.Errorf("the tamper of %s during the failover was not reported", target.HostID)
	}
	for _, n := range f.Nodes() {
		if n == target {
			continue
		}
		// Since the stop: a host's report made between its registration
		// and its first flavors, before, is no failover's doing.
		if _, bad := seen.untrustedAfter(n.HostID, killed); bad {
			seen.mu.Lock()
			t.Errorf("bystander %s was reported untrusted: %v", n.HostID, seen.causes)
			seen.mu.Unlock()
		}
	}
	dups := seen.duplicates((interval-margin)/2, target.HostID)
	if len(dups) > 0 {
		t.Errorf("%d reports made twice in one round (two replicas attested one host; replica 1 stopped at %s): %v",
			len(dups), killed.Format("15:04:05.000"), dups)
	}
	var hosts restapi.HostList
	if err := api.JSON(ctx, http.MethodGet, "/hvs/v2/hosts", nil, &hosts); err != nil {
		t.Fatal(err)
	}
	var overdue []string
	for _, h := range hosts.Hosts {
		if h.Overdue || h.LastSuccess == nil || h.LastSuccess.Before(killed) {
			overdue = append(overdue, fmt.Sprintf("%s (overdue %v, last success %v, last attempt %v)", h.ID, h.Overdue, h.LastSuccess, h.LastAttempt))
		}
	}
	if len(overdue) > 0 {
		t.Errorf("%d hosts without a success since the replica stopped (%s), or overdue: %v", len(overdue), killed.Format("15:04:05.000"), overdue)
	}
	t.Logf("figures: %d replicas, %d nodes on PostgreSQL and a %d-server NATS cluster; enrolled in %s; "+
		"after replica 1 stopped every node was attested again within %s (interval %s); tamper caught after %s; "+
		"%d duplicate reports; %d hosts overdue",
		replicas, fleetNodes, replicas, enrolled.Round(time.Millisecond), attested.Round(time.Millisecond), interval,
		caught.Sub(killed).Round(time.Millisecond), len(dups), len(overdue))
}

// waitAll waits until every node has a report that arrived after since, for
// at most within.
func waitAll(t *testing.T, ctx context.Context, seen *arrivals, since time.Time, nodes []*fleetsim.Node, within time.Duration) {
	t.Helper()
	deadline := since.Add(within)
	for {
		got := seen.since(since)
		var missing []string
		for _, n := range nodes {
			if got[n.HostID] == 0 {
				missing = append(missing, n.HostID)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%d nodes not attested within %s of %s: %v", len(missing), within, since.Format(time.TimeOnly), missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
