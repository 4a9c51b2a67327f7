package aas

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
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
