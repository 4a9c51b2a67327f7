package dashboard_test

import (
	"net"
	"net/http"
	"net/http/cookiejar"
	"testing"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// TestDashboardLoginFailuresLockOutTheirSourceOnly: the dashboard passes the
// TCP peer to the AAS, so five failed admin logins from one address lock the
// admin out of that address only, not of the dashboard for everyone.
func TestDashboardLoginFailuresLockOutTheirSourceOnly(t *testing.T) {
	v := startWithDashboard(t)
	base := "https://" + v.DashboardAddr()
	attacker, admin := clientFrom(t, v, "127.0.0.2"), clientFrom(t, v, "127.0.0.3")
	for i := range 5 {
		if res := dashboardLogin(t, attacker, base, "admin", "wrong password 123"); res.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, res.code)
		}
	}
	if res := dashboardLogin(t, admin, base, "admin", verifiertest.AdminPassword); res.code != http.StatusOK {
		t.Fatalf("admin from another address: status %d at %s, want 200", res.code, res.path)
	}
	if res := dashboardLogin(t, attacker, base, "admin", verifiertest.AdminPassword); res.code != http.StatusUnauthorized {
		t.Fatalf("admin from the failing address: status %d, want 401 (locked out)", res.code)
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
