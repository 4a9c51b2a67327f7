package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
)

// lookInterval is how often the local controller looks at every node: what
// the Node watch does on a real cluster (drift, onboard requests) is seen
// within it. A node is attested only when the manager says it is due.
const lookInterval = 500 * time.Millisecond

// startManager runs the product's attestation manager (internal/manager)
// with the product's verifier client and Kubernetes adapter: on a real
// cluster as the controller-runtime reconciler, else driven over the local
// API by runLocal. It hears the verifier's published reports on the bus
// with the manager's credentials, as in production.
func (f *Fleet) startManager(ctx, runCtx context.Context) error {
	logger := f.log.With(keyPart, "manager")
	hvs, err := hvsclient.New(f.VerifierURL(), f.roots,
		hvsclient.Credentials{Username: adminUser, PasswordFile: filepath.Join(f.dir, "admin-password")})
	if err != nil {
		return err
	}
	nodes := manager.KubeNodes{Nodes: f.adapter, Clientset: f.kube, Requests: f.requests, Log: logger}
	// As the chart runs it: a report must name the Node its agent runs on.
	m, err := manager.New(manager.Config{PollDuration: f.opts.PollInterval, NodeBinding: manager.NodeBindingRequired}, manager.Deps{
		Verifier: manager.HVSVerifier{Client: hvs, Log: logger}, Nodes: nodes, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("attestation manager: %w", err)
	}
	creds, err := f.verifier.Authority().ManagerCredentials("sandbox", 24*time.Hour)
	if err != nil {
		return err
	}
	nc, err := natsbus.Connect(ctx, f.verifier.NATSURL(), creds, f.roots, "attestation-manager", logger)
	if err != nil {
		return err
	}
	f.notices = newNotices(m, logger)
	if _, err := nc.Subscribe(bus.AllReports, func(msg *nats.Msg) { f.notices.published(msg.Subject) }); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
	}
	if f.api != nil {
		f.goTask("manager", func() error {
			defer nc.Close()
			return f.runLocal(runCtx, m, nodes, f.notices.wake)
		})
		return nil
	}
	cm, err := manager.NewControllerManager(f.opts.KubeConfig, manager.LeaderElection{}, f.opts.Namespace, logger)
	if err != nil {
		nc.Close()
		return err
	}
	// Several sandboxes may run in one process (tests).
	if err := m.Controller(cm, manager.ControllerOptions{Namespace: f.opts.Namespace, SkipNameValidation: true, Workers: f.workers()}); err != nil {
		nc.Close()
		return err
	}
	f.goTask("manager", func() error {
		defer nc.Close()
		return cm.Start(runCtx)
	})
	return nil
}

// workers is the manager's worker pool for the fleet, sized as the
// product sizes it (manager.Workers).
func (f *Fleet) workers() int { return manager.Workers(len(f.nodes), f.opts.PollInterval) }

// notices hands the reports the verifier publishes to the manager. It
// never blocks the bus and never drops a report: Manager.ReportPublished
// keeps one pending event per node however many arrive before the node is
// reconciled, and the wake-up only says "look now", so one pending wake-up
// stands for any number.
type notices struct {
	m    interface{ ReportPublished(hostID string) }
	wake chan struct{}
	log  *slog.Logger

	mu    sync.Mutex
	hosts map[string]bool // published since the last take
}

func newNotices(m interface{ ReportPublished(string) }, logger *slog.Logger) *notices {
	return &notices{m: m, wake: make(chan struct{}, 1), log: logger, hosts: map[string]bool{}}
}

// published is the bus handler of trust-reports.<host-id>.
func (n *notices) published(subject string) {
	host, err := bus.ParseReportSubject(subject)
	if err != nil {
		n.log.Warn("ignoring trust report on an unexpected subject", slog.String(keySubject, subject), slog.Any(keyError, err))
		return
	}
	n.m.ReportPublished(host)
	n.mu.Lock()
	n.hosts[host] = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// take returns the hosts published since the last take.
func (n *notices) take() map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hosts
	n.hosts = map[string]bool{}
	return h
}

// runLocal does the controller's work over the local API until ctx ends:
// every lookInterval, and at once when a report is published, it hands to
// Manager.ReconcileNode, through a worker pool of the product's size, every
// enabled node that is due (the wait the last reconcile returned is over),
// whose Node changed (drift, an onboard request) or whose host has a
// published report, as the controller's watches and requeues do. Nodes are
// reconciled concurrently, one node never twice at once. A node with news
// (changed, published) has a lane of its own, a quarter of the pool's size,
// so that a tamper is acted on at once while a large fleet's polls queue.
func (f *Fleet) runLocal(ctx context.Context, m *manager.Manager, nodes manager.Nodes, wake <-chan struct{}) error {
	tick := time.NewTicker(lookInterval)
	defer tick.Stop()
	type done struct {
		name string
		wait time.Duration
	}
	var (
		busy     = map[string]bool{}
		next     = map[string]time.Time{}
		seen     = map[string]manager.Node{}
		pending  = map[string]bool{} // hosts with a published report, until their node is dispatched
		finished = make(chan done)
		workers  = make(chan struct{}, f.workers())
		urgent   = make(chan struct{}, max(2, f.workers()/4))
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	for {
		f.api.forget()
		list, err := nodes.EnabledNodes(ctx)
		if err != nil && ctx.Err() == nil {
			f.log.Warn("listing enabled nodes failed", slog.Any(keyError, err))
		}
		for h := range f.notices.take() {
			pending[h] = true
		}
		now := time.Now()
		for _, n := range list {
			news := !reflect.DeepEqual(seen[n.Name], n) || pending[n.HostID]
			if busy[n.Name] || (!news && now.Before(next[n.Name])) {
				continue
			}
			lane := workers
			if news {
				lane = urgent
			}
			busy[n.Name], seen[n.Name] = true, n
			delete(pending, n.HostID)
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				select {
				case lane <- struct{}{}:
				case <-ctx.Done():
					return
				}
				f.hold.RLock()
				wait, err := m.ReconcileNode(ctx, name)
				f.hold.RUnlock()
				<-lane
				if err != nil && ctx.Err() == nil {
					f.log.Warn("reconcile failed", slog.String(keyNode, name), slog.Any(keyError, err))
					wait = time.Second
				}
				select {
				case finished <- done{name, wait}:
				case <-ctx.Done():
				}
			}(n.Name)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case d := <-finished:
				delete(busy, d.name)
				next[d.name] = time.Now().Add(d.wait)
			case <-tick.C:
				break wait
			case <-wake:
				break wait
			}
		}
	}
}
