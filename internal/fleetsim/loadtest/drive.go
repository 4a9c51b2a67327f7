package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/verifier/report"
)

// scheduledResult is one fleet size driven at the manager's rate.
type scheduledResult struct {
	Backend string  `json:"backend"`
	Nodes   int     `json:"nodes"`
	Target  float64 `json:"target_reports_per_s"`
	// Achieved is the scheduled reports completed per second of the window.
	Achieved float64 `json:"achieved_reports_per_s"`
	Reports  int     `json:"reports"`
	Errors   int     `json:"errors"`
	// Untrusted counts reports of untampered nodes that were not trusted,
	// and UntrustedCauses counts their host statuses, faults and failed parts.
	Untrusted       int            `json:"untrusted"`
	UntrustedCauses map[string]int `json:"untrusted_causes,omitempty"`
	// EventReports are the reports published on the bus beyond the
	// scheduled ones: those HVS queues itself, on the agents' IMA events
	// (and on registrations still queued from the fleet's growth).
	EventReports int     `json:"event_reports"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	// Tamper: from the file measured to the untrusted report on the bus.
	Tampers      int     `json:"tampers"`
	TampersFound int     `json:"tampers_found"`
	TamperP50    float64 `json:"tamper_p50_ms"`
	TamperMax    float64 `json:"tamper_max_ms"`
	VerifierCPU  float64 `json:"verifier_cpu_cores"`
	// VerifierCPUPerReport is the verifier's CPU time per report made in
	// the window, event reports included: a figure the other work on a
	// shared machine does not inflate as it does latencies.
	VerifierCPUPerReport float64 `json:"verifier_cpu_ms_per_report"`
	// FloorMicros is the crypto floor (one ECDSA P-256 verify and one
	// sign, benchfloor.MeasureThreadCPU) in thread CPU time, measured in
	// tc-loadtest's process before the window on the same machine; 0 in
	// results of runs before it was measured.
	FloorMicros  float64 `json:"floor_cpu_us,omitempty"`
	VerifierRSS  float64 `json:"verifier_rss_mib"`
	VerifierPeak float64 `json:"verifier_peak_rss_mib"`
	FleetCPU     float64 `json:"fleet_cpu_cores"`
	FleetRSS     float64 `json:"fleet_rss_mib"`
	// FleetCollections counts the collections of tc-loadtest's own
	// heap, the simulated fleet's, during the window (quietCollector):
	// 0 unless the window allocated more than its budget; nil in results
	// of runs before 2026-12-06, whose windows did not keep it out.
	FleetCollections *uint64 `json:"fleet_collections,omitempty"`
	// MachineCPU is the whole machine's, other users' work included.
	MachineCPU float64 `json:"machine_cpu_cores"`
	EnrollSecs float64 `json:"enroll_s"`
	// EnrollVerifierCPU and EnrollFleetCPU are the verifier's and the
	// fleet's CPU time per node enrolled in this step, in milliseconds.
	EnrollVerifierCPU float64 `json:"enroll_verifier_cpu_ms_per_node,omitempty"`
	EnrollFleetCPU    float64 `json:"enroll_fleet_cpu_ms_per_node,omitempty"`
	// FirstReports is how long the first report of every node added in
	// this step took, back to back before the window (the manager attests
	// a node once it is onboarded), and FirstReportCPU the verifier's CPU
	// time a first report: it verifies the node's new flavors, which
	// later reports find verified in the flavor cache.
	FirstReportsSecs float64 `json:"first_reports_s,omitempty"`
	FirstReportCPU   float64 `json:"first_report_verifier_cpu_ms,omitempty"`
	// EnrollRetries are the enrollment steps the verifier refused for a
	// while (503, or 500 from a store timeout) and the fleet retried.
	EnrollRetries int64 `json:"enroll_retries,omitempty"`
	// samples are the window's reports, in the order they completed
	// (Config.LatenciesPath); not in the JSON.
	samples []reportSample
}

// maxResult is the fleet driven as fast as the verifier answers.
type maxResult struct {
	Backend     string  `json:"backend"`
	Nodes       int     `json:"nodes"`
	Concurrency int     `json:"concurrency"`
	Throughput  float64 `json:"reports_per_s"`
	Errors      int     `json:"errors"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	VerifierCPU float64 `json:"verifier_cpu_cores"`
	// VerifierCPUPerReport is the verifier's CPU time per report, and
	// Projected the rate two cores of it would make: the capacity of a
	// machine that runs the verifier only.
	VerifierCPUPerReport float64 `json:"verifier_cpu_ms_per_report"`
	Projected            float64 `json:"projected_reports_per_s_on_2_cores"`
	FloorMicros          float64 `json:"floor_cpu_us,omitempty"` // as in scheduledResult
	FleetCPU             float64 `json:"fleet_cpu_cores"`
	FleetCollections     *uint64 `json:"fleet_collections,omitempty"` // as in scheduledResult
	MachineCPU           float64 `json:"machine_cpu_cores"`
}

