// Package loadtest is `make loadtest`: the verifier binary as its own
// process, on SQLite and on PostgreSQL, attesting a simulated fleet
// (internal/fleetsim) of growing size at the attestation manager's rate.
// For each fleet size it measures the report latency percentiles, the tamper
// → untrusted report latency, the verifier's CPU and memory, and the
// highest rate of reports the verifier sustains; it prints a table and
// writes the results as JSON and as an SVG chart.
package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/restapi"
)

// Log field keys.
const (
	keyHost    = "host_id"
	keyError   = "error"
	keyBackend = "backend"
	keyNodes   = "nodes"
	keyTook    = "took"
	keyDir     = "dir"
	keyPprof   = "pprof"
)

// Backend is a database the verifier runs on.
type Backend struct {
	// Name labels the results ("sqlite", "postgres").
	Name string
	// Database is the verifier's database setting; empty is an SQLite file
	// in the verifier's data directory.
	Database string
}

// Config is one load test.
type Config struct {
	// VerifierBin is the verifier binary (make build puts it in bin/).
	VerifierBin string
	// VerifierEnv is added to the verifier's environment (KEY=VALUE), e.g.
	// GOMEMLIMIT for it alone.
	VerifierEnv []string
	Backends    []Backend
	// Steps are the fleet sizes, ascending; the fleet grows from one to the next.
	Steps []int
	// Interval is each node's attestation interval (the manager's pollDuration).
	Interval time.Duration
	// Window is how long each fleet size is driven at Interval.
	Window time.Duration
	// MaxWindow is how long each concurrency of MaxConcurrency is driven
	// back to back; 0 skips the throughput search.
	MaxWindow      time.Duration
	MaxConcurrency []int
	// Tampers is the number of nodes tampered with during each window.
	Tampers int
	// IMAGrowth is how often, on average, a node's IMA log grows.
	IMAGrowth time.Duration
	// IMAFiles is the number of files each boot measures.
	IMAFiles int
	// Parallel bounds the nodes enrolled at once (default GOMAXPROCS).
	Parallel int
	// Merge holds the results of earlier runs (e.g. other backends or
	// larger fleets), shown in the same table and chart.
	Merge []*Results
	// MaxInFlight bounds the scheduled reports in flight.
	MaxInFlight int
	// Agent sets the simulated agents' IMA poll and debounce intervals.
	Agent agent.Config
	// Dir holds each run's verifier data and log.
	Dir string
	// JSONPath and SVGPath receive the results; empty skips them.
	JSONPath, SVGPath string
	// LatenciesPath receives every scheduled report of the windows as CSV
	// (writeLatencies), to lay the slow ones beside the verifier's log;
	// empty skips it.
	LatenciesPath string
	// Machine describes the machine in the chart's caption.
	Machine string
	Logger  *slog.Logger
}

// Results are a whole load test's measurements.
type Results struct {
	Started   time.Time         `json:"started"`
	Machine   string            `json:"machine"`
	Interval  string            `json:"interval"`
	Window    string            `json:"window"`
	IMAFiles  int               `json:"ima_files"`
	Scheduled []scheduledResult `json:"scheduled"`
	Max       []maxResult       `json:"max"`
}

// Run runs the load test and writes the table to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Results, error) {
	if len(cfg.Backends) > 0 && (cfg.VerifierBin == "" || len(cfg.Steps) == 0) {
		return nil, errors.New("loadtest: a verifier binary and steps are required")
	}
	if len(cfg.Backends) == 0 && len(cfg.Merge) == 0 {
		return nil, errors.New("loadtest: no backend to run and no results to merge")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	res := &Results{Started: time.Now().UTC(), Machine: cfg.Machine, Interval: cfg.Interval.String(),
		Window: cfg.Window.String(), IMAFiles: cfg.IMAFiles}
	var errs []error
	for _, b := range cfg.Backends {
		if err := runBackend(ctx, cfg, b, res, out); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	all := &Results{Started: res.Started, Machine: res.Machine, Interval: res.Interval, Window: res.Window, IMAFiles: res.IMAFiles}
	for _, m := range append(slices.Clone(cfg.Merge), res) {
		all.Scheduled = append(all.Scheduled, m.Scheduled...)
		all.Max = append(all.Max, m.Max...)
	}
	res = all
	printTable(out, res)
	if cfg.JSONPath != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.JSONPath, append(b, '\n'), 0o644) //nolint:gosec // results are public
		}
		errs = append(errs, err)
	}
	if cfg.LatenciesPath != "" {
		errs = append(errs, writeLatencies(cfg.LatenciesPath, res.Scheduled))
	}
	if cfg.SVGPath != "" && len(res.Scheduled) > 0 {
		errs = append(errs, os.WriteFile(cfg.SVGPath, chart(res), 0o644)) //nolint:gosec // a chart is public
	}
	return res, errors.Join(errs...)
}

