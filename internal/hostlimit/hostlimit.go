// Package hostlimit bounds how often one node can make the verifier or the
// manager work: through the bus (its agent's events, renewals and secret
// requests, or an attestation manager's renewals), or through what it
// writes on its own Node (the host it claims).
//
// Whoever holds a host's bus credentials (root on the node, or a thief of
// its credentials) may publish to that host's subjects as fast as the
// network carries it. Each event makes a report (a quote, an appraisal, a
// commit), each renewal mints and records a key, each secret request takes
// one of the key broker's few slots. Unbounded, one node fills the
// database, holds the store's one writer and starves every other node's
// events and secret requests. A Limiter gives each host its own budget
// (golang.org/x/time/rate: a burst, then one turn every interval), so a
// flood costs the verifier a map lookup a message, and the other hosts
// keep theirs.
package hostlimit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"trustedcompute.io/tc/internal/clock"
)

// minSweep is the number of hosts below which idle entries are kept.
const minSweep = 1024

// Limiter gives each host a burst of turns and then one turn every
// interval. It is safe for concurrent use. Its memory is bounded by the
// hosts that used a turn within the last burst × interval: idle hosts are
// forgotten, which is the same as a full budget.
type Limiter struct {
	clk   clock.Clock
	every time.Duration
	burst int

	// limited counts the calls Allow refused, Fold folded and Next put off.
	limited atomic.Uint64

	mu    sync.Mutex
	hosts map[string]*entry
	// sweepAt is the number of entries at which idle ones are dropped.
	sweepAt int
}

type entry struct {
	lim *rate.Limiter
	// deferred: a call of Fold waits for the host's next turn.
	deferred bool
	// told: a refusal was reported since the host's last turn.
	told bool
}

// New returns a Limiter that gives each host burst turns at once and then
// one every interval. interval and burst must be positive.
func New(clk clock.Clock, every time.Duration, burst int) *Limiter {
	if every <= 0 || burst <= 0 {
		panic("hostlimit: the interval and the burst must be positive")
	}
	return &Limiter{clk: clk, every: every, burst: burst, hosts: map[string]*entry{}, sweepAt: minSweep}
}

// entry returns host's entry, made when missing; l.mu is held.
func (l *Limiter) entry(host string, now time.Time) *entry {
	if e, ok := l.hosts[host]; ok {
		return e
	}
	if len(l.hosts) >= l.sweepAt {
		for h, e := range l.hosts {
			if !e.deferred && e.lim.TokensAt(now) >= float64(l.burst) {
				delete(l.hosts, h)
			}
		}
		l.sweepAt = max(2*len(l.hosts), minSweep)
	}
	e := &entry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
	l.hosts[host] = e
	return e
}

// Allow takes a turn of host and reports whether it had one now. When it
// had none, tell is true for the first refusal since its last turn, so
// that a caller logs a flood once, not once a message.
func (l *Limiter) Allow(host string) (ok, tell bool) {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(host, now)
	if e.lim.AllowN(now, 1) {
		e.told = false
		return true, false
	}
	l.limited.Add(1)
	tell = !e.told
	e.told = true
	return false, tell
}

// Next takes host's turn and returns 0 when it has one now; otherwise it
// returns how long until its next turn, which it leaves for a later call.
// Asking again before then takes nothing either, so a caller that waits
// for the turn is never pushed further out by calls made meanwhile.
func (l *Limiter) Next(host string) time.Duration {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(host, now)
	if e.lim.AllowN(now, 1) {
		return 0
	}
	l.limited.Add(1)
	r := e.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return wait
}

// Outcome says what Fold did with a call.
type Outcome int

const (
	// Ran: the host had a turn; fn ran before Fold returned.
	Ran Outcome = iota
	// Deferred: fn runs at the host's next turn.
	Deferred
	// Folded: a call already waits for the host's next turn; this one is
	// dropped into it, and fn does not run.
	Folded
)

// Fold runs fn for host at once when the host has a turn, and otherwise
// once at its next turn: the calls that come before that turn fold into
// the one waiting, so a host gets at most one run a turn however many
// calls it causes, and the last of them still gets a run. Use it where one
// run answers every call made before it (a report quotes the node afresh).
// A deferred fn does not run once ctx has ended.
func (l *Limiter) Fold(ctx context.Context, host string, fn func()) Outcome {
	now := l.clk.Now()
	l.mu.Lock()
	e := l.entry(host, now)
	if e.deferred {
		l.mu.Unlock()
		l.limited.Add(1)
		return Folded
	}
	wait := e.lim.ReserveN(now, 1).DelayFrom(now)
	if wait <= 0 {
		l.mu.Unlock()
		fn()
		return Ran
	}
	e.deferred = true
	l.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-l.clk.After(wait):
		}
		// Cleared before fn runs: a call made while fn runs may show what
		// fn did not see, so it waits for a turn of its own.
		l.mu.Lock()
		e.deferred = false
		l.mu.Unlock()
		if ctx.Err() == nil {
			fn()
		}
	}()
	return Deferred
}

// Limited is the number of calls Allow refused, Fold folded and Next put
// off.
func (l *Limiter) Limited() uint64 { return l.limited.Load() }

// Len is the number of hosts the Limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}
