// Command tc-loadtest runs the verifier binary as its own process against a
// simulated fleet (internal/fleetsim) and measures it; `make loadtest` runs
// it on SQLite and PostgreSQL. See docs/performance.md, "Load test".
//
//	tc-loadtest -verifier bin/verifier [-postgres URL] [-steps 100,1000] ...
//	tc-loadtest -sqlite=false -merge a.json -merge b.json -svg chart.svg   (redraw only)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/fleetsim/loadtest"
)

func main() {
	cli.Main("tc-loadtest", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("tc-loadtest", stderr)
	var cfg loadtest.Config
	fs.StringVar(&cfg.VerifierBin, "verifier", "bin/verifier", "verifier binary")
	sqlite := fs.Bool("sqlite", true, "run the verifier on an SQLite file")
	postgres := fs.String("postgres", "", "also run it on this PostgreSQL URL (a database the test may fill)")
	steps := fs.String("steps", "100,1000", "fleet sizes, ascending, comma-separated")
	fs.DurationVar(&cfg.Interval, "interval", time.Minute, "each node's attestation interval (the manager's pollDuration)")
	fs.DurationVar(&cfg.Window, "window", time.Minute, "how long each fleet size is driven at -interval")
	fs.DurationVar(&cfg.MaxWindow, "max-window", 15*time.Second, "how long each client count drives reports back to back (0: skip)")
	clients := fs.String("max-clients", "4,16,64", "client counts of the throughput search")
	fs.IntVar(&cfg.Tampers, "tampers", 3, "nodes tampered with in each window")
	fs.DurationVar(&cfg.IMAGrowth, "ima-growth", 10*time.Minute, "how often, on average, a node's IMA log grows (0: never)")
	fs.IntVar(&cfg.IMAFiles, "ima-files", 32, "files each boot measures (IMA entries)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 256, "scheduled reports in flight at most")
	fs.DurationVar(&cfg.Agent.IMAPollInterval, "agent-ima-poll", time.Second, "the agents' IMA log poll interval")
	fs.DurationVar(&cfg.Agent.IMADebounce, "agent-ima-debounce", 250*time.Millisecond, "the agents' IMA event debounce")
	fs.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temp dir, removed at the end)")
	fs.StringVar(&cfg.JSONPath, "json", "", "write the results as JSON here")
	fs.StringVar(&cfg.SVGPath, "svg", "", "write the chart here (e.g. docs/images/loadtest.svg)")
	fs.StringVar(&cfg.LatenciesPath, "latencies", "", "write every scheduled report (host, when it was due, its latency) here as CSV")
	fs.StringVar(&cfg.Machine, "machine", machine(), "machine description for the chart")
	fs.IntVar(&cfg.Parallel, "parallel", 16, "nodes enrolled at once")
	var merge []string
	fs.Func("merge", "also show the results of an earlier run's -json file (repeatable)", func(s string) error {
		merge = append(merge, s)
		return nil
	})
	fs.Func("verifier-env", "add KEY=VALUE to the verifier's environment, e.g. GOMEMLIMIT=1300MiB (repeatable)", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", s)
		}
		cfg.VerifierEnv = append(cfg.VerifierEnv, s)
		return nil
	})
	verbose := fs.Bool("v", false, "log progress")
	cpuProfile := fs.String("cpuprofile", "", "write the load test process's own CPU profile here (the verifier's: -v logs its pprof address)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	var err error
	if cfg.Steps, err = ints(*steps); err != nil {
		errs = append(errs, fmt.Errorf("-steps: %w", err))
	}
	if cfg.MaxConcurrency, err = ints(*clients); err != nil {
		errs = append(errs, fmt.Errorf("-max-clients: %w", err))
	}
	for _, f := range merge {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("-merge: %w", err))
			continue
		}
		var r loadtest.Results
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("-merge %s: %w", f, err))
			continue
		}
		cfg.Merge = append(cfg.Merge, &r)
	}
	if *sqlite {
		cfg.Backends = append(cfg.Backends, loadtest.Backend{Name: "sqlite"})
	}
	if *postgres != "" {
		cfg.Backends = append(cfg.Backends, loadtest.Backend{Name: "postgres", Database: *postgres})
	}
	if len(cfg.Backends) == 0 && len(merge) == 0 {
		errs = append(errs, errors.New("no backend: keep -sqlite or give -postgres (or only redraw -merge results)"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "tc-loadtest-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		cfg.Dir = dir
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Agent = agent.Config{IMAPollInterval: cfg.Agent.IMAPollInterval, IMADebounce: cfg.Agent.IMADebounce}
	_, err = loadtest.Run(ctx, cfg, stdout)
	return err
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// machine describes this machine: CPU model, cores, memory.
func machine() string {
	model := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
					mem = fmt.Sprintf(", %d GiB", (kb+(1<<19))>>20)
				}
			}
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s", model, runtime.NumCPU(), mem, runtime.Version())
}
