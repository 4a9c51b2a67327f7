package store

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
	"trustedcompute.io/tc/internal/pgtest"
)

// Key custody: secrets are sealed at rest under a key-encryption key (KEK),
// on SQLite and PostgreSQL alike; plaintext written by an earlier release is
// sealed on the first start with a KEK; a wrong KEK changes nothing; a KEK is
// rotated by opening with the new key and the old one as previous.

func TestKeyCustodySQLite(t *testing.T) {
	t.Parallel()
	runKeyCustodySuite(t, sqliteFileDSN)
}

func TestKeyCustodyPostgres(t *testing.T) {
	t.Parallel()
	newDSN := pgtest.Schemas(t)
	runKeyCustodySuite(t, func(t *testing.T) string { return newDSN(t) })
}

func runKeyCustodySuite(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		test func(t *testing.T, dsn string)
	}{
		{"no private key or seed is stored in the clear", testNoPlaintextAtRest},
		{"plaintext secrets of an earlier release are sealed on the first open with a key", testPlaintextIsSealed},
		{"a wrong key-encryption key is named in the error and changes nothing", testWrongKEKChangesNothing},
		{"rotating the key-encryption key re-seals every secret under the new key", testRotateKEK},
		{"a sealed value copied to another name does not open", testSealedValueBoundToName},
		{"a plaintext value planted in the database is refused", testPlantedPlaintextRefused},
		{"replicas sealing one database at once both succeed and agree", testConcurrentSeal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, newDSN(t)) })
	}
}

// custodySecrets are what the verifier keeps: a PEM private key and a seed.
func custodySecrets(t *testing.T) map[string][]byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, "GenerateKey", err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, "MarshalPKCS8PrivateKey", err)
	op, err := nkeys.CreateOperator()
	must(t, "CreateOperator", err)
	seed, err := op.Seed()
	must(t, "Seed", err)
	return map[string][]byte{
		"cms-root-ca":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"nats-operator-seed": seed,
	}
}

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KEKSize)
	_, _ = rand.Read(k)
	return k
}

func keyring(t *testing.T, current []byte, previous ...[]byte) *Keyring {
	t.Helper()
	kr, err := NewKeyring(current, previous...)
	must(t, "NewKeyring", err)
	return kr
}

func openKeyed(t *testing.T, dsn string, kr *Keyring) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, WithKeyring(kr))
	if err != nil {
		t.Fatalf("Open(%s): %v", redact(dsn), err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawSecrets(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), `SELECT name, value FROM secrets`)
	must(t, "select secrets", err)
	defer func() { _ = rows.Close() }()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var v []byte
		must(t, "scan", rows.Scan(&name, &v))
		out[name] = v
	}
	must(t, "rows", rows.Err())
	return out
}

func insertRaw(t *testing.T, s *Store, name string, value []byte) {
	t.Helper()
	_, err := s.wdb.ExecContext(t.Context(), `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, 1)`, name, value)
	must(t, "insert raw secret", err)
}

func wantSecrets(t *testing.T, s *Store, want map[string][]byte) {
	t.Helper()
	for name, v := range want {
		got, err := s.GetSecret(t.Context(), name)
		if err != nil {
			t.Errorf("GetSecret(%q): %v", name, err)
		} else if !bytes.Equal(got, v) {
			t.Errorf("GetSecret(%q) differs from what was stored", name)
		}
	}
}

// leaks reports which of the secrets appear in the clear in b.
func leaks(b []byte, secrets map[string][]byte) []string {
	var out []string
	for name, v := range secrets {
		if bytes.Contains(b, v) {
			out = append(out, name)
		}
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		out = append(out, "a PEM PRIVATE KEY block")
	}
	return out
}

