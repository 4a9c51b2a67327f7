package verifier

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"trustedcompute.io/tc/internal/verifier/store"
)

// Key custody: the store seals its secrets (CA keys, the privacy CA key, the
// token signing key, the NATS seeds) under a key-encryption key (KEK). The
// data directory and every key file must be private to the verifier's user.

// KeyEncryptionConfig says where the key-encryption key comes from: KeyFile
// or Key, else <DataDir>/kek, generated on the first start (SQLite only).
type KeyEncryptionConfig struct {
	// KeyFile holds the KEK: 32 random bytes, raw or base64. It must not be
	// readable or writable by group or others (chmod 600).
	KeyFile string
	// Key is the KEK itself, base64 (TC_KEY_ENCRYPTION_KEY); not with KeyFile.
	Key string
	// PreviousKeyFiles and PreviousKeys are KEKs being retired: what they
	// sealed is re-sealed under the current KEK at start.
	PreviousKeyFiles []string
	PreviousKeys     []string
}

// kekFileName is the generated KEK in the data directory.
const kekFileName = "kek"

// Log field keys of key custody.
const (
	keyPath      = "path"
	keyKEKID     = "kek_id"
	keyEncrypted = "encrypted"
	keyResealed  = "resealed"
)

// openStore checks the data directory, loads the keyring and opens the store
// with it, sealing whatever an earlier release or a previous KEK left.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (*store.Store, error) {
	if cfg.DataDir != "" {
		if err := privateDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	kr, err := loadKeyring(cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Database, store.WithKeyring(kr))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	rep, err := st.SealSecrets(ctx)
	if err != nil {
		_ = st.Close()
		if errors.Is(err, store.ErrWrongKEK) {
			return nil, fmt.Errorf("the key-encryption key %s does not open the stored secrets; configure the key they were sealed with (key_encryption_key_file, or previous_key_encryption_key_files while rotating): %w", kr.CurrentID(), err)
		}
		return nil, err
	}
	if rep.Encrypted > 0 || rep.Resealed > 0 {
		logger.Info("sealed stored secrets under the key-encryption key", keyKEKID, kr.CurrentID(),
			keyEncrypted, rep.Encrypted, keyResealed, rep.Resealed)
	}
	return st, nil
}

// loadKeyring reads the current and previous KEKs.
func loadKeyring(cfg Config, logger *slog.Logger) (*store.Keyring, error) {
	kc := cfg.KeyEncryption
	var cur []byte
	var err error
	switch {
	case kc.KeyFile != "" && kc.Key != "":
		return nil, errors.New("key-encryption key: set a key file or a key, not both")
	case kc.KeyFile != "":
		cur, err = readKEKFile(kc.KeyFile)
	case kc.Key != "":
		cur, err = store.ParseKEK([]byte(kc.Key))
		if err != nil {
			err = fmt.Errorf("TC_KEY_ENCRYPTION_KEY: %w", err)
		}
	default:
		cur, err = dataDirKEK(cfg, logger)
	}
	if err != nil {
		return nil, err
	}
	var prev [][]byte
	for _, f := range kc.PreviousKeyFiles {
		k, err := readKEKFile(f)
		if err != nil {
			return nil, fmt.Errorf("previous %w", err)
		}
		prev = append(prev, k)
	}
	for i, s := range kc.PreviousKeys {
		k, err := store.ParseKEK([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("previous key-encryption key %d: %w", i+1, err)
		}
		prev = append(prev, k)
	}
	return store.NewKeyring(cur, prev...)
}

// dataDirKEK reads <DataDir>/kek, generating it on the first start. A
// PostgreSQL database needs a configured KEK: replicas do not share a data
// directory, and it may not outlive the pod.
func dataDirKEK(cfg Config, logger *slog.Logger) ([]byte, error) {
	switch {
	case !strings.HasPrefix(cfg.Database, "sqlite:"):
		return nil, errors.New("a PostgreSQL database needs a key-encryption key: set key_encryption_key_file (TC_KEY_ENCRYPTION_KEY_FILE) or TC_KEY_ENCRYPTION_KEY")
	case cfg.Database == "sqlite::memory:" && cfg.DataDir == "":
		return store.ParseKEK(store.GenerateKEK()) // the database dies with the process
	case cfg.DataDir == "":
		return nil, errors.New("no key-encryption key: set key_encryption_key_file (TC_KEY_ENCRYPTION_KEY_FILE), TC_KEY_ENCRYPTION_KEY or a data directory")
	}
	path := filepath.Join(cfg.DataDir, kekFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // a fixed name in the data directory
	if errors.Is(err, fs.ErrExist) {
		return readKEKFile(path)
	} else if err != nil {
		return nil, fmt.Errorf("generate key-encryption key: %w", err)
	}
	_, err = f.Write(store.GenerateKEK())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("generate key-encryption key %s: %w", path, err)
	}
	k, err := readKEKFile(path)
	if err != nil {
		return nil, err
	}
	kek, err := store.NewKEK(k)
	if err != nil {
		return nil, err
	}
	logger.Warn("generated a key-encryption key in the data directory; in production keep it outside (key_encryption_key_file), see docs/verifier.md",
		keyPath, path, keyKEKID, kek.ID())
	return k, nil
}

// readKEKFile reads a KEK from a file that only its owner may read or write.
func readKEKFile(path string) ([]byte, error) {
	if err := privateFile(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path) //nolint:gosec // the operator names the key file
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	k, err := store.ParseKEK(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// privateDir creates dir 0700 if it is missing, and refuses it if group or
// others may read, write or enter it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("data directory %s is open to other users (mode %04o): it holds the database and keys; run chmod 700 %s", dir, m, dir)
	}
	return nil
}

// privateFile refuses a key file that group or others may read or write.
func privateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("key-encryption key: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("key-encryption key %s is a directory", path)
	}
	if m := fi.Mode().Perm(); m&0o066 != 0 {
		return fmt.Errorf("key file %s is open to other users (mode %04o); run chmod 600 %s", path, m, path)
	}
	return nil
}
