package aas

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Failed logins are counted per (user, source), the way Keycloak's brute
// force detection and the OWASP authentication cheat sheet do it: LockoutFailures
// failures of a user from one source within LockoutWindow lock that user out
// for that source only, for LockoutDuration. Before, they locked the account
// for everyone, so anyone who could reach the AAS could keep the admin out
// by failing five logins every fifteen minutes. The (user, source) failures
// and locks are kept in the store: replicas share them and they survive a
// restart.
//
// Across users, a source that fails SourceFailures logins within
// LockoutWindow is throttled for LockoutDuration: every login from it is
// refused without a password check, which slows password spraying. This
// state is in memory, per replica, and bounded to MaxSources sources (the
// least recently failed are forgotten first).
//
// The source is the client's IP address taken from the TCP peer, never from
// X-Forwarded-For (the verifier has no trusted-proxy setting): an IPv4
// address as is, an IPv6 address as its /64, since one client usually holds
// a whole /64. Behind a reverse proxy every client has the proxy's address.

// sourceKey is the context key of a login's source.
type sourceKey struct{}

// ContextWithPeer returns ctx carrying the source of the logins made with it:
// remoteAddr is the TCP peer's address (http.Request.RemoteAddr). A login
// without one counts under the one source "unknown".
func ContextWithPeer(ctx context.Context, remoteAddr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, sourceOf(remoteAddr))
}

// unknownSource is the source of logins whose peer is unknown or unparsable.
const unknownSource = "unknown"

func sourceFrom(ctx context.Context) string {
	if s, ok := ctx.Value(sourceKey{}).(string); ok {
		return s
	}
	return unknownSource
}

// sourceOf returns the source of a peer address "host:port" (or a bare
// host): the IPv4 address, or the /64 of an IPv6 address.
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return unknownSource
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64) // cannot fail: 64 bits of an IPv6 address
	return p.String()
}

// throttle counts failed logins per source, across users, in fixed windows.
type throttle struct {
	failures   int           // failures within window ...
	window     time.Duration // ...
	hold       time.Duration // ... refuse the source this long
	maxSources int

	mu    sync.Mutex
	lru   *list.List // of *sourceState, most recently failed first
	index map[string]*list.Element
}

type sourceState struct {
	source    string
	start     time.Time // of the current window
	count     int       // failures since start
	refuseTil time.Time
}

func newThrottle(failures int, window, hold time.Duration, maxSources int) *throttle {
	return &throttle{failures: failures, window: window, hold: hold, maxSources: maxSources,
		lru: list.New(), index: map[string]*list.Element{}}
}

// refused reports whether logins from source are refused at now.
func (t *throttle) refused(source string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.index[source]
	if !ok || !now.Before(e.Value.(*sourceState).refuseTil) {
		return false
	}
	t.lru.MoveToFront(e) // a source that keeps trying is forgotten last
	return true
}

// fail counts a failed login from source at now; it returns the time until
// which the source is refused when this failure throttled it.
func (t *throttle) fail(source string, now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.index[source]
	if ok {
		t.lru.MoveToFront(e)
	} else {
		if t.lru.Len() >= t.maxSources {
			oldest := t.lru.Back()
			delete(t.index, oldest.Value.(*sourceState).source)
			t.lru.Remove(oldest)
		}
		e = t.lru.PushFront(&sourceState{source: source, start: now})
		t.index[source] = e
	}
	s := e.Value.(*sourceState)
	if now.Sub(s.start) >= t.window {
		s.start, s.count = now, 0
	}
	s.count++
	if s.count < t.failures {
		return time.Time{}, false
	}
	s.start, s.count, s.refuseTil = now, 0, now.Add(t.hold)
	return s.refuseTil, true
}

// len returns the number of sources tracked.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
