package aas

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The peers of the lockout tests.
var (
	peerA = request{remoteAddr: "203.0.113.7:40000"}
	peerB = request{remoteAddr: "198.51.100.9:40001"}
)

// failAdmin fails n admin logins from peer.
func failAdmin(t *testing.T, f *fixture, from request, n int) {
	t.Helper()
	for i := range n {
		if c := f.loginFrom(t, from, "admin", "wrong password 123").Code; c != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, c)
		}
	}
}

// The attack of the review: five failed admin logins from one source locked
// the admin out for everyone.
func TestFailuresFromOneSourceDoNotLockTheUserOutForAnother(t *testing.T) {
	f := newFixture(t)
	failAdmin(t, f, peerA, 5)
	if c := f.loginFrom(t, peerB, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("right password from B after 5 failures from A: status %d, want 200", c)
	}
	if c := f.loginFrom(t, peerA, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("right password from A after its 5 failures: status %d, want 401 (A stays locked out)", c)
	}
	// B's success does not lift A's lock either.
	if c := f.loginFrom(t, peerA, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("right password from A after B logged in: status %d, want 401", c)
	}
	f.clock.Advance(15 * time.Minute)
	if c := f.loginFrom(t, peerA, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("right password from A after the lock: status %d, want 200", c)
	}
}

func TestAForgedForwardedForDoesNotChangeTheSource(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		forged := peerA
		forged.header = http.Header{"X-Forwarded-For": {fmt.Sprintf("10.0.0.%d", i)}, "X-Real-Ip": {fmt.Sprintf("10.0.1.%d", i)}}
		failAdmin(t, f, forged, 1)
	}
	if c := f.loginFrom(t, peerA, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("right password from A after 5 failures under forged headers: status %d, want 401", c)
	}
}

func TestAddressesOfOneIPv6SlashSixtyFourAreOneSource(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		failAdmin(t, f, request{remoteAddr: fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)}, 1)
	}
	if c := f.loginFrom(t, request{remoteAddr: "[2001:db8:1:2:ffff::1]:443"}, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("right password from the same /64: status %d, want 401", c)
	}
	if c := f.loginFrom(t, request{remoteAddr: "[2001:db8:1:3::1]:443"}, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("right password from another /64: status %d, want 200", c)
	}
}

func TestSprayingManyUsersFromOneSourceIsThrottled(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice", "alice's long password")
	// 20 guesses, two per known user (no user is locked out), the rest on
	// unknown users: they count alike.
	users := []string{"admin", "alice", "admin", "alice"}
	for i := range 16 {
		users = append(users, fmt.Sprintf("nobody-%d", i))
	}
	for i, user := range users {
		if c := f.loginFrom(t, peerA, user, "Winter2026!").Code; c != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, c)
		}
	}
	if c := f.loginFrom(t, peerA, "alice", "alice's long password").Code; c != http.StatusUnauthorized {
		t.Fatalf("right password of alice from the spraying source: status %d, want 401 (throttled)", c)
	}
	if c := f.loginFrom(t, peerB, "alice", "alice's long password").Code; c != http.StatusOK {
		t.Fatalf("right password of alice from another source: status %d, want 200", c)
	}
	f.clock.Advance(15 * time.Minute)
	if c := f.loginFrom(t, peerA, "alice", "alice's long password").Code; c != http.StatusOK {
		t.Fatalf("right password of alice from A after the throttle: status %d, want 200", c)
	}
}

func TestFewerFailuresThanTheSourceLimitDoNotThrottle(t *testing.T) {
	f := newFixture(t)
	for i := range 19 {
		f.loginFrom(t, peerA, fmt.Sprintf("nobody-%d", i), "Winter2026!")
	}
	if c := f.loginFrom(t, peerA, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("right password after 19 failures: status %d, want 200", c)
	}
}

func TestALockForASourceSurvivesARestart(t *testing.T) {
	f := newFixture(t)
	failAdmin(t, f, peerA, 5)
	a, err := New(context.Background(), testConfig(f.clock), f.store, f.ca, f.creds, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ContextWithPeer(t.Context(), peerA.remoteAddr), "admin", adminPassword); err == nil {
		t.Fatal("a new AAS over the same store let A log in while locked")
	}
	if _, err := a.Login(ContextWithPeer(t.Context(), peerB.remoteAddr), "admin", adminPassword); err != nil {
		t.Fatalf("a new AAS refused B: %v", err)
	}
}

func TestAPasswordChangeLiftsTheLocksOfEverySource(t *testing.T) {
	f := newFixture(t)
	failAdmin(t, f, peerA, 5)
	failAdmin(t, f, peerB, 5)
	u, err := f.store.UserByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	rec := f.do(t, request{method: "PUT", path: "/aas/v1/users/" + u.ID, token: f.adminToken(t),
		contentType: "application/json", body: `{"password":"a brand new password"}`})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("password change: status %d %s", rec.Code, rec.Body)
	}
	for _, from := range []request{peerA, peerB} {
		if c := f.loginFrom(t, from, "admin", "a brand new password").Code; c != http.StatusOK {
			t.Errorf("login from %s after the password change: status %d, want 200", from.remoteAddr, c)
		}
	}
}