// testNoPlaintextAtRest plays the stolen database: a copy of the SQLite
// file (and its WAL), or the rows a PostgreSQL dump would hold.
func testNoPlaintextAtRest(t *testing.T, dsn string) {
	secrets := custodySecrets(t)
	s := openKeyed(t, dsn, keyring(t, testKey(t)))
	for name, v := range secrets {
		must(t, "CreateSecret", s.CreateSecret(t.Context(), name, v))
	}
	must(t, "PutSecret", s.PutSecret(t.Context(), "nats-operator-seed", secrets["nats-operator-seed"]))
	for name, v := range rawSecrets(t, s) {
		if l := leaks(v, secrets); len(l) > 0 {
			t.Errorf("the stored value of %q holds %v in the clear", name, l)
		}
	}
	wantSecrets(t, s, secrets)
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		var stolen []byte
		for _, p := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			stolen = append(stolen, b...)
		}
		must(t, "Close", s.Close())
		b, err := os.ReadFile(path)
		must(t, "read the database file", err)
		stolen = append(stolen, b...)
		if l := leaks(stolen, secrets); len(l) > 0 {
			t.Errorf("a copy of %s holds %v in the clear", filepath.Base(path), l)
		}
	}
}

func testPlaintextIsSealed(t *testing.T, dsn string) {
	secrets := custodySecrets(t)
	old := openKeyed(t, dsn, keyring(t, testKey(t)))
	for name, v := range secrets {
		insertRaw(t, old, name, v) // as an earlier release stored them
	}
	must(t, "Close", old.Close())

	kek := testKey(t)
	s := openKeyed(t, dsn, keyring(t, kek))
	rep, err := s.SealSecrets(t.Context())
	must(t, "SealSecrets", err)
	if rep.Encrypted != len(secrets) || rep.Resealed != 0 || rep.Current != 0 {
		t.Errorf("SealSecrets = %+v, want %d encrypted", rep, len(secrets))
	}
	for name, v := range rawSecrets(t, s) {
		if l := leaks(v, secrets); len(l) > 0 {
			t.Errorf("after SealSecrets %q still holds %v in the clear", name, l)
		}
	}
	wantSecrets(t, s, secrets)
	rep, err = s.SealSecrets(t.Context())
	must(t, "SealSecrets again", err)
	if rep != (SealReport{Current: len(secrets)}) {
		t.Errorf("SealSecrets again = %+v, want all %d current and nothing changed", rep, len(secrets))
	}
	must(t, "Close", s.Close())
	wantSecrets(t, openKeyed(t, dsn, keyring(t, kek)), secrets)
}

func testWrongKEKChangesNothing(t *testing.T, dsn string) {
	secrets := custodySecrets(t)
	right := openKeyed(t, dsn, keyring(t, testKey(t)))
	for name, v := range secrets {
		must(t, "CreateSecret", right.CreateSecret(t.Context(), name, v))
	}
	insertRaw(t, right, "legacy", []byte("-----BEGIN PRIVATE KEY-----\nlegacy\n"))
	before := rawSecrets(t, right)
	must(t, "Close", right.Close())

	wrong := openKeyed(t, dsn, keyring(t, testKey(t)))
	_, err := wrong.SealSecrets(t.Context())
	if !errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "wrong key-encryption key") || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("SealSecrets with a wrong key = %v, want an error that names the wrong key-encryption key and says nothing changed", err)
	}
	for name, v := range rawSecrets(t, wrong) {
		if !bytes.Equal(v, before[name]) {
			t.Errorf("SealSecrets with a wrong key changed %q", name)
		}
	}
	_, err = wrong.GetSecret(t.Context(), "cms-root-ca")
	wantErr(t, "GetSecret with a wrong key", err, ErrWrongKEK)
}

func testRotateKEK(t *testing.T, dsn string) {
	secrets := custodySecrets(t)
	oldKEK, newKEK := testKey(t), testKey(t)
	s := openKeyed(t, dsn, keyring(t, oldKEK))
	for name, v := range secrets {
		must(t, "CreateSecret", s.CreateSecret(t.Context(), name, v))
	}
	must(t, "Close", s.Close())

	s = openKeyed(t, dsn, keyring(t, newKEK, oldKEK))
	rep, err := s.SealSecrets(t.Context())
	must(t, "SealSecrets", err)
	if rep != (SealReport{Resealed: len(secrets)}) {
		t.Errorf("SealSecrets while rotating = %+v, want %d resealed", rep, len(secrets))
	}
	must(t, "Close", s.Close())

	// The old key is retired: the new one alone opens everything, the old
	// one alone opens nothing.
	wantSecrets(t, openKeyed(t, dsn, keyring(t, newKEK)), secrets)
	_, err = openKeyed(t, dsn, keyring(t, oldKEK)).GetSecret(t.Context(), "cms-root-ca")
	wantErr(t, "GetSecret with the retired key", err, ErrWrongKEK)
}

