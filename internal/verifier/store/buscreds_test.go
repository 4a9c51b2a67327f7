package store

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// TestBusCredentials runs the bus credential and disabled host tables through
// every backend: SQLite file, SQLite memory and PostgreSQL
// (TC_TEST_POSTGRES_URL).
func TestBusCredentials(t *testing.T) {
	t.Parallel()
	runOnBackends(t, []storeTest{
		{"a revoked key stays revoked at its first revocation time", testBusKeyStaysRevoked},
		{"revoking an owner revokes its live keys only", testRevokeBusKeysOfOwner},
		{"expired keys are neither listed as revoked nor kept", testPruneBusKeys},
		{"a key without an owner or expiry is refused", testBusKeyRequiredFields},
		{"a host is disabled, enabled again, and its mark goes with it", testDisableHost},
		{"disabling or enabling an unknown host is not found", testDisableUnknownHost},
	})
}

func busKey(pub, kind, owner string, expires time.Time) BusKey {
	return BusKey{PublicKey: pub, Kind: kind, Owner: owner, ExpiresAt: expires}
}

func publicKeys(ks []BusKey) []string {
	return fieldOf(ks, func(k BusKey) string { return k.PublicKey })
}

func testBusKeyStaysRevoked(t *testing.T, s *Store) {
	ctx := t.Context()
	k := busKey("U1", BusKeyAgent, "h1", t0.Add(time.Hour))
	must(t, "RecordBusKeys", s.RecordBusKeys(ctx, k))
	got, err := s.RevokedBusKeys(ctx, t0)
	must(t, "RevokedBusKeys", err)
	if len(got) != 0 {
		t.Fatalf("an issued key is listed as revoked: %+v", got)
	}
	k.RevokedAt = t0.Add(time.Minute)
	must(t, "RecordBusKeys revoked", s.RecordBusKeys(ctx, k))
	// Recording the key again, unrevoked or revoked later, keeps the first revocation.
	must(t, "RecordBusKeys again", s.RecordBusKeys(ctx, busKey("U1", BusKeyAgent, "h1", t0.Add(time.Hour))))
	k2 := k
	k2.RevokedAt = t0.Add(2 * time.Minute)
	must(t, "RecordBusKeys later", s.RecordBusKeys(ctx, k2))
	got, err = s.RevokedBusKeys(ctx, t0)
	must(t, "RevokedBusKeys", err)
	if len(got) != 1 || got[0] != k {
		t.Fatalf("RevokedBusKeys = %+v, want [%+v]", got, k)
	}
}

func testRevokeBusKeysOfOwner(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "RecordBusKeys", s.RecordBusKeys(ctx,
		busKey("UA1", BusKeyAgent, "h1", t0.Add(time.Hour)),
		busKey("UA2", BusKeyAgent, "h1", t0.Add(2*time.Hour)),
		busKey("UOLD", BusKeyAgent, "h1", t0.Add(-time.Second)),
		busKey("UB1", BusKeyAgent, "h2", t0.Add(time.Hour)),
		busKey("UM1", BusKeyManager, "h1", t0.Add(time.Hour)),
	))
	n, err := s.RevokeBusKeys(ctx, BusKeyAgent, "h1", t0)
	must(t, "RevokeBusKeys", err)
	if n != 2 {
		t.Fatalf("RevokeBusKeys revoked %d keys, want 2", n)
	}
	got, err := s.RevokedBusKeys(ctx, t0)
	must(t, "RevokedBusKeys", err)
	if want := []string{"UA1", "UA2"}; !slices.Equal(publicKeys(got), want) {
		t.Fatalf("revoked %v, want %v (not another host's, not a manager of the same name, not an expired one)", publicKeys(got), want)
	}
	for _, k := range got {
		if !k.RevokedAt.Equal(t0) {
			t.Errorf("%s revoked at %s, want %s", k.PublicKey, k.RevokedAt, t0)
		}
	}
	if n, err := s.RevokeBusKeys(ctx, BusKeyAgent, "h1", t0.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("revoking again = %d, %v; want 0 keys", n, err)
	}
	all, err := s.BusKeysOf(ctx, BusKeyAgent, "h1")
	must(t, "BusKeysOf", err)
	if want := []string{"UA1", "UA2", "UOLD"}; !slices.Equal(publicKeys(all), want) {
		t.Fatalf("BusKeysOf = %v, want %v", publicKeys(all), want)
	}
}