// A password sprayer that spreads its guesses over the replicas behind a
// load balancer: each replica counted the source's failures in its own
// memory, so two replicas let it guess twice as many passwords.
func TestSprayingThroughTwoReplicasIsThrottledAtTheSameCount(t *testing.T) {
	f := newFixture(t)
	other, err := New(context.Background(), testConfig(f.clock), f.store, f.ca, f.creds, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	f.createUser(t, "alice", "alice's long password")
	ctx := ContextWithPeer(t.Context(), peerA.remoteAddr)
	for i := range 20 { // the source limit, half through each replica
		if i%2 == 1 {
			if _, err := other.Login(ctx, fmt.Sprintf("nobody-%d", i), "Winter2026!"); err == nil {
				t.Fatalf("guess %d logged in", i+1)
			}
			continue
		}
		if c := f.loginFrom(t, peerA, fmt.Sprintf("nobody-%d", i), "Winter2026!").Code; c != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, c)
		}
	}
	if c := f.loginFrom(t, peerA, "alice", "alice's long password").Code; c != http.StatusUnauthorized {
		t.Fatalf("right password of alice through the first replica: status %d, want 401 (throttled)", c)
	}
	if _, err := other.Login(ctx, "alice", "alice's long password"); err == nil {
		t.Fatal("the second replica let the throttled source log in")
	}
	// A replica started now refuses it too: the throttle is not in memory.
	restarted, err := New(context.Background(), testConfig(f.clock), f.store, f.ca, f.creds, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Login(ctx, "alice", "alice's long password"); err == nil {
		t.Fatal("a restarted replica let the throttled source log in")
	}
	if _, err := restarted.Login(ContextWithPeer(t.Context(), peerB.remoteAddr), "alice", "alice's long password"); err != nil {
		t.Fatalf("another source: %v", err)
	}
	f.clock.Advance(15 * time.Minute)
	if _, err := other.Login(ctx, "alice", "alice's long password"); err != nil {
		t.Fatalf("the throttled source after the refusal: %v", err)
	}
}

