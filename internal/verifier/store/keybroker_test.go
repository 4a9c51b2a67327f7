package store

import (
	"bytes"
	"testing"
	"time"
)

// TestKeyBroker runs the key broker's secrets through every backend:
// SQLite file, SQLite memory and PostgreSQL (TC_TEST_POSTGRES_URL).
func TestKeyBroker(t *testing.T) {
	t.Parallel()
	runOnBackends(t, []storeTest{
		{"a created secret reads back with its value and without it in the list", testBrokerSecretRoundTrip},
		{"a secret's value is sealed at rest, never stored in clear", testBrokerSecretSealedAtRest},
		{"creating a secret with a taken name or id conflicts", testBrokerSecretConflict},
		{"a new value is the next version and the old value is gone", testBrokerSecretRotation},
		{"a policy change keeps the version and the value", testBrokerSecretPolicyChange},
		{"deleting a secret deletes its value", testDeleteBrokerSecret},
		{"operations on an unknown secret report not found", testUnknownBrokerSecret},
		{"a value moved to another secret does not open", testBrokerValueMoved},
	})
}

func brokerSecret(id string) BrokerSecret {
	return BrokerSecret{ID: id, Name: "name-" + id, Policy: []byte(`{"host_ids":["h1"]}`), CreatedAt: t0}
}

func testBrokerSecretRoundTrip(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("volume key 1")))
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k0"), []byte("volume key 0")))
	got, value, err := s.BrokerSecretValue(ctx, "k1")
	must(t, "BrokerSecretValue", err)
	if got.Name != "name-k1" || got.Version != 1 || string(got.Policy) != `{"host_ids":["h1"]}` ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Errorf("secret %+v", got)
	}
	if string(value) != "volume key 1" {
		t.Errorf("value %q", value)
	}
	list, err := s.ListBrokerSecrets(ctx)
	must(t, "ListBrokerSecrets", err)
	if len(list) != 2 || list[0].ID != "k0" || list[1].ID != "k1" {
		t.Fatalf("list %+v, want k0, k1 by name", list)
	}
}

func testBrokerSecretSealedAtRest(t *testing.T, s *Store) {
	ctx := t.Context()
	plain := []byte("a data volume key nobody may read at rest")
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), plain))
	var raw []byte
	must(t, "read raw", s.rdb.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, BrokerValueName("k1", 1)).Scan(&raw))
	if !sealed(raw) || bytes.Contains(raw, plain) {
		t.Fatalf("the stored value is not sealed: %q", raw)
	}
}

func testBrokerSecretConflict(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("v")))
	sameName := brokerSecret("k2")
	sameName.Name = "name-k1"
	wantErr(t, "same name", s.CreateBrokerSecret(ctx, sameName, []byte("v")), ErrConflict)
	wantErr(t, "same id", s.CreateBrokerSecret(ctx, BrokerSecret{ID: "k1", Name: "other"}, []byte("v")), ErrConflict)
	if n := count(t, s, "secrets", "name LIKE 'key-broker/%'"); n != 1 {
		t.Errorf("%d broker values stored after conflicts, want 1", n)
	}
}

func testBrokerSecretRotation(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("old")))
	later := t0.Add(time.Hour)
	got, err := s.UpdateBrokerSecret(ctx, "k1", nil, []byte("new"), later)
	must(t, "UpdateBrokerSecret", err)
	if got.Version != 2 || !got.UpdatedAt.Equal(later) || string(got.Policy) != `{"host_ids":["h1"]}` {
		t.Errorf("rotated %+v", got)
	}
	_, value, err := s.BrokerSecretValue(ctx, "k1")
	must(t, "BrokerSecretValue", err)
	if string(value) != "new" {
		t.Errorf("value %q, want the new one", value)
	}
	if n := count(t, s, "secrets", "name = $1", BrokerValueName("k1", 1)); n != 0 {
		t.Error("the value of version 1 is still stored")
	}
}

func testBrokerSecretPolicyChange(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("v1")))
	_, err := s.UpdateBrokerSecret(ctx, "k1", []byte(`{"host_ids":["h2"]}`), nil, t0.Add(time.Minute))
	must(t, "UpdateBrokerSecret", err)
	got, value, err := s.BrokerSecretValue(ctx, "k1")
	must(t, "BrokerSecretValue", err)
	if got.Version != 1 || string(got.Policy) != `{"host_ids":["h2"]}` || string(value) != "v1" {
		t.Errorf("after a policy change: %+v value %q", got, value)
	}
}

func testDeleteBrokerSecret(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("v1")))
	must(t, "DeleteBrokerSecret", s.DeleteBrokerSecret(ctx, "k1"))
	_, err := s.BrokerSecretByID(ctx, "k1")
	wantErr(t, "BrokerSecretByID after delete", err, ErrNotFound)
	if n := count(t, s, "secrets", "name LIKE 'key-broker/%'"); n != 0 {
		t.Errorf("%d broker values left after delete", n)
	}
}

func testUnknownBrokerSecret(t *testing.T, s *Store) {
	ctx := t.Context()
	_, err := s.BrokerSecretByID(ctx, "nope")
	wantErr(t, "BrokerSecretByID", err, ErrNotFound)
	_, _, err = s.BrokerSecretValue(ctx, "nope")
	wantErr(t, "BrokerSecretValue", err, ErrNotFound)
	_, err = s.UpdateBrokerSecret(ctx, "nope", []byte("{}"), []byte("v"), t0)
	wantErr(t, "UpdateBrokerSecret", err, ErrNotFound)
	wantErr(t, "DeleteBrokerSecret", s.DeleteBrokerSecret(ctx, "nope"), ErrNotFound)
}

// testBrokerValueMoved plays an attacker with write access to the database
// who copies the sealed value of one secret over another's: it must not
// open (the name is associated data).
func testBrokerValueMoved(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k1"), []byte("released to h1")))
	must(t, "CreateBrokerSecret", s.CreateBrokerSecret(ctx, brokerSecret("k2"), []byte("released to h2")))
	var raw []byte
	must(t, "read raw", s.rdb.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, BrokerValueName("k1", 1)).Scan(&raw))
	if _, err := s.wdb.ExecContext(ctx, `UPDATE secrets SET value = $1 WHERE name = $2`, raw, BrokerValueName("k2", 1)); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.BrokerSecretValue(ctx, "k2")
	wantErr(t, "BrokerSecretValue of the moved value", err, ErrWrongKEK)
}