func testPruneBusKeys(t *testing.T, s *Store) {
	ctx := t.Context()
	old := busKey("UOLD", BusKeyAgent, "h1", t0.Add(-time.Second))
	old.RevokedAt = t0.Add(-time.Hour)
	live := busKey("ULIVE", BusKeyManager, "m", t0.Add(time.Hour))
	live.RevokedAt = t0
	must(t, "RecordBusKeys", s.RecordBusKeys(ctx, old, live))
	got, err := s.RevokedBusKeys(ctx, t0)
	must(t, "RevokedBusKeys", err)
	if want := []string{"ULIVE"}; !slices.Equal(publicKeys(got), want) {
		t.Fatalf("RevokedBusKeys = %v, want %v", publicKeys(got), want)
	}
	n, err := s.PruneBusKeys(ctx, t0)
	must(t, "PruneBusKeys", err)
	if n != 1 || count(t, s, "bus_credentials", "") != 1 {
		t.Fatalf("pruned %d, %d rows left; want 1 pruned, 1 left", n, count(t, s, "bus_credentials", ""))
	}
}

func testBusKeyRequiredFields(t *testing.T, s *Store) {
	for _, k := range []BusKey{
		busKey("", BusKeyAgent, "h1", t0),
		busKey("U1", "", "h1", t0),
		busKey("U1", BusKeyAgent, "", t0),
		busKey("U1", BusKeyAgent, "h1", time.Time{}),
	} {
		if err := s.RecordBusKeys(t.Context(), k); err == nil {
			t.Errorf("RecordBusKeys(%+v) succeeded", k)
		}
	}
	if n := count(t, s, "bus_credentials", ""); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
}

func testDisableHost(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	must(t, "CreateHost", s.CreateHost(ctx, host("h2", "g1")))
	if at, err := s.HostDisabled(ctx, "h1"); err != nil || !at.IsZero() {
		t.Fatalf("a new host: HostDisabled = %s, %v; want not disabled", at, err)
	}
	must(t, "DisableHost", s.DisableHost(ctx, "h1", t0))
	must(t, "DisableHost again", s.DisableHost(ctx, "h1", t0.Add(time.Hour)))
	if at, err := s.HostDisabled(ctx, "h1"); err != nil || !at.Equal(t0) {
		t.Fatalf("HostDisabled = %s, %v; want %s (the first time)", at, err, t0)
	}
	all, err := s.DisabledHosts(ctx)
	must(t, "DisabledHosts", err)
	if len(all) != 1 || !all["h1"].Equal(t0) {
		t.Fatalf("DisabledHosts = %v, want h1 only", all)
	}
	allowed, err := s.HostsAllowed(ctx)
	must(t, "HostsAllowed", err)
	if want := map[string]bool{"h1": false, "h2": true}; !maps.Equal(allowed, want) {
		t.Fatalf("HostsAllowed = %v, want %v (a host not registered is missing)", allowed, want)
	}
	must(t, "EnableHost", s.EnableHost(ctx, "h1"))
	must(t, "EnableHost again", s.EnableHost(ctx, "h1"))
	if at, err := s.HostDisabled(ctx, "h1"); err != nil || !at.IsZero() {
		t.Fatalf("after enable: HostDisabled = %s, %v", at, err)
	}
	if allowed, err := s.HostsAllowed(ctx); err != nil || !allowed["h1"] {
		t.Fatalf("after enable: HostsAllowed = %v, %v", allowed, err)
	}
	must(t, "DisableHost h2", s.DisableHost(ctx, "h2", t0))
	must(t, "DeleteHost h2", s.DeleteHost(ctx, "h2"))
	if n := count(t, s, "disabled_hosts", ""); n != 0 {
		t.Fatalf("%d disabled marks left after the host was deleted", n)
	}
}

func testDisableUnknownHost(t *testing.T, s *Store) {
	ctx := t.Context()
	wantErr(t, "DisableHost", s.DisableHost(ctx, "nope", t0), ErrNotFound)
	wantErr(t, "EnableHost", s.EnableHost(ctx, "nope"), ErrNotFound)
}
