package tcctl

import (
	"cmp"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/verifier/cms"
)

func (a *app) loginCmd() *cobra.Command {
	var (
		verifierURL, rootSHA, rootPath, username, passwordFile string
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Pin the verifier's CMS root and get a token",
		Long: `Login stores the verifier URL and its CMS root in the configuration directory
and caches a token (mode 0600) for the other commands.

The first login names the verifier and its root: either --root-sha384 (the
digest the verifier logs as cms_root_sha384; the root is fetched from the
verifier and kept only if it matches) or --root-file (the verifier's
cms-root.pem). Later logins reuse them.

The password comes from --password-file, else $` + EnvPassword + `, else a prompt
without echo when stdin is a terminal.`,
		Example: `  tcctl login --url https://verifier:8443 --root-sha384 3f2a... --username admin
  tcctl login --password-file /run/secrets/tc-admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.dir()
			if err != nil {
				return err
			}
			cfg, err := loadConfig(dir)
			if err != nil && !errors.Is(err, errNotLoggedIn) {
				if verifierURL == "" {
					return err
				}
				cfg = Config{} // a broken config is replaced by a fresh login
			}
			if verifierURL != "" {
				cfg.URL = strings.TrimRight(verifierURL, "/")
			}
			if username != "" {
				cfg.Username = username
			}
			cfg.Username = cmp.Or(cfg.Username, "admin")
			if cfg.URL == "" {
				return errors.New("url is not set: give --url https://<verifier>:8443")
			}
			switch {
			case rootSHA != "" && rootPath == "":
				root, err := cms.FetchRootPinned(cmd.Context(), cfg.URL, rootSHA)
				if err != nil {
					return fmt.Errorf("bootstrap the cms root from %s: %w", cfg.URL, err)
				}
				p := filepath.Join(dir, rootFile)
				if err := writeFileAtomic(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
					return err
				}
				cfg.CMSRootFile, cfg.CMSRootSHA384 = p, strings.ToLower(strings.TrimSpace(rootSHA))
			case rootPath != "":
				root, err := cms.LoadRootFile(rootPath, rootSHA)
				if err != nil {
					return err
				}
				abs, err := filepath.Abs(rootPath)
				if err != nil {
					return err
				}
				sum := sha512.Sum384(root.Raw)
				cfg.CMSRootFile, cfg.CMSRootSHA384 = abs, hex.EncodeToString(sum[:])
			}
			if err := cfg.problems(); err != nil {
				return fmt.Errorf("%w (first login: give --url and --root-sha384 or --root-file)", err)
			}
			root, err := cfg.loadRoot()
			if err != nil {
				return err
			}
			password, err := a.readSecret(cmd, passwordFile, EnvPassword, "password for "+cfg.Username+": ")
			if err != nil {
				return err
			}
			c, err := NewClient(cfg.URL, root, "")
			if err != nil {
				return err
			}
			token, err := c.login(cmd.Context(), cfg.Username, password)
			if err != nil {
				return fmt.Errorf("login %s: %w", cfg.Username, err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if err := saveConfig(dir, cfg); err != nil {
				return err
			}
			exp, err := saveToken(dir, token)
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (cms root sha384 %s); the token expires at %s\n",
				cfg.URL, cfg.Username, cfg.CMSRootSHA384, exp.Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&verifierURL, "url", "", "verifier base URL, like https://verifier:8443")
	f.StringVar(&rootSHA, "root-sha384", "", "SHA-384 (hex) of the CMS root certificate to pin")
	f.StringVar(&rootPath, "root-file", "", "PEM file of the CMS root certificate")
	f.StringVar(&username, "username", "", "AAS user (default: the last one, else admin)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the password")
	return cmd
}
