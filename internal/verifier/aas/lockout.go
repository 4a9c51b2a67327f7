package aas

import (
	"context"
	"net"
	"net/netip"
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
