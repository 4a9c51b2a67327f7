package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"trustedcompute.io/tc/internal/config"
)

// RunOptions configure Run beside the fleet's Options.
type RunOptions struct {
	// Scenario runs one scenario (or "all") once every node is Verified,
	// then returns; empty keeps the fleet running until ctx ends.
	Scenario string
	// Web is the loopback address of the page ("" for none).
	Web string
	// Terminal, when set, is where the live view draws in place and reads
	// the control keys; nil prints the table when it changes.
	Terminal *Terminal
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
	if err := opts.defaults(); err != nil {
		return err
	}
	on := "each a process with the reference TPM simulator"
	if opts.Simulator == SimulatorFleet {
		on = fmt.Sprintf("on the fleet simulator, %d at a time", opts.Parallel)
	}
	kube := "an in-memory Kubernetes API"
	switch {
	case opts.KubeConfig != nil:
		kube = "your cluster"
	case opts.KubeAssets != "":
		kube = "a kube-apiserver and etcd of its own"
	}
	_, _ = fmt.Fprintf(w, "starting the verifier, %s and %d edge nodes (%s; measured boot replayed)...\n", kube, opts.Nodes, on)
	f, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer f.Stop()
	_, _ = fmt.Fprintf(w, "%d nodes started and enrolled in %s\n", len(f.nodes), since(start))
	viewCtx, stopView := context.WithCancel(ctx)
	defer stopView()
	header := []string{fmt.Sprintf("Trusted Compute sandbox: %d nodes (%s simulator), the product's attestation manager; Ctrl-C stops everything", len(f.nodes), f.Simulator())}
	if ro.Web != "" {
		url, wait, err := serveWeb(viewCtx, ro.Web, f.Handler())
		if err != nil {
			return err
		}
		defer wait()
		defer stopView()
		_, _ = fmt.Fprintf(w, "web view: %s (the controls after logging in as %s)\n", url, adminUser)
		header = append(header, fmt.Sprintf("  web view   %s (the controls after logging in as %s)", url, adminUser))
	}
	password := filepath.Join(f.Dir(), "admin-password")
	lines := []string{
		fmt.Sprintf("verifier %s, bus %s, data %s", f.VerifierURL(), f.NATSURL(), f.Dir()),
		fmt.Sprintf("dashboard %s (user %s, password in %s; the browser does not know the sandbox's CMS root)", f.DashboardURL(), adminUser, password),
		"log in with tcctl:\n  " + f.LoginCommand(),
	}
	kubeLine := ""
	switch {
	case f.Kubeconfig() != "":
		kubeLine = "export KUBECONFIG=" + f.Kubeconfig()
		lines = append(lines, "tcctl node status | onboard (and kubectl) on the sandbox's kube-apiserver:\n  "+kubeLine)
	case opts.KubeConfig == nil:
		lines = append(lines, "the Nodes are in an in-memory Kubernetes API, which tcctl node status | onboard cannot reach: "+
			"run with --kube apiserver (kube-apiserver and etcd from hack/kube-tools.sh, which make sandbox builds)")
	}
	for _, l := range lines {
		_, _ = fmt.Fprintln(w, l)
	}
	header = append(header,
		fmt.Sprintf("  verifier   %s   bus %s", f.VerifierURL(), f.NATSURL()),
		fmt.Sprintf("  dashboard  %s (user %s, password in %s)", f.DashboardURL(), adminUser, password),
		"  tcctl      "+f.LoginCommand(),
	)
	if kubeLine != "" {
		header = append(header, "  nodes      "+kubeLine)
	}
	header = append(header, "  keys       "+keyHelp())
	ready := fmt.Sprintf("all %d nodes Verified %s after start", len(f.nodes), since(start))
	if err := f.WaitAllVerified(ctx, readyTimeout+time.Duration(len(f.nodes))*100*time.Millisecond); err != nil {
		if ro.Scenario != "" || ctx.Err() != nil || f.Err() != nil {
			f.renderTable(ctx, w, time.Now())
			return err
		}
		// The live view shows what is wrong, and the controls may fix it.
		ready = "not all nodes Verified: " + err.Error()
	}
	_, _ = fmt.Fprintln(w, ready)
	if ro.Scenario != "" {
		err := RunScenario(ctx, f, ro.Scenario, w)
		_, _ = fmt.Fprintln(w)
		f.renderTable(ctx, w, time.Now())
		return err
	}
	f.liveView(viewCtx, w, ro.Terminal, header, ready)
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
		kube       string
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a verifier, N edge nodes with simulated TPMs and the attestation manager on this machine",
		Long: `sandbox starts the verifier (embedded NATS, SQLite), N edge nodes — each a trust
agent process with its own simulated TPM, a real OVMF event log replayed into it
and an IMA log — and the attestation manager, which labels, cordons, taints and
records events on the nodes' Node objects: in a local Kubernetes API, or in a
real cluster with --kubeconfig. A live view shows every node; Ctrl-C stops
everything.

Controls, in the live view (a key, then the node's number) and on the web page
after logging in as admin:
  t  tamper: a file in no golden flavor is measured (IMA log + PCR 10)
  p  extend a PCR (7 unless another is typed) outside the event log
  r  reboot: TPM reset, measured boot again
  s  reboot with Secure Boot off
  k  kill the node's trust agent (a reboot starts it again)
  o  re-onboard: the request tcctl node onboard makes

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
			// A failure past here is not a usage error; the caller prints it.
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			if err := config.LoopbackAddr(ro.Web); err != nil {
				return fmt.Errorf("--web %q: %w", ro.Web, err)
			}
			h := slog.DiscardHandler
			if verbose {
				h = slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo})
			}
			opts.Logger = slog.New(h)
			// controller-runtime and envtest log through their own logger:
			// the same handler.
			ctrllog.SetLogger(logr.FromSlogHandler(h))
			if err := chooseKube(&opts, kube, kubeconfig); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			path := strings.Fields(cmd.CommandPath())
			opts.NodeCommand = append(append([]string{exe}, path[1:]...), "node")
			out := cmd.OutOrStdout()
			if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				ro.Terminal = &Terminal{Out: f}
				if term.IsTerminal(int(os.Stdin.Fd())) {
					ro.Terminal.In = os.Stdin
				}
			}
			return Run(cmd.Context(), out, opts, ro)
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", 3, fmt.Sprintf("number of edge nodes (at most %d)", MaxNodes))
	cmd.Flags().StringVar(&opts.Simulator, "simulator", "", fmt.Sprintf("what the nodes run on: %s (a process each, the reference TPM simulator) or %s (the fleet simulator in this process, a software TPM each; for large fleets); default %s up to %d nodes, else %s",
		SimulatorProcess, SimulatorFleet, SimulatorProcess, MaxProcessNodes, SimulatorFleet))
	cmd.Flags().IntVar(&opts.Parallel, "parallel", 0, "nodes started at once (default: the CPU count for node processes, 16 times that on the fleet simulator)")
	cmd.Flags().StringVar(&kube, "kube", kubeAuto, "the Kubernetes API the manager acts on: apiserver (kube-apiserver and etcd from --kube-assets, run by the sandbox), memory (in process; tcctl node commands cannot reach it) or auto (apiserver when --kube-assets has them)")
	cmd.Flags().StringVar(&opts.KubeAssets, "kube-assets", FindKubeAssets(), "directory holding kube-apiserver and etcd (hack/kube-tools.sh builds them and prints it; default $KUBEBUILDER_ASSETS, else its newest build in its cache)")
	cmd.Flags().StringVar(&opts.Dir, "data", "", "data directory (default: a temp dir, removed at the end)")
	cmd.Flags().DurationVar(&opts.PollInterval, "poll", 0, "the attestation manager's poll duration (at least a minute; default a minute, or 60ms a node past 1,000 nodes; reboots, IMA changes and the controls are attested at once)")
	cmd.Flags().StringVar(&ro.Scenario, "scenario", "", "run a scenario and exit: tamper | reboot | secureboot-off | onboard | secret | all")
	cmd.Flags().StringVar(&ro.Web, "web", "127.0.0.1:0", "loopback address of the web page (controls after login); empty for none")
	_ = cmd.RegisterFlagCompletionFunc("scenario", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return append(slices.Clone(Scenarios), "all"), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log to stderr")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "run the attestation manager's controller against a real cluster: a Node per sandbox node is created (development clusters only)")
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
