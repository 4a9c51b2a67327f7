package aas

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
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
// refused without a password check, which slows password spraying. These
// counts and refusals are in the store too (failSource), so replicas share
// them: before, each replica counted in its own memory and N replicas let
// a source try N times as many passwords.
//
// The source is the client's IP address: an IPv4 address as is, an IPv6
// address as its /64, since one client usually holds a whole /64. It is the
// TCP peer's, unless that peer is one of Config.TrustedProxies: then it is
// the nearest address in X-Forwarded-For that is not a trusted proxy, read
// from the right, where each trusted proxy appends the address it saw (what
// a client writes there itself stands to the left and is never read past a
// peer that is not trusted). Without trusted proxies X-Forwarded-For is
// ignored, and behind a reverse proxy every client has the proxy's address.

// peerKey is the context key of a login's peer.
type peerKey struct{}

// peer is what a login's request says of its client.
type peer struct {
	remoteAddr   string   // the TCP peer, http.Request.RemoteAddr
	forwardedFor []string // the X-Forwarded-For header's values
}

// ContextWithPeer returns ctx carrying the TCP peer of the logins made with
// it: remoteAddr is http.Request.RemoteAddr. A login without one counts
// under the one source "unknown".
func ContextWithPeer(ctx context.Context, remoteAddr string) context.Context {
	return context.WithValue(ctx, peerKey{}, peer{remoteAddr: remoteAddr})
}

// ContextWithRequestPeer returns ctx carrying the client of the logins made
// with it as r says: its TCP peer and, for the AAS to read when that peer is
// a trusted proxy, its X-Forwarded-For header.
func ContextWithRequestPeer(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, peerKey{}, peer{remoteAddr: r.RemoteAddr, forwardedFor: r.Header.Values("X-Forwarded-For")})
}

// unknownSource is the source of logins whose peer is unknown or unparsable.
const unknownSource = "unknown"

// sourceFrom returns the source of the logins made with ctx.
func (a *AAS) sourceFrom(ctx context.Context) string {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok {
		return unknownSource
	}
	return resolveSource(p, a.cfg.TrustedProxies)
}

// resolveSource returns the source of p's logins given the trusted proxies.
func resolveSource(p peer, trusted []netip.Prefix) string {
	addr, ok := parseHost(p.remoteAddr)
	if !ok {
		return unknownSource
	}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(t netip.Prefix) bool { return t.Contains(a) })
	}
	if !isTrusted(addr) {
		return sourceOfAddr(addr)
	}
	var hops []string
	for _, v := range p.forwardedFor {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHost(hops[i])
		if !ok {
			// Not what a proxy appends: the client wrote it. The nearest
			// trusted proxy stands for the client.
			return sourceOfAddr(addr)
		}
		if !isTrusted(hop) {
			return sourceOfAddr(hop)
		}
		addr = hop
	}
	return sourceOfAddr(addr) // every hop a trusted proxy: the first one sent it
}

// parseHost parses an address "host:port", "[v6]:port" or a bare host.
func parseHost(s string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// sourceOf returns the source of a peer address "host:port" (or a bare
// host): the IPv4 address, or the /64 of an IPv6 address.
func sourceOf(remoteAddr string) string {
	addr, ok := parseHost(remoteAddr)
	if !ok {
		return unknownSource
	}
	return sourceOfAddr(addr)
}

// sourceOfAddr is the source of addr: itself, or its /64 for IPv6.
func sourceOfAddr(addr netip.Addr) string {
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64) // cannot fail: 64 bits of an IPv6 address
	return p.String()
}

// ParseTrustedProxies parses the trusted proxies of the configuration: each
// a CIDR prefix ("10.0.0.0/8", "fd00::/8") or one address.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("trusted proxy %q is neither a CIDR prefix nor an address", s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err := checkTrustedProxy(p); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// checkTrustedProxy refuses a prefix that is not one, or that trusts every
// address: any client could then name its own source.
func checkTrustedProxy(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("trusted proxy %s is not a valid prefix", p)
	case p.Bits() == 0:
		return fmt.Errorf("trusted proxy %s trusts every address: any client could name its own source", p)
	}
	return nil
}
