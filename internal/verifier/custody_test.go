package verifier_test

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Key custody at the composition root: a stolen database file holds no key
// in the clear; the data directory and key files are private; the KEK is
// generated on first start, configurable and rotatable.

// natsSeed matches an nkeys seed of an operator, account or user.
var natsSeed = regexp.MustCompile(`S[OAU][A-Z2-7]{56}`)

// TestAStolenDatabaseFileHoldsNoKeyInTheClear runs a verifier, stops it and
// reads its database file as a local user who copied it would.
func TestAStolenDatabaseFileHoldsNoKeyInTheClear(t *testing.T) {
	dir := privateTempDir(t)
	h := startVerifier(t, dir)
	h.v.Stop()
	db := filepath.Join(dir, "verifier.db")
	var stolen []byte
	for _, p := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		stolen = append(stolen, b...)
	}
	if len(stolen) == 0 {
		t.Fatal("read nothing from the database file")
	}
	if bytes.Contains(stolen, []byte("PRIVATE KEY")) {
		t.Error("the database file holds a PEM private key in the clear")
	}
	if m := natsSeed.Find(stolen); m != nil {
		t.Errorf("the database file holds a NATS seed in the clear (%.4s...)", m)
	}
	for _, name := range []string{"verifier.db", "kek"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, m)
		}
	}
}

// privateTempDir is a t.TempDir (0755) made private.
func privateTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newVerifier runs only verifier.New: the checks under test come first.
func newVerifier(t *testing.T, dir string, opts ...func(*verifier.Config)) error {
	t.Helper()
	cfg := verifier.Config{Listen: "127.0.0.1:0", Database: "sqlite:" + filepath.Join(dir, "verifier.db"), DataDir: dir, ServerName: "localhost"}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := verifier.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = v.Store().Close()
	}
	return err
}

func TestTheVerifierRefusesADataDirectoryOpenToOthers(t *testing.T) {
	tests := []struct {
		name string
		mode fs.FileMode
	}{
		{"a directory everyone may read (0755) is refused", 0o755},
		{"a shared directory like /tmp (1777) is refused", 0o777 | fs.ModeSticky},
		{"a directory its group may read (0750) is refused", 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			err := newVerifier(t, dir)
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
				t.Fatalf("New = %v, want an error naming %s and the fix chmod 700", err, dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "verifier.db")); err == nil {
				t.Error("the refused verifier created its database")
			}
		})
	}
}

func TestAMissingDataDirectoryIsCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	// PostgreSQL without a key stops New right after the directory check.
	err := newVerifier(t, dir, func(c *verifier.Config) { c.Database = "postgres://tc@127.0.0.1:1/tc" })
	if err == nil || strings.Contains(err.Error(), "data directory") {
		t.Fatalf("New = %v, want the missing key error that follows the directory check", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("created data directory has mode %04o, want 0700", m)
	}
}

func writeKey(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, store.GenerateKEK(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestTheVerifierRefusesAKeyFileOpenToOthers(t *testing.T) {
	tests := []struct {
		name  string
		where func(cfg *verifier.Config, path string)
		mode  fs.FileMode
	}{
		{"a configured key file everyone may read (0644) is refused", func(c *verifier.Config, p string) { c.KeyEncryption.KeyFile = p }, 0o644},
		{"a configured key file its group may read (0640) is refused", func(c *verifier.Config, p string) { c.KeyEncryption.KeyFile = p }, 0o640},
		{"a previous key file others may write (0602) is refused", func(c *verifier.Config, p string) {
			c.KeyEncryption.PreviousKeyFiles = []string{p}
		}, 0o602},
		{"the generated key file made readable by everyone is refused", func(*verifier.Config, string) {}, 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := privateTempDir(t)
			keys := t.TempDir()
			path := filepath.Join(keys, "kek")
			var opts []func(*verifier.Config)
			if strings.Contains(tt.name, "generated") {
				path = filepath.Join(dir, "kek")
			} else {
				cur := filepath.Join(keys, "current")
				writeKey(t, cur, 0o600)
				opts = append(opts, func(c *verifier.Config) { c.KeyEncryption.KeyFile = cur })
			}
			writeKey(t, path, tt.mode)
			opts = append(opts, func(c *verifier.Config) { tt.where(c, path) })
			err := newVerifier(t, dir, opts...)
			if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("New = %v, want an error naming %s and the fix chmod 600", err, path)
			}
		})
	}
}

func TestTheGeneratedKeyIsLoggedByIDNeverByValue(t *testing.T) {
	dir := privateTempDir(t)
	var logs bytes.Buffer
	cfg := verifier.Config{Database: "sqlite:" + filepath.Join(dir, "verifier.db"), DataDir: dir, ServerName: "localhost"}
	// No admin password: New stops in AAS, after the key is made.
	if _, err := verifier.New(t.Context(), cfg, slog.New(slog.NewJSONHandler(&logs, nil))); err == nil {
		t.Fatal("New without an admin password succeeded")
	}
	key, err := os.ReadFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.ParseKEK(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "generated a key-encryption key") || !strings.Contains(logs.String(), filepath.Join(dir, "kek")) {
		t.Errorf("no log line names the generated key file:\n%s", logs.String())
	}
	if bytes.Contains(logs.Bytes(), bytes.TrimSpace(key)) || bytes.Contains(logs.Bytes(), raw) {
		t.Error("the log holds the key-encryption key")
	}
}

func TestAPostgreSQLVerifierNeedsAConfiguredKey(t *testing.T) {
	err := newVerifier(t, privateTempDir(t), func(c *verifier.Config) { c.Database = "postgres://tc@127.0.0.1:1/tc" })
	if err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("New = %v, want an error asking for a key-encryption key", err)
	}
}

// TestTheKeyEncryptionKeyIsRotated starts on a generated key, moves to a
// configured one with the generated one as previous, then drops it; a wrong
// key is refused with an error that says so.
func TestTheKeyEncryptionKeyIsRotated(t *testing.T) {
	dir := privateTempDir(t)
	h := startVerifier(t, dir)
	root := h.v.CA().RootSHA384()
	h.v.Stop()

	keys := t.TempDir()
	next := filepath.Join(keys, "next")
	writeKey(t, next, 0o600)
	generated := filepath.Join(dir, "kek")

	wrong := func(c *verifier.Config) { c.KeyEncryption.KeyFile = next }
	err := newVerifier(t, dir, wrong)
	if !errors.Is(err, store.ErrWrongKEK) || !strings.Contains(err.Error(), "does not open the stored secrets") {
		t.Fatalf("New with a key the secrets were not sealed with = %v, want a wrong key-encryption key error", err)
	}

	h = startVerifier(t, dir, func(c *verifier.Config) {
		c.KeyEncryption.KeyFile = next
		c.KeyEncryption.PreviousKeyFiles = []string{generated}
	})
	h.v.Stop()
	if err := os.Remove(generated); err != nil {
		t.Fatal(err)
	}
	h = startVerifier(t, dir, func(c *verifier.Config) { c.KeyEncryption.KeyFile = next })
	if got := h.v.CA().RootSHA384(); got != root {
		t.Fatalf("root changed across the rotation: %s → %s", root, got)
	}
	h.login(t, "admin", adminPassword)
}