func runBackend(ctx context.Context, cfg Config, b Backend, res *Results, out io.Writer) error {
	log := cfg.Logger.With(keyBackend, b.Name)
	dir := filepath.Join(cfg.Dir, b.Name)
	ca, err := softtpm.NewEKCA(time.Now())
	if err != nil {
		return err
	}
	v, err := startVerifier(ctx, cfg.VerifierBin, dir, b.Database, ca.PEM(), cfg.VerifierEnv)
	if err != nil {
		return err
	}
	defer v.Stop()
	log.Info("verifier started", keyDir, dir, keyPprof, v.Pprof)
	api := fleetsim.NewAPI(v.Base, v.Roots, "admin", v.Password, cfg.MaxInFlight)
	defer api.Close()
	fleet, err := fleetsim.New(ctx, fleetsim.Options{
		API: api, NATSURL: v.NATSURL, Roots: v.Roots, EKCA: ca, IMAFiles: cfg.IMAFiles, Parallel: cfg.Parallel,
		Agent: cfg.Agent, Logger: log,
	})
	if err != nil {
		return err
	}
	defer fleet.Stop()

	creds, err := api.Credentials(ctx, restapi.CredentialsManager, "")
	if err != nil {
		return fmt.Errorf("manager credentials: %w", err)
	}
	nc, err := natsbus.Connect(ctx, v.NATSURL, creds, v.Roots, "tc-loadtest", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	manager, err := hvsclient.New(v.Base, v.Roots, hvsclient.Credentials{Username: "admin", PasswordFile: v.PasswordFile()},
		hvsclient.WithTransport(&http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: v.Roots, MinVersion: tls.VersionTLS13},
			MaxIdleConnsPerHost: cfg.MaxInFlight,
			ForceAttemptHTTP2:   true,
		}))
	if err != nil {
		return err
	}
	d := &driver{api: api, manager: manager, fleet: fleet, verifier: v.PID(), logger: log}
	if _, err := fleetsim.WatchReports(nc, d.onReport); err != nil {
		return err
	}

	for _, n := range cfg.Steps {
		have := len(fleet.Nodes())
		retries := fleet.Retries()
		start := time.Now()
		s0 := d.sample()
		if n > have {
			if err := fleet.AddNodes(ctx, n-have); err != nil {
				return fmt.Errorf("grow the fleet to %d nodes: %w", n, err)
			}
		}
		enroll := time.Since(start)
		s1 := d.sample()
		log.Info("fleet ready", keyNodes, n, keyTook, enroll.Round(time.Millisecond))
		d.settle(ctx, 3*time.Second, 3*time.Minute)
		var first time.Duration
		var firstCPU float64
		if n > have {
			first, firstCPU = d.firstReports(ctx, fleet.Nodes()[have:], firstReportClients)
			log.Info("first reports made", keyNodes, n-have, keyTook, first.Round(time.Millisecond))
		}
		// One collection, then none from this process through the floor's
		// measurement and the window (quietCollector).
		quiet := quietCollector(windowHeapBudget)
		floor, err := benchfloor.MeasureThreadCPU()
		if err != nil {
			quiet()
			return fmt.Errorf("measure the crypto floor: %w", err)
		}
		r := d.scheduled(ctx, cfg.Interval, cfg.Window, cfg.IMAGrowth, cfg.Tampers, cfg.MaxInFlight, quiet)
		r.Backend, r.EnrollSecs = b.Name, enroll.Seconds()
		r.FloorMicros = float64(floor) / float64(time.Microsecond)
		if added := n - have; added > 0 {
			r.EnrollVerifierCPU = msPer(s1.verifier.cpu-s0.verifier.cpu, added)
			r.EnrollFleetCPU = msPer(s1.fleet.cpu-s0.fleet.cpu, added)
			r.FirstReportsSecs, r.FirstReportCPU = first.Seconds(), firstCPU
			r.EnrollRetries = fleet.Retries() - retries
		}
		res.Scheduled = append(res.Scheduled, r)
		_, _ = fmt.Fprintf(out, "%-8s %6d nodes: %6.1f/s (target %.1f/s) p50 %.0f ms p90 %.0f ms p99 %.0f ms, %d errors, tamper %d/%d caught p50 %.0f ms, verifier %.2f cores %.0f MiB, fleet %.2f cores %.0f MiB (%s collections), machine %.2f cores; verifier CPU a report %.2f ms = %s x-floor (floor %.0f µs); enrolled in %.0f s (%.1f ms verifier CPU and %.1f ms fleet CPU a node, %d steps retried), first reports in %.0f s (%.1f ms verifier CPU each)\n",
			b.Name, r.Nodes, r.Achieved, r.Target, r.P50, r.P90, r.P99, r.Errors, r.TampersFound, r.Tampers, r.TamperP50, r.VerifierCPU, r.VerifierRSS, r.FleetCPU, r.FleetRSS, count(r.FleetCollections), r.MachineCPU,
			r.VerifierCPUPerReport, xFloor(r.VerifierCPUPerReport, r.FloorMicros), r.FloorMicros,
			r.EnrollSecs, r.EnrollVerifierCPU, r.EnrollFleetCPU, r.EnrollRetries, r.FirstReportsSecs, r.FirstReportCPU)
		if r.Untrusted > 0 {
			_, _ = fmt.Fprintf(out, "%-8s %6d nodes: %d untrusted reports of untampered nodes: %v\n", b.Name, r.Nodes, r.Untrusted, r.UntrustedCauses)
		}
		if cfg.MaxWindow <= 0 {
			continue
		}
		var best maxResult
		for _, c := range cfg.MaxConcurrency {
			m := d.maxRate(ctx, c, cfg.MaxWindow)
			m.Backend, m.FloorMicros = b.Name, r.FloorMicros
			_, _ = fmt.Fprintf(out, "%-8s %6d nodes: %d clients back to back: %6.1f reports/s p50 %.0f ms p99 %.0f ms, %d errors, verifier %.2f cores (%.1f ms = %s x-floor a report), fleet %.2f (%s collections), machine %.2f\n",
				b.Name, m.Nodes, c, m.Throughput, m.P50, m.P99, m.Errors, m.VerifierCPU, m.VerifierCPUPerReport, xFloor(m.VerifierCPUPerReport, m.FloorMicros), m.FleetCPU, count(m.FleetCollections), m.MachineCPU)
			if m.Throughput > best.Throughput {
				best = m
			}
		}
		res.Max = append(res.Max, best)
	}
	return ctx.Err()
}

