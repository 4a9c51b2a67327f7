// Command attestation-manager runs the Trusted Compute attestation manager,
// the Kubernetes controller that keeps golden flavors current, schedules
// attestations, decides each node's status and cordons failed nodes.
//
//	attestation-manager run [-config file] [-kubeconfig file]
//	attestation-manager version
package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/cms"
)

var version = "dev"

func main() { program().Main() }

func program() cli.Program {
	return cli.Program{Name: "attestation-manager", Version: version, Usage: usage,
		Commands: map[string]cli.Func{"run": cmdRun}}
}

const usage = `usage: attestation-manager <command> [flags]

commands:
  run      watch Trusted Compute nodes and act on their attestation
  version  print the version`

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer, getenv func(string) string) error {
	fs, configPath := cli.Flags("run", stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (overrides the config; default in-cluster)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	cfg.Kubernetes.Kubeconfig = cmp.Or(*kubeconfig, cfg.Kubernetes.Kubeconfig)
	if err := cfg.validate(); err != nil {
		return err
	}
	logger, err := cli.Logger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	// controller-runtime and client-go's leader election log through
	// controller-runtime's logger: the same handler.
	ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))
	return serve(ctx, cfg, getenv, logger)
}

// serve is the composition root: it builds every part and runs the long-lived
// ones until ctx ends or one of them fails.
func serve(ctx context.Context, cfg Config, getenv func(string) string, logger *slog.Logger) error {
	mcfg, err := cfg.managerConfig()
	if err != nil {
		return err
	}
	roots, err := cmsRoots(ctx, cfg.Verifier)
	if err != nil {
		return err
	}
	opts := []hvsclient.Option{hvsclient.WithTimeout(cfg.Verifier.Timeout)}
	if cfg.Verifier.AASURL != "" {
		opts = append(opts, hvsclient.WithAASURL(cfg.Verifier.AASURL))
	}
	hvs, err := hvsclient.New(cfg.Verifier.URL, roots,
		hvsclient.Credentials{Username: cfg.Verifier.Username, PasswordFile: cfg.Verifier.PasswordFile}, opts...)
	if err != nil {
		return err
	}
	rc, err := kubeConfig(cfg.Kubernetes.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	nodes := manager.KubeNodes{
		Nodes:     cluster.New(cs, cluster.Options{Logger: logger, Instance: getenv("TC_POD_NAME")}),
		Clientset: cs,
		Requests:  cluster.NewOnboardRequests(cs, cfg.Kubernetes.Namespace, ""),
		Log:       logger,
	}
	workers := mcfg.Concurrency
	if cfg.Concurrency == 0 {
		fleet := cfg.FleetSize
		if fleet == 0 {
			if fleet, err = countEnabled(ctx, cs); err != nil {
				return err
			}
		}
		workers = manager.Workers(fleet, mcfg.PollDuration)
		logger.Info("worker pool sized from the fleet", slog.Int("nodes", fleet), slog.Int("workers", workers),
			slog.Duration("poll_duration", mcfg.PollDuration))
	}
	cm, err := manager.NewControllerManager(rc, cfg.leaderElection(), cfg.Kubernetes.Namespace, logger)
	if err != nil {
		return err
	}
	sink, err := eim.New(cfg.EIM, logger)
	if err != nil {
		return err
	}
	defer func() { _ = sink.Close() }()
	notifier := eim.NewNotifier(sink, logger)
	var metrics *manager.Metrics
	mgr, err := manager.New(mcfg, manager.Deps{
		Verifier: manager.HVSVerifier{Client: hvs, Log: logger}, Nodes: nodes, Status: notifier, Logger: logger,
		OnCordon: func(node string, s cluster.Status) { metrics.Cordoned(node, s) },
	})
	if err != nil {
		return err
	}
	if err := mgr.Controller(cm, manager.ControllerOptions{Workers: workers, Namespace: cfg.Kubernetes.Namespace}); err != nil {
		return err
	}
	metrics = manager.NewMetrics(mgr)
	notifier.OnFailure = metrics.EIMFailed
	raw, err := os.ReadFile(cfg.NATS.CredsFile)
	if err != nil {
		return fmt.Errorf("read nats credentials: %w", err)
	}
	creds, err := bus.ParseCredentials(raw)
	if err != nil {
		return fmt.Errorf("nats credentials %s: %w", cfg.NATS.CredsFile, err)
	}
	dial := func(ctx context.Context, c *bus.Credentials) (*nats.Conn, error) {
		return natsbus.Connect(ctx, cfg.NATS.URL, c.Bytes(), roots, "attestation-manager", logger)
	}
	subscribe := func(nc *nats.Conn) ([]*nats.Subscription, error) {
		sub, err := nc.Subscribe(bus.AllReports, func(msg *nats.Msg) {
			host, err := bus.ParseReportSubject(msg.Subject)
			if err != nil {
				logger.Warn("ignoring trust report on an unexpected subject", slog.String("subject", msg.Subject), slog.Any("error", err))
				return
			}
			// The subject says which host; the report itself is read from
			// the verifier over the authenticated REST API. During a
			// credential renewal a report may arrive twice (once on each
			// connection): reading it twice is harmless.
			mgr.ReportPublished(host)
		})
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
		}
		if err := nc.Flush(); err != nil {
			_ = sub.Unsubscribe()
			return nil, fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
		}
		return []*nats.Subscription{sub}, nil
	}
	// The connection renews its credentials at two thirds of their lifetime
	// (in memory: the credentials file is not rewritten).
	nc, err := natsbus.DialManager(ctx, creds, dial, subscribe, nil, logger)
	if err != nil {
		return err
	}
	tasks := []run.Task{cm.Start, notifier.Run, nc.Run}
	if cfg.MetricsAddr != "" {
		ready := func() error {
			if !nc.IsConnected() {
				return errors.New("not connected to the bus")
			}
			return nil
		}
		tasks = append(tasks, func(ctx context.Context) error {
			return manager.ServeOps(ctx, cfg.MetricsAddr, metrics, ready, logger)
		})
	}
	return run.Group(ctx, tasks...)
}

// cmsRoots returns the CMS root as the only trusted CA: from a file
// (checked against the pin when one is set) or bootstrapped from the pin.
func cmsRoots(ctx context.Context, v Verifier) (*x509.CertPool, error) {
	var (
		root *x509.Certificate
		err  error
	)
	if v.CMSRootFile != "" {
		root, err = cms.LoadRootFile(v.CMSRootFile, v.CMSRootSHA384)
	} else {
		root, err = cms.FetchRootPinned(ctx, cmp.Or(v.CMSURL, v.URL), v.CMSRootSHA384)
	}
	if err != nil {
		return nil, fmt.Errorf("cms root: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool, nil
}

func kubeConfig(kubeconfig string) (*rest.Config, error) {
	var (
		rc  *rest.Config
		err error
	)
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	rc.UserAgent = "trustedcompute-attestation-manager/" + version
	return rc, nil
}

// countEnabled counts the enabled Nodes, to size the worker pool.
func countEnabled(ctx context.Context, cs kubernetes.Interface) (int, error) {
	sel := labels.SelectorFromSet(labels.Set{cluster.LabelEnabled: "true"}).String()
	opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
	n := 0
	for {
		list, err := cs.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("count enabled nodes: %w", err)
		}
		n += len(list.Items)
		if list.Continue == "" {
			return n, nil
		}
		opts.Continue = list.Continue
	}
}
