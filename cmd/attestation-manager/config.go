package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/verifier/cms"
)

// Config is the attestation manager's configuration file. Every key can be
// overridden by a TC_* environment variable (envKeys) and some by flags.
// Unknown keys are an error; all problems are reported at once; secrets
// come from files.
type Config struct {
	// PollDuration is the time between attestations of a node in minutes,
	// as the Helm value pollDuration ("60"), or a Go duration ("90m").
	PollDuration string `yaml:"pollDuration"`
	// Jitter spreads attestations over pollDuration ± jitter·pollDuration
	// (0 to 0.5; 0 turns it off).
	Jitter float64 `yaml:"jitter"`
	// GoldenFlavors is everyBoot, firstBoot or provided.
	GoldenFlavors string `yaml:"goldenFlavors"`
	// DiskEncryption is the disk encryption that makes a Verified node
	// ready: measured (systemd-cryptsetup's volume key measurement replayed
	// to the quoted PCR 15; the default) or claimed (the agent's word is
	// enough).
	DiskEncryption string `yaml:"diskEncryption"`
	// EvictNamespaces are drained from a node that fails (none: cordon only).
	EvictNamespaces []string `yaml:"evictNamespaces"`
	// Concurrency bounds the nodes attested at the same time.
	Concurrency int `yaml:"concurrency"`
	// RefreshInterval is how often the node list is read (and how soon an
	// onboarding request is seen, and drift of the verdict reverted).
	RefreshInterval time.Duration `yaml:"refreshInterval"`
	// MaxEvidenceAge is the age of a node's newest evidence past which it is
	// no longer Verified nor ready (never cordoned for it), in minutes or as
	// a Go duration; empty: twice pollDuration.
	MaxEvidenceAge string `yaml:"maxEvidenceAge"`

	Verifier   Verifier   `yaml:"verifier"`
	NATS       NATS       `yaml:"nats"`
	EIM        eim.Config `yaml:"eim"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	LogLevel   string     `yaml:"logLevel"`
	// MetricsAddr serves /healthz, /readyz and Prometheus /metrics
	// (plain HTTP, meant for the pod network; empty turns it off).
	MetricsAddr string `yaml:"metricsAddr"`
}

// Verifier says how to reach and trust the verifier.
type Verifier struct {
	// URL is the HVS base URL, e.g. https://verifier:8443.
	URL string `yaml:"url"`
	// AASURL is the AAS base URL when it differs from URL.
	AASURL string `yaml:"aasURL"`
	// CMSURL is where the CMS root is fetched when only CMSRootSHA384 is
	// set (default URL).
	CMSURL string `yaml:"cmsURL"`
	// CMSRootFile is the PEM file of the CMS root CA; CMSRootSHA384 pins
	// it (hex SHA-384 of the DER certificate). One of them is required.
	CMSRootFile   string `yaml:"cmsRootFile"`
	CMSRootSHA384 string `yaml:"cmsRootSHA384"`
	// Username and PasswordFile are the manager's AAS user.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
	// Timeout bounds one HTTP exchange with the verifier.
	Timeout time.Duration `yaml:"timeout"`
}

// NATS is the bus the verifier publishes trust reports on.
type NATS struct {
	URL string `yaml:"url"`
	// CredsFile holds the manager's NATS credentials (JWT + seed).
	CredsFile string `yaml:"credsFile"`
}

// Kubernetes says how to reach the API server.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty uses the in-cluster config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace is the manager's own namespace, where operators' onboard
	// requests are kept (ConfigMap trustedcompute-onboard-requests, which
	// nodes cannot write); empty: TC_POD_NAMESPACE, else trusted-compute.
	Namespace string `yaml:"namespace"`
}

func defaultConfig() Config {
	return Config{
		PollDuration:    "60",
		Jitter:          manager.DefaultJitter,
		GoldenFlavors:   string(manager.EveryBoot),
		DiskEncryption:  string(manager.DiskEncryptionMeasured),
		Concurrency:     manager.DefaultConcurrency,
		RefreshInterval: manager.DefaultRefreshInterval,
		Verifier:        Verifier{Username: "attestation-manager", Timeout: 2 * time.Minute},
		LogLevel:        "info",
		MetricsAddr:     ":9090",
	}
}

// envKeys lists every environment variable the manager reads, in one place.
var envKeys = []string{
	"TC_POLL_DURATION", "TC_JITTER", "TC_GOLDEN_FLAVORS", "TC_DISK_ENCRYPTION", "TC_EVICT_NAMESPACES", "TC_CONCURRENCY",
	"TC_REFRESH_INTERVAL", "TC_MAX_EVIDENCE_AGE",
	"TC_VERIFIER_URL", "TC_AAS_URL", "TC_CMS_URL", cms.EnvRootCAFile, cms.EnvRootSHA384,
	"TC_AAS_USERNAME", "TC_AAS_PASSWORD_FILE", "TC_VERIFIER_TIMEOUT",
	"TC_NATS_URL", "TC_NATS_CREDS_FILE",
	"TC_EIM_ADDRESS", "TC_EIM_CA_FILE", "TC_EIM_TOKEN_FILE", "TC_EIM_SERVER_NAME",
	"TC_KUBECONFIG", "TC_NAMESPACE", "TC_POD_NAMESPACE", "TC_LOG_LEVEL", "TC_METRICS_ADDR",
}

// loadConfig reads the file at path (if any) over the defaults, then the
// environment over both.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	var errs []error
	str := func(key string, dst *string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	dur := func(key string, dst *time.Duration) {
		if v := getenv(key); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				return
			}
			*dst = d
		}
	}
	str("TC_POLL_DURATION", &cfg.PollDuration)
	if v := getenv("TC_JITTER"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("TC_JITTER: %w", err))
		}
		cfg.Jitter = f
	}
	str("TC_GOLDEN_FLAVORS", &cfg.GoldenFlavors)
	str("TC_DISK_ENCRYPTION", &cfg.DiskEncryption)
	if v := getenv("TC_EVICT_NAMESPACES"); v != "" {
		cfg.EvictNamespaces = nil
		for ns := range strings.SplitSeq(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				cfg.EvictNamespaces = append(cfg.EvictNamespaces, ns)
			}
		}
	}
	if v := getenv("TC_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("TC_CONCURRENCY: %w", err))
		}
		cfg.Concurrency = n
	}
	dur("TC_REFRESH_INTERVAL", &cfg.RefreshInterval)
	str("TC_MAX_EVIDENCE_AGE", &cfg.MaxEvidenceAge)
	str("TC_VERIFIER_URL", &cfg.Verifier.URL)
	str("TC_AAS_URL", &cfg.Verifier.AASURL)
	str("TC_CMS_URL", &cfg.Verifier.CMSURL)
	str(cms.EnvRootCAFile, &cfg.Verifier.CMSRootFile)
	str(cms.EnvRootSHA384, &cfg.Verifier.CMSRootSHA384)
	str("TC_AAS_USERNAME", &cfg.Verifier.Username)
	str("TC_AAS_PASSWORD_FILE", &cfg.Verifier.PasswordFile)
	dur("TC_VERIFIER_TIMEOUT", &cfg.Verifier.Timeout)
	str("TC_NATS_URL", &cfg.NATS.URL)
	str("TC_NATS_CREDS_FILE", &cfg.NATS.CredsFile)
	str("TC_EIM_ADDRESS", &cfg.EIM.Address)
	str("TC_EIM_CA_FILE", &cfg.EIM.CAFile)
	str("TC_EIM_TOKEN_FILE", &cfg.EIM.TokenFile)
	str("TC_EIM_SERVER_NAME", &cfg.EIM.ServerName)
	str("TC_KUBECONFIG", &cfg.Kubernetes.Kubeconfig)
	if cfg.Kubernetes.Namespace == "" {
		str("TC_POD_NAMESPACE", &cfg.Kubernetes.Namespace)
	}
	str("TC_NAMESPACE", &cfg.Kubernetes.Namespace)
	str("TC_LOG_LEVEL", &cfg.LogLevel)
	str("TC_METRICS_ADDR", &cfg.MetricsAddr)
	return cfg, errors.Join(errs...)
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
		if maxAge, err = parseMinutesOrDuration(c.MaxEvidenceAge); err != nil {
			return manager.Config{}, fmt.Errorf("maxEvidenceAge: %w", err)
		}
	}
	return manager.Config{
		MaxEvidenceAge:  maxAge,
		PollDuration:    poll,
		Jitter:          jitter,
		GoldenFlavors:   manager.GoldenFlavors(c.GoldenFlavors),
		DiskEncryption:  manager.DiskEncryptionPolicy(c.DiskEncryption),
		EvictNamespaces: c.EvictNamespaces,
		Concurrency:     c.Concurrency,
		RefreshInterval: c.RefreshInterval,
	}.WithDefaults(), nil
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	if mc, err := c.managerConfig(); err != nil {
		errs = append(errs, err)
	} else if err := mc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter %v is negative", c.Jitter))
	}
	if err := checkURL("verifier.url", c.Verifier.URL, true, "https"); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL("verifier.aasURL", c.Verifier.AASURL, false, "https"); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL("verifier.cmsURL", c.Verifier.CMSURL, false, "https"); err != nil {
		errs = append(errs, err)
	}
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
	if err := checkURL("nats.url", c.NATS.URL, true, "tls", "nats"); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.CredsFile == "" {
		errs = append(errs, errors.New("nats.credsFile is required"))
	}
	if err := c.EIM.Validate(); err != nil {
		errs = append(errs, err)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("logLevel %q: %w", c.LogLevel, err))
	}
	return errors.Join(errs...)
}

// parseMinutesOrDuration reads whole minutes ("120", the Helm form) or a Go
// duration ("2h"); it must be positive.
func parseMinutesOrDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.Atoi(s); err == nil {
		d = time.Duration(n) * time.Minute
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("%q: want minutes or a duration such as 2h", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: want more than 0", d)
	}
	return d, nil
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