// firstReportClients ask back to back for the first report of every node
// added to the fleet, before the window measures the steady state.
const firstReportClients = 16

// msPer is d divided among n, in milliseconds.
func msPer(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Millisecond) / float64(n)
}

// printTable writes the results as a Markdown table.
func printTable(out io.Writer, res *Results) {
	_, _ = fmt.Fprintf(out, "\nreports at the manager's rate (interval %s, window %s):\n\n", res.Interval, res.Window)
	_, _ = fmt.Fprintln(out, "| backend | nodes | target /s | achieved /s | p50 ms | p90 ms | p99 ms | max ms | errors | untrusted | queued reports | tamper caught | tamper p50 ms | tamper max ms | verifier cores | verifier CPU ms/report | verifier CPU x-floor | floor µs | verifier RSS MiB | fleet cores | fleet collections | machine cores | enroll s | enroll verifier CPU ms/node | enroll fleet CPU ms/node | first reports s | first report verifier CPU ms |")
	_, _ = fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range res.Scheduled {
		_, _ = fmt.Fprintf(out, "| %s | %d | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %d | %d | %d | %d/%d | %.0f | %.0f | %.2f | %.1f | %s | %.0f | %.0f | %.2f | %s | %.2f | %.0f | %.1f | %.1f | %.0f | %.1f |\n",
			r.Backend, r.Nodes, r.Target, r.Achieved, r.P50, r.P90, r.P99, r.Max, r.Errors, r.Untrusted, r.EventReports,
			r.TampersFound, r.Tampers, r.TamperP50, r.TamperMax, r.VerifierCPU, r.VerifierCPUPerReport, xFloor(r.VerifierCPUPerReport, r.FloorMicros), r.FloorMicros, r.VerifierRSS, r.FleetCPU, count(r.FleetCollections), r.MachineCPU, r.EnrollSecs,
			r.EnrollVerifierCPU, r.EnrollFleetCPU, r.FirstReportsSecs, r.FirstReportCPU)
	}
	if len(res.Max) == 0 {
		return
	}
	_, _ = fmt.Fprintln(out, "\nhighest sustained rate (clients asking back to back):")
	_, _ = fmt.Fprintln(out, "| backend | nodes | clients | reports/s | p50 ms | p99 ms | errors | verifier cores | verifier CPU ms/report | verifier CPU x-floor | 2-core projection /s | fleet cores | fleet collections | machine cores |")
	_, _ = fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, m := range res.Max {
		_, _ = fmt.Fprintf(out, "| %s | %d | %d | %.1f | %.0f | %.0f | %d | %.2f | %.1f | %s | %.0f | %.2f | %s | %.2f |\n",
			m.Backend, m.Nodes, m.Concurrency, m.Throughput, m.P50, m.P99, m.Errors, m.VerifierCPU, m.VerifierCPUPerReport, xFloor(m.VerifierCPUPerReport, m.FloorMicros), m.Projected, m.FleetCPU, count(m.FleetCollections), m.MachineCPU)
	}
}
