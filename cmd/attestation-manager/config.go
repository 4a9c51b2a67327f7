package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/manager"
)

// Config is the attestation manager's configuration file. Every key can be
// overridden by a TC_* environment variable (envKeys) and some by flags.
// Unknown keys are an error; all problems are reported at once; secrets
// come from files.
type Config struct {
	// PollDuration is the time between attestations of a node in minutes,
	// as the Helm value pollDuration ("60"), or a Go duration ("90m").
	PollDuration string `yaml:"pollDuration" env:"TC_POLL_DURATION"`
	// Jitter spreads attestations over pollDuration ± jitter·pollDuration
	// (0 to 0.5; 0 turns it off).
	Jitter float64 `yaml:"jitter" env:"TC_JITTER"`
	// GoldenFlavors is everyBoot, firstBoot or provided.
	GoldenFlavors string `yaml:"goldenFlavors" env:"TC_GOLDEN_FLAVORS"`
	// DiskEncryption is the disk encryption that makes a Verified node
	// ready: measured (systemd-cryptsetup's volume key measurement replayed
	// to the quoted PCR 15; the default) or claimed (the agent's word is
	// enough).
	DiskEncryption string `yaml:"diskEncryption" env:"TC_DISK_ENCRYPTION"`
	// NodeBinding is reported (a report whose agent names another Node is
	// refused; the default) or required (a trusted one that names none is
	// refused too).
	NodeBinding string `yaml:"nodeBinding" env:"TC_NODE_BINDING"`
	// EvictNamespaces are drained from a node that fails (none: cordon only).
	EvictNamespaces []string `yaml:"evictNamespaces" env:"TC_EVICT_NAMESPACES"`
	// Concurrency bounds the nodes attested at the same time (the
	// controller's workers); 0 sizes the pool from fleetSize and
	// pollDuration (manager.Workers).
	Concurrency int `yaml:"concurrency" env:"TC_CONCURRENCY"`
	// FleetSize is the number of enabled nodes the worker pool is sized
	// for when concurrency is 0; 0 counts them at start.
	FleetSize int `yaml:"fleetSize" env:"TC_FLEET_SIZE"`
	// RefreshInterval is kept so that older files load; the controller
	// watches Nodes and the onboard requests instead of re-reading them.
	RefreshInterval time.Duration `yaml:"refreshInterval" env:"TC_REFRESH_INTERVAL"`
	// LeaderElection elects the one replica that acts.
	LeaderElection LeaderElection `yaml:"leaderElection"`
	// MaxEvidenceAge is the age of a node's newest evidence past which it is
	// no longer Verified nor ready (never cordoned for it), in minutes or as
	// a Go duration; empty: twice pollDuration.
	MaxEvidenceAge string `yaml:"maxEvidenceAge" env:"TC_MAX_EVIDENCE_AGE"`

	Verifier   Verifier   `yaml:"verifier"`
	NATS       NATS       `yaml:"nats"`
	EIM        eim.Config `yaml:"eim"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	LogLevel   string     `yaml:"logLevel" env:"TC_LOG_LEVEL"`
	// MetricsAddr serves /healthz, /readyz and Prometheus /metrics
	// (plain HTTP, meant for the pod network; empty turns it off).
	MetricsAddr string `yaml:"metricsAddr" env:"TC_METRICS_ADDR"`
}

// Verifier says how to reach and trust the verifier.
type Verifier struct {
	// URL is the HVS base URL, e.g. https://verifier:8443.
	URL string `yaml:"url" env:"TC_VERIFIER_URL"`
	// AASURL is the AAS base URL when it differs from URL.
	AASURL string `yaml:"aasURL" env:"TC_AAS_URL"`
	// CMSURL is where the CMS root is fetched when only CMSRootSHA384 is
	// set (default URL).
	CMSURL string `yaml:"cmsURL" env:"TC_CMS_URL"`
	// CMSRootFile is the PEM file of the CMS root CA; CMSRootSHA384 pins
	// it (hex SHA-384 of the DER certificate). One of them is required.
	CMSRootFile   string `yaml:"cmsRootFile" env:"TC_CMS_ROOT_CA_FILE"`
	CMSRootSHA384 string `yaml:"cmsRootSHA384" env:"TC_CMS_ROOT_SHA384"`
	// Username and PasswordFile are the manager's AAS user.
	Username     string `yaml:"username" env:"TC_AAS_USERNAME"`
	PasswordFile string `yaml:"passwordFile" env:"TC_AAS_PASSWORD_FILE"`
	// Timeout bounds one HTTP exchange with the verifier.
	Timeout time.Duration `yaml:"timeout" env:"TC_VERIFIER_TIMEOUT"`
}

// NATS is the bus the verifier publishes trust reports on.
type NATS struct {
	URL string `yaml:"url" env:"TC_NATS_URL"`
	// CredsFile holds the manager's NATS credentials (JWT + seed).
	CredsFile string `yaml:"credsFile" env:"TC_NATS_CREDS_FILE"`
}

// LeaderElection is the Lease that elects the one replica that acts (in
// the manager's namespace).
type LeaderElection struct {
	// Enabled: only the holder of the Lease acts; required for more than
	// one replica.
	Enabled bool `yaml:"enabled" env:"TC_LEADER_ELECTION"`
	// LeaseName names the Lease.
	LeaseName string `yaml:"leaseName" env:"TC_LEADER_ELECTION_LEASE"`
	// LeaseDuration is how long a crashed leader keeps the Lease; a
	// leader that stops cleanly releases it at once.
	LeaseDuration time.Duration `yaml:"leaseDuration" env:"TC_LEADER_ELECTION_LEASE_DURATION"`
	// RenewDeadline is how long the leader tries to renew before it gives
	// up (and exits).
	RenewDeadline time.Duration `yaml:"renewDeadline" env:"TC_LEADER_ELECTION_RENEW_DEADLINE"`
	// RetryPeriod is the pace of the candidates' attempts.
	RetryPeriod time.Duration `yaml:"retryPeriod" env:"TC_LEADER_ELECTION_RETRY_PERIOD"`
}

// Kubernetes says how to reach the API server.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty uses the in-cluster config.
	Kubeconfig string `yaml:"kubeconfig" env:"TC_KUBECONFIG"`
	// Namespace is the manager's own namespace, where operators' onboard
	// requests are kept (ConfigMap trustedcompute-onboard-requests, which
	// nodes cannot write); empty: TC_POD_NAMESPACE, else trusted-compute.
	Namespace string `yaml:"namespace" env:"TC_NAMESPACE"`
}

func defaultConfig() Config {
	return Config{
		PollDuration:    "60",
		Jitter:          manager.DefaultJitter,
		GoldenFlavors:   string(manager.EveryBoot),
		DiskEncryption:  string(manager.DiskEncryptionMeasured),
		NodeBinding:     string(manager.NodeBindingReported),
		RefreshInterval: manager.DefaultRefreshInterval,
		LeaderElection: LeaderElection{
			Enabled: true, LeaseName: manager.DefaultLeaseName, LeaseDuration: manager.DefaultLeaseDuration,
			RenewDeadline: manager.DefaultRenewDeadline, RetryPeriod: manager.DefaultRetryPeriod,
		},
		Verifier:    Verifier{Username: "attestation-manager", Timeout: 2 * time.Minute},
		LogLevel:    "info",
		MetricsAddr: ":9090",
	}
}

// envKeys lists every environment variable the manager reads: the env tags
// of Config, and TC_POD_NAMESPACE (the pod's namespace, a fallback).
var envKeys = append(config.EnvKeys(Config{}), "TC_POD_NAMESPACE")

// loadConfig reads the file at path (if any) over the defaults, then the
// environment over both.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	err := config.Load(path, getenv, &cfg)
	cfg.Kubernetes.Namespace = cmp.Or(cfg.Kubernetes.Namespace, getenv("TC_POD_NAMESPACE"))
	return cfg, err
}

// managerConfig turns the file configuration into the manager's policy.
func (c Config) managerConfig() (manager.Config, error) {
	poll, err := manager.ParsePollDuration(c.PollDuration)
	if err != nil {
		return manager.Config{}, fmt.Errorf("pollDuration: %w", err)
	}
	jitter := c.Jitter
	if jitter == 0 {
		jitter = -1 // off, as asked
	}
	var maxAge time.Duration
	if c.MaxEvidenceAge != "" {
		if maxAge, err = manager.ParseMinutes(c.MaxEvidenceAge); err != nil {
			return manager.Config{}, fmt.Errorf("maxEvidenceAge: %w", err)
		}
		if maxAge <= 0 {
			return manager.Config{}, fmt.Errorf("maxEvidenceAge %s: want more than 0", maxAge)
		}
	}
	return manager.Config{
		MaxEvidenceAge:  maxAge,
		PollDuration:    poll,
		Jitter:          jitter,
		GoldenFlavors:   manager.GoldenFlavors(c.GoldenFlavors),
		DiskEncryption:  manager.DiskEncryptionPolicy(c.DiskEncryption),
		NodeBinding:     manager.NodeBindingPolicy(c.NodeBinding),
		EvictNamespaces: c.EvictNamespaces,
		Concurrency:     c.Concurrency,
		RefreshInterval: c.RefreshInterval,
	}.WithDefaults(), nil
}

// leaderElection is the Lease configuration, in the manager's namespace.
func (c Config) leaderElection() manager.LeaderElection {
	l := c.LeaderElection
	return manager.LeaderElection{
		Enabled: l.Enabled, Namespace: c.Kubernetes.Namespace, LeaseName: l.LeaseName,
		LeaseDuration: l.LeaseDuration, RenewDeadline: l.RenewDeadline, RetryPeriod: l.RetryPeriod,
	}.WithDefaults()
}

// validate reports every problem at once (errors.Join drops the nil ones).
func (c Config) validate() error {
	var errs []error
	if mc, err := c.managerConfig(); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, mc.Validate())
	}
	if c.FleetSize < 0 {
		errs = append(errs, fmt.Errorf("fleetSize %d: want 0 or more", c.FleetSize))
	}
	if le := c.leaderElection(); le.Enabled {
		errs = append(errs, le.Validate())
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter %v is negative", c.Jitter))
	}
	errs = append(errs,
		checkURL("verifier.url", c.Verifier.URL, true, "https"),
		checkURL("verifier.aasURL", c.Verifier.AASURL, false, "https"),
		checkURL("verifier.cmsURL", c.Verifier.CMSURL, false, "https"))
	if c.Verifier.CMSRootFile == "" && c.Verifier.CMSRootSHA384 == "" {
		errs = append(errs, errors.New("verifier.cmsRootFile or verifier.cmsRootSHA384 is required: the verifier is trusted only through the CMS root"))
	}
	if c.Verifier.Username == "" {
		errs = append(errs, errors.New("verifier.username is required"))
	}
	if c.Verifier.PasswordFile == "" {
		errs = append(errs, errors.New("verifier.passwordFile is required"))
	}
	if c.Verifier.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("verifier.timeout %s: want more than 0", c.Verifier.Timeout))
	}
	errs = append(errs, checkURL("nats.url", c.NATS.URL, true, "tls", "nats"))
	if c.NATS.CredsFile == "" {
		errs = append(errs, errors.New("nats.credsFile is required"))
	}
	errs = append(errs, c.EIM.Validate())
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("logLevel %q: %w", c.LogLevel, err))
	}
	return errors.Join(errs...)
}

func checkURL(key, raw string, required bool, schemes ...string) error {
	if raw == "" {
		if required {
			return fmt.Errorf("%s is required", key)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	for _, s := range schemes {
		if u.Scheme == s && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want %s://host[:port]", key, raw, strings.Join(schemes, "|"))
}