// count is a count for a table: "-" where the run did not count.
func count(n *uint64) string {
	if n == nil {
		return "-"
	}
	return strconv.FormatUint(*n, 10)
}

// xFloor is a CPU time in milliseconds as a multiple of a floor in
// microseconds, for a table: "-" without a floor.
func xFloor(ms, floorMicros float64) string {
	if floorMicros <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", ms*1000/floorMicros)
}

// reporter asks the verifier for a report as the attestation manager does;
// *hvsclient.Client (the manager's own client) is one.
type reporter interface {
	CreateReport(ctx context.Context, hostID string) (*report.Report, error)
}

// driver drives one fleet against one verifier.
type driver struct {
	api      *fleetsim.API // the operator's, for rebaselines
	manager  reporter
	fleet    *fleetsim.Fleet
	verifier int // pid
	logger   *slog.Logger

	mu        sync.Mutex
	busSeen   int                  // reports published on the bus
	busLast   time.Time            // when the last one arrived
	tampered  map[string]time.Time // host → when its tamper was measured
	caught    map[string]time.Duration
	caughtSig chan struct{}
}

// onReport is the bus watcher's callback.
func (d *driver) onReport(r *fleetsim.Report, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busSeen++
	d.busLast = at
	if t, ok := d.tampered[r.HostID]; ok && !r.Trusted() {
		if _, done := d.caught[r.HostID]; !done {
			d.caught[r.HostID] = at.Sub(t)
			select {
			case d.caughtSig <- struct{}{}:
			default:
			}
		}
	}
}

