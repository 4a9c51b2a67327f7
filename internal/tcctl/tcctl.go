// Package tcctl is the admin CLI of Trusted Compute without its main: the
// verifier client, the configuration directory (config.yaml, the pinned CMS
// root, the cached token) and the cobra commands. cmd/tcctl adds the
// sandbox and runs it.
//
// Every command that talks to the verifier trusts the CMS root stored by
// `tcctl login` and nothing else; every non-2xx answer becomes an *APIError
// naming the status, the server's message, the method and the path.
package tcctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is what the commands take from the process; tests fill it in.
type Env struct {
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// ReadPassword reads a password from the terminal without echo; nil
	// when stdin is not a terminal, so that no prompt is attempted.
	ReadPassword func() ([]byte, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewKube builds the Kubernetes client of the node commands from a
	// kubeconfig path (empty: KUBECONFIG, then ~/.kube/config). Default:
	// client-go's loading rules.
	NewKube func(kubeconfig string) (kubernetes.Interface, error)
}

func (e *Env) withDefaults() {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.NewKube == nil {
		e.NewKube = kubeFromConfig
	}
}

// app is the state one command line shares: the environment and the
// global flags.
type app struct {
	env       Env
	configDir string
}

// AddTo adds the command tree and the global --config-dir flag to root.
func AddTo(root *cobra.Command, env Env) {
	env.withDefaults()
	a := &app{env: env}
	root.PersistentFlags().StringVar(&a.configDir, "config-dir", "",
		"configuration directory (default $"+EnvConfigDir+", else $XDG_CONFIG_HOME/tcctl, else ~/.config/tcctl)")
	root.AddCommand(
		a.loginCmd(),
		group("host", "Register, list and remove hosts in the verifier",
			a.hostList(), a.hostGet(), a.hostRegister(), a.hostEnroll(), a.hostDelete(), a.hostDisable(), a.hostEnable()),
		group("flavor", "List, import, create and remove flavors (golden measurements)",
			a.flavorList(), a.flavorGet(), a.flavorImport(), a.flavorCreateFromHost(), a.flavorDelete()),
		group("flavorgroup", "List, create and remove flavor groups (per-part match policies)",
			a.groupList(), a.groupGet(), a.groupCreate(), a.groupDelete()),
		group("report", "Attest hosts and read their signed trust reports",
			a.reportCreate(), a.reportList(), a.reportGet()),
		group("user", "Manage AAS users",
			a.userList(), a.userCreate(), a.userDelete(), a.userPasswd()),
		group("role", "Manage AAS roles and grant them to users",
			a.roleList(), a.roleCreate(), a.roleDelete(), a.roleGrant(), a.roleRevoke()),
		group("credentials", "Issue and revoke bus credentials",
			a.credentialsAgent(), a.credentialsManager(), a.credentialsRevokeManager(), a.credentialsRevokeService()),
		a.nodeCmd(),
		group("secret", "Manage key broker secrets, released only to Verified nodes' TPMs",
			a.secretCreate(), a.secretList(), a.secretGetPolicy(), a.secretRotate(), a.secretDelete()),
		group("policy", "Manage IMA runtime policies (allowed file digests, excludes, signing keys)",
			a.policyCreate(), a.policyUpdate(), a.policyGet(), a.policyList(), a.policyDelete(),
			a.policyAssign(), a.policyUnassign(), policyGenerate()),
	)
}

func (a *app) dir() (string, error) { return configDir(a.configDir, a.env.Getenv) }

// client loads the config, the CMS root and the cached token.
func (a *app) client() (*Client, error) {
	dir, err := a.dir()
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	root, err := cfg.loadRoot()
	if err != nil {
		return nil, err
	}
	token, err := loadToken(dir, a.env.Now())
	if err != nil {
		return nil, err
	}
	return NewClient(cfg.URL, root, token)
}

// run wraps a command body that needs a client.
func (a *app) run(f func(ctx context.Context, c *Client, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return f(cmd.Context(), c, cmd.OutOrStdout(), args)
	}
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// readSecret reads a password: from file when set, else from the
// environment variable env (when not empty), else from the terminal.
func (a *app) readSecret(cmd *cobra.Command, file, env, prompt string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file) //nolint:gosec // G304: the operator names the password file
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty", file)
		}
		return pw, nil
	case env != "" && a.env.Getenv(env) != "":
		return a.env.Getenv(env), nil
	case a.env.ReadPassword != nil:
		_, _ = fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := a.env.ReadPassword()
		_, _ = fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("empty password")
		}
		return string(b), nil
	}
	if env != "" {
		return "", fmt.Errorf("no password: give --password-file, set %s, or run on a terminal", env)
	}
	return "", errors.New("no password: give --password-file or run on a terminal")
}

// kubeFromConfig is the default Env.NewKube.
func kubeFromConfig(kubeconfig string) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}
