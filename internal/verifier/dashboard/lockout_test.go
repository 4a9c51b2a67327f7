package dashboard_test

import (
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"testing"

	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// TestDashboardLoginFailuresLockOutTheirSourceOnly: the dashboard passes the
// TCP peer to the AAS, so five failed admin logins from one address lock the
// admin out of that address only, not of the dashboard for everyone.
func TestDashboardLoginFailuresLockOutTheirSourceOnly(t *testing.T) {
	v := startWithDashboard(t)
	wantLockedOutApart(t, "https://"+v.DashboardAddr(), clientFrom(t, v, "127.0.0.2"), clientFrom(t, v, "127.0.0.3"))
}

// wantLockedOutApart fails five admin logins of attacker, then wants the
// admin's password to log admin in and attacker still locked out.
func wantLockedOutApart(t *testing.T, base string, attacker, admin *http.Client) {
	t.Helper()
	for i := range 5 {
		if res := dashboardLogin(t, attacker, base, "admin", "wrong password 123"); res.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, res.code)
		}
	}
	if res := dashboardLogin(t, admin, base, "admin", verifiertest.AdminPassword); res.code != http.StatusOK {
		t.Fatalf("admin from another client: status %d at %s, want 200", res.code, res.path)
	}
	if res := dashboardLogin(t, attacker, base, "admin", verifiertest.AdminPassword); res.code != http.StatusUnauthorized {
		t.Fatalf("admin from the failing client: status %d, want 401 (locked out)", res.code)
	}
}

// clientFrom is browserClient with its connections made from the loopback
// address local.
func clientFrom(t *testing.T, v *verifiertest.Verifier, local string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Jar: jar, Transport: &http.Transport{
		TLSClientConfig: api.ClientTLSConfig(v.Roots),
		DialContext:     d.DialContext,
	}}
}

// TestDashboardLoginsThroughATrustedProxyLockOutTheirClientOnly plays the
// dashboard behind an ingress (the loopback address 127.0.0.9, listed in
// the AAS's trusted proxies): every login arrives from the ingress, and
// five failed admin logins of one client behind it must not lock the admin
// out for the others.
func TestDashboardLoginsThroughATrustedProxyLockOutTheirClientOnly(t *testing.T) {
	v := verifiertest.Start(t, t.TempDir(), func(c *verifier.Config) {
		c.Dashboard = verifier.DashboardConfig{Listen: "127.0.0.1:0"}
		c.AAS.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
	})
	wantLockedOutApart(t, "https://"+v.DashboardAddr(),
		forwardedFor(clientFrom(t, v, "127.0.0.9"), "203.0.113.7"), forwardedFor(clientFrom(t, v, "127.0.0.9"), "198.51.100.9"))
}

// forwardedFor makes c's requests carry X-Forwarded-For: client, as a
// reverse proxy in front of the dashboard adds it.
func forwardedFor(c *http.Client, client string) *http.Client {
	c.Transport = forwarding{rt: c.Transport, client: client}
	return c
}

type forwarding struct {
	rt     http.RoundTripper
	client string
}

func (f forwarding) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.client)
	return f.rt.RoundTrip(r)
}
