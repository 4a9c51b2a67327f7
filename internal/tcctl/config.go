package tcctl

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/verifier/cms"
)

// Environment variables tcctl reads; this is the one place they are named.
const (
	// EnvConfigDir overrides the configuration directory (as --config-dir).
	EnvConfigDir = "TC_CONFIG_DIR"
	// EnvPassword is the login password when no --password-file is given.
	EnvPassword = "TC_PASSWORD"
	// EnvKubeconfig is the kubeconfig of the node commands (as --kubeconfig).
	EnvKubeconfig = "KUBECONFIG"
	envXDGConfig  = "XDG_CONFIG_HOME"
	envHome       = "HOME"
)

// Files in the configuration directory.
const (
	configFile = "config.yaml"
	tokenFile  = "token.json"
	rootFile   = "cms-root.pem"
)

// Config is config.yaml: where the verifier is, which CMS root it must chain
// to, and who logs in. Unknown keys are an error.
type Config struct {
	// URL is the verifier's base URL, like https://verifier:8443.
	URL string `yaml:"url"`
	// CMSRootFile is the PEM file of the CMS root CA, the only certificate
	// the client trusts.
	CMSRootFile string `yaml:"cms_root_file"`
	// CMSRootSHA384, when set, pins the root in CMSRootFile.
	CMSRootSHA384 string `yaml:"cms_root_sha384,omitempty"`
	// Username is the AAS user of `tcctl login`.
	Username string `yaml:"username,omitempty"`
}

// problems lists what keeps the config from being used, all at once.
func (c *Config) problems() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url is not set"))
	} else if !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, fmt.Errorf("url %q must start with https://", c.URL))
	}
	if c.CMSRootFile == "" {
		errs = append(errs, errors.New("cms_root_file is not set"))
	}
	return errors.Join(errs...)
}

// configDir is where tcctl keeps its files: the flag, else TC_CONFIG_DIR,
// else $XDG_CONFIG_HOME/tcctl, else ~/.config/tcctl.
func configDir(flag string, getenv func(string) string) (string, error) {
	switch {
	case flag != "":
		return flag, nil
	case getenv(EnvConfigDir) != "":
		return getenv(EnvConfigDir), nil
	case getenv(envXDGConfig) != "":
		return filepath.Join(getenv(envXDGConfig), "tcctl"), nil
	case getenv(envHome) != "":
		return filepath.Join(getenv(envHome), ".config", "tcctl"), nil
	}
	return "", fmt.Errorf("no configuration directory: set --config-dir, %s or %s", EnvConfigDir, envHome)
}

// errNotLoggedIn is wrapped when there is no config or no token yet.
var errNotLoggedIn = errors.New("not logged in: run tcctl login --url https://<verifier>:8443 --root-sha384 <hex>")

// loadConfig reads config.yaml from dir.
func loadConfig(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(filepath.Join(dir, configFile)) //nolint:gosec // G304: the operator's config directory
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), errNotLoggedIn)
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", filepath.Join(dir, configFile), err)
	}
	if err := c.problems(); err != nil {
		return c, fmt.Errorf("config %s: %w", filepath.Join(dir, configFile), err)
	}
	return c, nil
}

func saveConfig(dir string, c Config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, configFile), b, 0o600)
}

// loadRoot reads the CMS root the config names, checked against its pin.
func (c *Config) loadRoot() (*x509.Certificate, error) {
	root, err := cms.LoadRootFile(c.CMSRootFile, c.CMSRootSHA384)
	if err != nil {
		return nil, fmt.Errorf("cms root: %w", err)
	}
	return root, nil
}

// cachedToken is token.json: the bearer token and when it expires.
type cachedToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func loadToken(dir string, now time.Time) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, tokenFile)) //nolint:gosec // G304: the operator's config directory
	if errors.Is(err, fs.ErrNotExist) {
		return "", errNotLoggedIn
	}
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	var t cachedToken
	if err := json.Unmarshal(b, &t); err != nil || t.Token == "" {
		return "", fmt.Errorf("token cache %s is damaged: %w", filepath.Join(dir, tokenFile), errNotLoggedIn)
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return "", fmt.Errorf("token expired at %s: %w", t.ExpiresAt.UTC().Format(time.RFC3339), errNotLoggedIn)
	}
	return t.Token, nil
}

func saveToken(dir, token string) (time.Time, error) {
	exp, err := tokenExpiry(token)
	if err != nil {
		return time.Time{}, err
	}
	b, err := json.Marshal(cachedToken{Token: token, ExpiresAt: exp})
	if err != nil {
		return time.Time{}, err
	}
	return exp, writeFileAtomic(filepath.Join(dir, tokenFile), b, 0o600)
}

// tokenExpiry reads the exp claim of a JWT. The signature is not checked:
// the client only needs to know when to stop sending the token; the server
// checks it.
func tokenExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("the verifier's token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("token claims: %w", err)
	}
	if claims.Exp == 0 {
		return time.Time{}, errors.New("the verifier's token has no exp claim")
	}
	return time.Unix(claims.Exp, 0).UTC(), nil
}

// writeFileAtomic writes b to path with mode perm through a temporary file
// in the same directory, so a reader never sees half a file and a secret is
// never readable by others, not even for a moment.
func writeFileAtomic(path string, b []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