// scheduled drives every node once per interval, each at its own random
// phase, for window, as the attestation manager schedules them: the
// latency of a report counts from its scheduled time, so a verifier that
// falls behind is seen. Each node's IMA log grows once per imaGrowth on
// average (a re-measured known file, which raises an IMA event); tampers
// nodes measure a file outside their flavors, spread over the window.
// quiet ends the quietCollector the caller started before the window.
func (d *driver) scheduled(ctx context.Context, interval, window, imaGrowth time.Duration, tampers, maxInFlight int, quiet func() uint64) scheduledResult {
	nodes := d.fleet.Nodes()
	type shot struct {
		at   time.Duration
		node *fleetsim.Node
	}
	var plan []shot
	for _, n := range nodes {
		for at := rand.N(interval); at < window; at += interval { //nolint:gosec // G404: load spreading, not secrecy
			plan = append(plan, shot{at, n})
		}
	}
	slices.SortFunc(plan, func(a, b shot) int { return int(a.at - b.at) })
	tamperAt := map[int]*fleetsim.Node{}
	for k := range tampers {
		i := (k + 1) * len(plan) / (tampers + 1)
		if i < len(plan) {
			tamperAt[i] = nodes[rand.N(len(nodes))] //nolint:gosec // G404: any node will do
		}
	}
	growP := 0.0
	if imaGrowth > 0 {
		growP = float64(interval) / float64(imaGrowth)
	}

	d.mu.Lock()
	d.tampered, d.caught, d.caughtSig = map[string]time.Time{}, map[string]time.Duration{}, make(chan struct{}, 1)
	busBefore := d.busSeen
	d.mu.Unlock()

	var (
		mu        sync.Mutex
		lat       latencies
		samples   = make([]reportSample, 0, len(plan))
		errs      int
		untrusted int
		causes    = map[string]int{}
		wg        sync.WaitGroup
		sem       = make(chan struct{}, maxInFlight)
		completed atomic.Int64
	)
	s0 := d.sample()
	start := time.Now()
	for i, s := range plan {
		if wait := time.Until(start.Add(s.at)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		if n, ok := tamperAt[i]; ok {
			d.mu.Lock()
			_, already := d.tampered[n.HostID]
			if !already {
				d.tampered[n.HostID] = time.Now()
			}
			d.mu.Unlock()
			if !already {
				if err := n.Measure("/usr/bin/evil", fmt.Sprint("a file in no golden flavor, ", n.HostID)); err != nil {
					d.logger.Warn("tamper", keyHost, n.HostID, keyError, err.Error())
				}
			}
		}
		if growP > 0 && rand.Float64() < growP { //nolint:gosec // G404: load spreading
			_ = s.node.Remeasure(rand.N(1 << 16)) //nolint:gosec // G404: any known file
		}
		scheduledAt := start.Add(s.at)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := d.manager.CreateReport(ctx, s.node.HostID)
			took := time.Since(scheduledAt)
			completed.Add(1)
			mu.Lock()
			defer mu.Unlock()
			samples = append(samples, reportSample{Host: s.node.HostID, Scheduled: scheduledAt, Took: took, Failed: err != nil})
			if err != nil {
				errs++
				return
			}
			lat = append(lat, took)
			if !r.Trusted() && !d.isTampered(r.HostID) {
				untrusted++
				for _, c := range untrustedCauses(r) {
					causes[c]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := max(time.Since(start), window)
	s1 := d.sample()
	collections := quiet()
	d.waitTampers(ctx, 30*time.Second)

	d.mu.Lock()
	res := scheduledResult{
		Nodes: len(nodes), Target: float64(len(nodes)) / interval.Seconds(),
		Achieved: float64(completed.Load()) / elapsed.Seconds(), Reports: len(lat), Errors: errs, Untrusted: untrusted, UntrustedCauses: causes,
		EventReports: max(0, d.busSeen-busBefore-len(lat)),
		P50:          ms(lat.percentile(50)), P90: ms(lat.percentile(90)), P99: ms(lat.percentile(99)), Max: ms(lat.percentile(100)),
		Tampers: len(d.tampered), TampersFound: len(d.caught),
		VerifierCPU: cpuShare(s0.verifier, s1.verifier), VerifierRSS: mib(s1.verifier.rss), VerifierPeak: mib(s1.verifier.peakRSS),
		FleetCPU: cpuShare(s0.fleet, s1.fleet), FleetRSS: mib(s1.fleet.rss), FleetCollections: &collections,
		MachineCPU: machineCores(s0.machine, s1.machine),
		samples:    samples,
	}
	if made := res.Reports + res.EventReports; made > 0 {
		res.VerifierCPUPerReport = ms(s1.verifier.cpu-s0.verifier.cpu) / float64(made)
	}
	var tl latencies
	for _, c := range d.caught {
		tl = append(tl, c)
	}
	res.TamperP50, res.TamperMax = ms(tl.percentile(50)), ms(tl.percentile(100))
	tamperedHosts := make([]string, 0, len(d.tampered))
	for h := range d.tampered {
		tamperedHosts = append(tamperedHosts, h)
	}
	d.mu.Unlock()
	// The tampered files become golden, so the next fleet size starts trusted.
	for _, h := range tamperedHosts {
		if _, err := d.api.Call(ctx, http.MethodPost, "/hvs/v2/hosts/"+h+"/rebaseline", nil); err != nil {
			d.logger.Warn("rebaseline", keyHost, h, keyError, err.Error())
		}
	}
	return res
}

// untrustedCauses names why a report is not trusted: its host status, its
// evidence faults and its failed flavor parts.
func untrustedCauses(r *report.Report) []string {
	out := []string{"status " + r.HostStatus}
	for _, f := range r.Faults {
		out = append(out, "fault "+f.Name)
	}
	for _, p := range r.FailedParts() {
		out = append(out, "part "+p)
	}
	return out
}

func (d *driver) isTampered(host string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.tampered[host]
	return ok
}

// waitTampers waits until every tampered node was reported untrusted, or timeout.
func (d *driver) waitTampers(ctx context.Context, timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		done := len(d.caught) == len(d.tampered)
		sig := d.caughtSig
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-sig:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// settle waits until the verifier has published no report for quiet: the
// reports it queued while the fleet grew (registrations, boot events) are
// done. It waits at most limit.
func (d *driver) settle(ctx context.Context, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		d.mu.Lock()
		last := d.busLast
		d.mu.Unlock()
		if time.Since(last) >= quiet {
			return
		}
		time.Sleep(quiet / 4)
	}
}

// maxRate has concurrency clients ask for reports of random nodes back to
// back for window: the throughput the verifier sustains.
func (d *driver) maxRate(ctx context.Context, concurrency int, window time.Duration) maxResult {
	nodes := d.fleet.Nodes()
	quiet := quietCollector(windowHeapBudget)
	stop := time.Now().Add(window)
	b := d.backToBack(ctx, concurrency, func() *fleetsim.Node {
		if !time.Now().Before(stop) {
			return nil
		}
		return nodes[rand.N(len(nodes))] //nolint:gosec // G404: load spreading
	})
	m := maxResult{
		Nodes: len(nodes), Concurrency: concurrency, Throughput: float64(len(b.lat)) / b.elapsed.Seconds(), Errors: b.errs,
		P50: ms(b.lat.percentile(50)), P99: ms(b.lat.percentile(99)), VerifierCPU: cpuShare(b.s0.verifier, b.s1.verifier),
		FleetCPU: cpuShare(b.s0.fleet, b.s1.fleet), MachineCPU: machineCores(b.s0.machine, b.s1.machine),
	}
	collections := quiet()
	m.FleetCollections = &collections
	if len(b.lat) > 0 {
		m.VerifierCPUPerReport = ms(b.s1.verifier.cpu-b.s0.verifier.cpu) / float64(len(b.lat))
		if m.VerifierCPUPerReport > 0 {
			m.Projected = 2000 / m.VerifierCPUPerReport
		}
	}
	return m
}

// firstReports asks for one report of every node, concurrency at a time:
// the first attestation of nodes just onboarded. It returns how long that
// took and the verifier's CPU time a report.
func (d *driver) firstReports(ctx context.Context, nodes []*fleetsim.Node, concurrency int) (time.Duration, float64) {
	var mu sync.Mutex
	next := 0
	b := d.backToBack(ctx, concurrency, func() *fleetsim.Node {
		mu.Lock()
		defer mu.Unlock()
		if next == len(nodes) {
			return nil
		}
		next++
		return nodes[next-1]
	})
	if len(b.lat) == 0 {
		return b.elapsed, 0
	}
	return b.elapsed, ms(b.s1.verifier.cpu-b.s0.verifier.cpu) / float64(len(b.lat))
}

// backToBackRun is what backToBack measured.
type backToBackRun struct {
	lat     latencies
	errs    int
	elapsed time.Duration
	s0, s1  sample
}

// sample is the verifier's, the fleet's (this process's) and the
// machine's CPU and memory at one moment.
type sample struct {
	verifier, fleet procSample
	machine         machineSample
}

func (d *driver) sample() sample {
	var s sample
	s.verifier, _ = sampleProc(d.verifier)
	s.fleet, _ = sampleProc(0)
	s.machine, _ = sampleMachine()
	return s
}

// backToBack has concurrency clients ask for reports back to back of the
// nodes pick returns, until it returns nil.
func (d *driver) backToBack(ctx context.Context, concurrency int, pick func() *fleetsim.Node) backToBackRun {
	var (
		b  backToBackRun
		mu sync.Mutex
		wg sync.WaitGroup
	)
	b.s0 = d.sample()
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := pick()
				if n == nil {
					return
				}
				t := time.Now()
				_, err := d.manager.CreateReport(ctx, n.HostID)
				took := time.Since(t)
				mu.Lock()
				if err != nil {
					b.errs++
				} else {
					b.lat = append(b.lat, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.elapsed = time.Since(start)
	b.s1 = d.sample()
	return b
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