func testSealedValueBoundToName(t *testing.T, dsn string) {
	s := openKeyed(t, dsn, keyring(t, testKey(t)))
	must(t, "CreateSecret", s.CreateSecret(t.Context(), "attacker-chosen", []byte("key the attacker knows")))
	insertRaw(t, s, "cms-root-ca", rawSecrets(t, s)["attacker-chosen"])
	_, err := s.GetSecret(t.Context(), "cms-root-ca")
	wantErr(t, "GetSecret of a value moved from another name", err, ErrWrongKEK)
}

func testPlantedPlaintextRefused(t *testing.T, dsn string) {
	s := openKeyed(t, dsn, keyring(t, testKey(t)))
	insertRaw(t, s, "cms-root-ca", []byte("-----BEGIN PRIVATE KEY-----\nplanted\n"))
	if v, err := s.GetSecret(t.Context(), "cms-root-ca"); err == nil {
		t.Fatalf("GetSecret of a planted plaintext value = %q, want an error", v)
	}
}

func testConcurrentSeal(t *testing.T, dsn string) {
	secrets := custodySecrets(t)
	old := openKeyed(t, dsn, keyring(t, testKey(t)))
	for name, v := range secrets {
		insertRaw(t, old, name, v)
	}
	must(t, "Close", old.Close())
	kek := testKey(t)
	a, b := openKeyed(t, dsn, keyring(t, kek)), openKeyed(t, dsn, keyring(t, kek))
	errs := make(chan error, 2)
	for _, s := range []*Store{a, b} {
		go func() { _, err := s.SealSecrets(t.Context()); errs <- err }()
	}
	for range 2 {
		must(t, "concurrent SealSecrets", <-errs)
	}
	wantSecrets(t, openKeyed(t, dsn, keyring(t, kek)), secrets)
}

func TestSQLiteFilesArePrivate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"a new database is created readable by its owner only", func(*testing.T, string) {}},
		{"a database an earlier release left 0644 is made private", func(t *testing.T, path string) {
			s, err := Open(t.Context(), "sqlite:"+path)
			must(t, "Open", err)
			must(t, "Close", s.Close())
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Chmod(p, 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verifier.db")
			tt.setup(t, path)
			s := openTest(t, "sqlite:"+path)
			must(t, "PutSecret", s.PutSecret(t.Context(), "k", []byte("v")))
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				must(t, "Stat", err)
				if fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %04o, want no group or other access (0600)", filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}

func TestParseKEK(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5}, KEKSize)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"32 raw bytes are the key", key, false},
		{"standard base64 with a newline is the key", []byte(base64.StdEncoding.EncodeToString(key) + "\n"), false},
		{"url-safe base64 without padding is the key", []byte(base64.RawURLEncoding.EncodeToString(key)), false},
		{"16 bytes are too short", key[:16], true},
		{"base64 of 16 bytes is too short", []byte(base64.StdEncoding.EncodeToString(key[:16])), true},
		{"an empty file is no key", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKEK(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKEK = %x, want an error", got)
				}
				if strings.Contains(err.Error(), string(tt.in)) && len(tt.in) > 0 {
					t.Errorf("error %q quotes the key material", err)
				}
				return
			}
			must(t, "ParseKEK", err)
			if !bytes.Equal(got, key) {
				t.Errorf("ParseKEK = %x, want %x", got, key)
			}
		})
	}
}

func TestGeneratedKEKsParseAndDiffer(t *testing.T) {
	a, err := ParseKEK(GenerateKEK())
	must(t, "ParseKEK(a)", err)
	b, err := ParseKEK(GenerateKEK())
	must(t, "ParseKEK(b)", err)
	if bytes.Equal(a, b) {
		t.Error("two generated keys are equal")
	}
}