func TestSourceOf(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"an IPv4 peer is its address", "203.0.113.7:40000", "203.0.113.7"},
		{"an IPv6 peer is its /64", "[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"an IPv4-mapped IPv6 peer is its IPv4 address", "[::ffff:203.0.113.7]:1", "203.0.113.7"},
		{"a zone is dropped", "[fe80::1%eth0]:1", "fe80::/64"},
		{"a bare address is accepted", "203.0.113.7", "203.0.113.7"},
		{"an unparsable peer is the unknown source", "@", unknownSource},
		{"an empty peer is the unknown source", "", unknownSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceOf(tt.addr); got != tt.want {
				t.Errorf("sourceOf(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func FuzzSourceOf(f *testing.F) {
	for _, s := range []string{"203.0.113.7:40000", "[2001:db8::1]:443", "[::ffff:1.2.3.4]:1", "[fe80::1%eth0]:1", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		got := sourceOf(addr)
		if got == unknownSource {
			return
		}
		if a, err := netip.ParseAddr(got); err == nil {
			if !a.Is4() {
				t.Fatalf("sourceOf(%q) = %q: an address that is not IPv4", addr, got)
			}
			return
		}
		if p, err := netip.ParsePrefix(got); err != nil || p.Bits() != 64 || !p.Addr().Is6() {
			t.Fatalf("sourceOf(%q) = %q: neither IPv4, an IPv6 /64 nor unknown", addr, got)
		}
	})
}

// The clients of the lockout tests behind the proxy 10.1.0.5.
var (
	proxy = "10.1.0.5:443"
	viaX  = request{remoteAddr: proxy, header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
	viaY  = request{remoteAddr: proxy, header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}}
)

func trustProxies(prefixes ...string) func(*Config) {
	return func(c *Config) {
		for _, p := range prefixes {
			c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

// Behind an ingress every login came from the ingress's address: five
// failed admin logins by anyone on the Internet locked the admin out for
// every client of the ingress, and twenty failures of any users throttled
// them all. With the ingress trusted, each client is its own source.
func TestClientsBehindATrustedProxyAreLockedOutApart(t *testing.T) {
	f := newFixture(t, trustProxies("10.1.0.0/16"))
	failAdmin(t, f, viaX, 5)
	if c := f.loginFrom(t, viaY, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("right password from Y through the proxy after 5 failures from X: status %d, want 200", c)
	}
	if c := f.loginFrom(t, viaX, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("right password from X through the proxy after its 5 failures: status %d, want 401", c)
	}
	// X cannot pass for another client: what it writes stands left of
	// the address the proxy appends.
	forged := viaX
	forged.header = http.Header{"X-Forwarded-For": {"192.0.2.44, 203.0.113.7"}}
	if c := f.loginFrom(t, forged, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("X naming another client before its own address: status %d, want 401 (still X)", c)
	}
	// A client that reaches the verifier directly is not a proxy: its
	// header is not read, so it cannot lock Y out by naming Y.
	direct := request{remoteAddr: "192.0.2.77:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}}
	failAdmin(t, f, direct, 5)
	if c := f.loginFrom(t, viaY, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("Y after a direct client failed 5 logins naming Y: status %d, want 200", c)
	}
}

func TestResolveSource(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8")}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"a direct client is its address", "203.0.113.7:1", nil, "203.0.113.7"},
		{"a direct client's header is not read", "203.0.113.7:1", []string{"198.51.100.9"}, "203.0.113.7"},
		{"a trusted proxy's client is the address it appended", proxy, []string{"198.51.100.9"}, "198.51.100.9"},
		{"two trusted proxies: the nearest untrusted hop", proxy, []string{"198.51.100.9, 10.1.2.3"}, "198.51.100.9"},
		{"hops in several header values count in order", proxy, []string{"192.0.2.1", "198.51.100.9", "10.1.2.3"}, "198.51.100.9"},
		{"what the client wrote left of its address is not read", proxy, []string{"10.1.9.9, 198.51.100.9"}, "198.51.100.9"},
		{"a proxy with no header is the source", proxy, nil, "10.1.0.5"},
		{"every hop a trusted proxy: the first one", proxy, []string{"10.1.7.7, 10.1.8.8"}, "10.1.7.7"},
		{"a hop that is no address: the nearest proxy", proxy, []string{"198.51.100.9, bogus"}, "10.1.0.5"},
		{"a hop with a port", proxy, []string{"198.51.100.9:4711"}, "198.51.100.9"},
		{"an IPv6 client behind an IPv6 proxy is its /64", "[fd00::1]:443", []string{"2001:db8:1:2::77"}, "2001:db8:1:2::/64"},
		{"a bracketed IPv6 hop", "[fd00::1]:443", []string{"[2001:db8:1:2::77]"}, "2001:db8:1:2::/64"},
		{"an unparsable peer", "not an address", []string{"198.51.100.9"}, unknownSource},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveSource(peer{remoteAddr: tt.remote, forwardedFor: tt.xff}, trusted); got != tt.want {
				t.Errorf("source = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.1.0.0/16", " 192.0.2.5 ", "fd00::/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.0/16", "192.0.2.5/32", "fd00::/8", "2001:db8::1/128"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "10.0.0.0/33", "proxy.example", ""} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
	if _, err := New(context.Background(), Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, newFakeStore(), nil, nil, discardLogger()); err == nil || !strings.Contains(err.Error(), "every address") {
		t.Errorf("New with a proxy trusting every address: %v, want refused", err)
	}
}

// FuzzResolveSource plays X-Forwarded-For headers a client writes: the
// source is a source (an IPv4 address, an IPv6 /64 or unknown), the header
// of a peer that is no trusted proxy is never read, and behind a trusted
// proxy the source is the peer or one of the header's addresses.
func FuzzResolveSource(f *testing.F) {
	for _, s := range []string{"198.51.100.9", "192.0.2.1, 198.51.100.9", "10.1.7.7, 10.1.8.8", "bogus, 10.1.2.3", "[2001:db8::1]:80", ",,", ""} {
		f.Add("10.1.0.5:443", s)
		f.Add("203.0.113.7:1", s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got := resolveSource(peer{remoteAddr: remote, forwardedFor: []string{xff}}, trusted)
		if got == unknownSource {
			return
		}
		if a, err := netip.ParseAddr(got); err == nil && !a.Is4() {
			t.Fatalf("resolveSource(%q, %q) = %q: an address that is not IPv4", remote, xff, got)
		} else if p, perr := netip.ParsePrefix(got); err != nil && (perr != nil || p.Bits() != 64 || !p.Addr().Is6()) {
			t.Fatalf("resolveSource(%q, %q) = %q: neither IPv4, an IPv6 /64 nor unknown", remote, xff, got)
		}
		if got == sourceOf(remote) {
			return
		}
		if peerAddr, ok := parseHost(remote); !ok || !trusted[0].Contains(peerAddr) {
			t.Fatalf("resolveSource(%q, %q) = %q: a peer that is no proxy named its source", remote, xff, got)
		}
		for hop := range strings.SplitSeq(xff, ",") {
			if sourceOf(strings.TrimSpace(hop)) == got {
				return
			}
		}
		t.Fatalf("resolveSource(%q, %q) = %q: neither the peer nor a hop of the header", remote, xff, got)
	})
}
