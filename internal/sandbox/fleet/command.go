package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// RunOptions configure Run beside the fleet's Options.
type RunOptions struct {
	// Scenario runs one scenario (or "all") once every node is Verified,
	// then returns; empty keeps the fleet running until ctx ends.
	Scenario string
	// Web is the loopback address of the read-only page ("" for none).
	Web string
	// Terminal redraws the live view in place (stdout is a terminal).
	Terminal bool
}

// readyTimeout bounds the wait for every node's first Verified.
const readyTimeout = 3 * time.Minute

// Run starts a fleet, waits until every node is Verified, then runs the
// scenario or shows the live view until ctx ends. Everything it started is
// stopped and waited for before it returns.
func Run(ctx context.Context, w io.Writer, opts Options, ro RunOptions) error {
	if ro.Scenario != "" && ro.Scenario != "all" && !slices.Contains(Scenarios, ro.Scenario) {
		return fmt.Errorf("unknown scenario %q: want one of %s or all", ro.Scenario, strings.Join(Scenarios, ", "))
	}
	start := time.Now()
	_, _ = fmt.Fprintf(w, "starting the verifier and %d edge nodes (simulated TPMs, measured boot replayed)...\n", max(opts.Nodes, 1))
	f, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer f.Stop()
	viewCtx, stopView := context.WithCancel(ctx)
	defer stopView()
	if ro.Web != "" {
		url, wait, err := serveWeb(viewCtx, ro.Web, webHandler(f.registry, f.VerifierURL()))
		if err != nil {
			return err
		}
		defer wait()
		defer stopView()
		_, _ = fmt.Fprintf(w, "web view (read-only): %s\n", url)
	}
	_, _ = fmt.Fprintf(w, "verifier %s, bus %s, data %s\n", f.VerifierURL(), f.NATSURL(), f.Dir())
	_, _ = fmt.Fprintf(w, "dashboard %s (user %s, password in %s; the browser does not know the sandbox's CMS root)\n",
		f.DashboardURL(), adminUser, filepath.Join(f.Dir(), "admin-password"))
	_, _ = fmt.Fprintf(w, "log in with tcctl:\n  %s\n", f.LoginCommand())
	if err := f.WaitAllVerified(ctx, readyTimeout); err != nil {
		renderTable(w, f.registry, time.Now())
		return err
	}
	_, _ = fmt.Fprintf(w, "all %d nodes Verified %s after start\n", len(f.nodes), since(start))
	if ro.Scenario != "" {
		err := RunScenario(ctx, f, ro.Scenario, w)
		_, _ = fmt.Fprintln(w)
		renderTable(w, f.registry, time.Now())
		return err
	}
	header := fmt.Sprintf("Trusted Compute sandbox — verifier %s — Ctrl-C stops everything", f.VerifierURL())
	liveView(viewCtx, w, f.registry, ro.Terminal, header)
	_, _ = fmt.Fprintln(w, "\nstopping...")
	return f.Err()
}

// NewCommand is the "sandbox" command: the whole system on one machine.
func NewCommand() *cobra.Command {
	var (
		opts       Options
		ro         RunOptions
		verbose    bool
		kubeconfig string
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a verifier, N edge nodes with simulated TPMs and a local attestation manager on this machine",
		Long: `sandbox starts the verifier (embedded NATS, SQLite), N edge nodes — each a trust
agent process with its own simulated TPM, a real OVMF event log replayed into it
and an IMA log — and the attestation manager in local mode, which records in a
local node registry what it would do to Kubernetes Nodes (labels, cordon, taint,
condition, events). A live view shows every node; Ctrl-C stops everything.

Scenarios (--scenario, exit status 0 when the fleet behaved as described):
  tamper          a new IMA entry on one node: Attestation Failed, cordoned; the others stay Verified
  reboot          TPM reset + measured boot again: re-baselined, Verified
  secureboot-off  a reboot with Secure Boot disabled: Secure Boot Disabled, cordoned
  onboard         a failed node is fixed and re-onboarded by the operator: Verified, uncordoned
  secret          the key broker releases a secret to a Verified node (its agent keeps it on a tmpfs);
                  a tamper: the agent drops it, the next release is refused, the node is cordoned
  all             all of them, in that order`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loopbackOnly(ro.Web); err != nil {
				return err
			}
			h := slog.DiscardHandler
			if verbose {
				h = slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo})
			}
			opts.Logger = slog.New(h)
			if kubeconfig != "" {
				cs, err := KubeClient(kubeconfig)
				if err != nil {
					return err
				}
				opts.Kube = cs
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			path := strings.Fields(cmd.CommandPath())
			opts.NodeCommand = append(append([]string{exe}, path[1:]...), "node")
			out := cmd.OutOrStdout()
			if f, ok := out.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					ro.Terminal = true
				}
			}
			return Run(cmd.Context(), out, opts, ro)
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", 3, "number of edge nodes")
	cmd.Flags().StringVar(&opts.Dir, "data", "", "data directory (default: a temp dir, removed at the end)")
	cmd.Flags().DurationVar(&opts.PollInterval, "poll", 5*time.Second, "how often the manager attests every node")
	cmd.Flags().StringVar(&ro.Scenario, "scenario", "", "run a scenario and exit: tamper | reboot | secureboot-off | onboard | secret | all")
	cmd.Flags().StringVar(&ro.Web, "web", "127.0.0.1:0", "loopback address of the read-only web page; empty for none")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log to stderr")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "also act on a real cluster: create a Node per sandbox node (development clusters only) and cordon/label/taint them as the Kubernetes adapter does")
	cmd.AddCommand(&cobra.Command{
		Use:                "node",
		Short:              "Run one sandbox edge node (started by the sandbox itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return NodeMain(cmd.Context(), args, os.Stdin, os.Stdout, os.Stderr)
		},
	})
	return cmd
}

// loopbackOnly refuses a web address that is not on loopback.
func loopbackOnly(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--web %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--web %q: the page is served on loopback only", addr)
	}
	return nil
}
