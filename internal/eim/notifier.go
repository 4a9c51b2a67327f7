package eim

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
)

// Updater is what the Notifier needs of a sink: one logical update, with
// its own retries.
type Updater interface {
	Update(ctx context.Context, hostGUID string, status Status, detail string) error
}

// Notifier decouples the EIM from the decisions: Notify queues the newest
// verdict of a host and returns at once; Run sends the queue. While an
// update of a host waits or is in flight, a newer verdict replaces the
// waiting one, so only the newest is sent, and never two updates of one
// host at the same time (an older update cannot land after a newer one).
//
// An update that fails for good is reported to OnFailure and logged; the
// next verdict of the host sends the status again.
type Notifier struct {
	updater Updater
	log     *slog.Logger

	// OnFailure, when set before Run, is called from a worker after an
	// update failed for good (for metrics). It must not block.
	OnFailure func(hostGUID string, err error)
	// Workers is the number of hosts updated at the same time
	// (DefaultNotifierWorkers when 0). Set before Run.
	Workers int

	mu       sync.Mutex
	pending  map[string]verdict // newest unsent verdict per host
	order    []string           // hosts of pending, oldest first, each once
	inflight map[string]bool    // hosts a worker is updating
	wake     chan struct{}      // capacity 1: "work may be available"
}

// DefaultNotifierWorkers is the number of concurrent updates of a Notifier.
const DefaultNotifierWorkers = 4

// MaxPendingHosts bounds the hosts waiting for an update: far more than
// the nodes of one cluster.
const MaxPendingHosts = 100_000

type verdict struct {
	hostGUID string
	status   Status
	detail   string
}

// NewNotifier returns a notifier that sends through u.
func NewNotifier(u Updater, logger *slog.Logger) *Notifier {
	return &Notifier{
		updater:  u,
		log:      logger,
		pending:  make(map[string]verdict),
		inflight: make(map[string]bool),
		wake:     make(chan struct{}, 1),
	}
}

// ErrQueueFull is returned by Notifier.Notify when MaxPendingHosts hosts
// already wait for their update.
var ErrQueueFull = errors.New("eim notifier queue is full")

// Notify queues the verdict of a host and returns without waiting, whether
// Run is going or not. A detail that is too long or not UTF-8 is cut and
// repaired (TruncateDetail) rather than refused, so that a verdict is never
// lost for its wording. It returns an *InvalidUpdateError for a bad host
// GUID or status and ErrQueueFull when MaxPendingHosts hosts wait already.
func (n *Notifier) Notify(hostGUID string, status Status, detail string) error {
	detail = TruncateDetail(detail)
	if err := validateUpdate(hostGUID, status, detail); err != nil {
		return err
	}
	n.mu.Lock()
	if _, waiting := n.pending[hostGUID]; !waiting {
		if len(n.order) >= MaxPendingHosts {
			n.mu.Unlock()
			return ErrQueueFull
		}
		n.order = append(n.order, hostGUID)
	}
	n.pending[hostGUID] = verdict{hostGUID: hostGUID, status: status, detail: detail}
	n.mu.Unlock()
	n.signal()
	return nil
}

// Pending returns the number of hosts whose verdict waits to be sent.
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.order)
}

// Run sends queued verdicts until ctx ends, then returns nil. Verdicts still
// queued are dropped; an update in flight is cancelled.
func (n *Notifier) Run(ctx context.Context) error {
	workers := n.Workers
	if workers <= 0 {
		workers = DefaultNotifierWorkers
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { n.work(ctx) })
	}
	wg.Wait()
	return nil
}

func (n *Notifier) work(ctx context.Context) {
	for {
		v, ok := n.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		n.send(ctx, v)
		n.finish(v.hostGUID)
	}
}

// next takes the oldest waiting verdict of a host no worker is updating.
func (n *Notifier) next() (verdict, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, host := range n.order {
		if n.inflight[host] {
			continue
		}
		v := n.pending[host]
		delete(n.pending, host)
		n.order = slices.Delete(n.order, i, i+1)
		n.inflight[host] = true
		if len(n.order) > 0 {
			n.signal() // more may be ready for another worker
		}
		return v, true
	}
	return verdict{}, false
}

// finish marks the update of host done; a verdict that arrived meanwhile
// becomes ready.
func (n *Notifier) finish(host string) {
	n.mu.Lock()
	delete(n.inflight, host)
	_, more := n.pending[host]
	n.mu.Unlock()
	if more {
		n.signal()
	}
}

func (n *Notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) send(ctx context.Context, v verdict) {
	err := n.updater.Update(ctx, v.hostGUID, v.status, v.detail)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		return // shutting down
	}
	n.log.LogAttrs(ctx, slog.LevelWarn, "eim status update failed",
		slog.String(logKeyHostGUID, v.hostGUID), slog.String(logKeyStatus, v.status.String()), slog.Any(logKeyError, err))
	if n.OnFailure != nil {
		n.OnFailure(v.hostGUID, err)
	}
}
