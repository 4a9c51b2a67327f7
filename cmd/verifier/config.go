package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/verifier/aas"
)

// Config is the verifier's configuration file. Every key can be overridden by
// a TC_* environment variable (listed in docs/config.md) and some by flags.
// Unknown keys are an error; all problems are reported at once.
type Config struct {
	// Listen is the HTTPS address of the AAS, CMS and HVS APIs.
	Listen string `yaml:"listen" env:"TC_LISTEN"`
	// DataDir holds the SQLite database (unless Database says otherwise) and
	// a copy of the CMS root certificate.
	DataDir string `yaml:"data_dir" env:"TC_DATA_DIR"`
	// Database is sqlite:<path> or postgres://... (the URL may also come from
	// the file named by TC_DATABASE_URL_FILE, to keep its password out of env).
	Database string `yaml:"database" env:"TC_DATABASE_URL"`
	// KeyEncryptionKeyFile holds the key-encryption key that seals the
	// stored secrets: 32 random bytes, raw or base64, mode 0600. The key may
	// instead come from TC_KEY_ENCRYPTION_KEY (base64). Without either, the
	// verifier generates <data_dir>/kek on the first start (SQLite only);
	// production keeps the key outside the data directory.
	KeyEncryptionKeyFile string `yaml:"key_encryption_key_file" env:"TC_KEY_ENCRYPTION_KEY_FILE"`
	// PreviousKeyEncryptionKeyFiles hold retired keys while rotating: what
	// they sealed is re-sealed under the current key at start. Also
	// TC_PREVIOUS_KEY_ENCRYPTION_KEY (base64) for the environment form.
	PreviousKeyEncryptionKeyFiles []string `yaml:"previous_key_encryption_key_files" env:"TC_PREVIOUS_KEY_ENCRYPTION_KEY_FILES"`
	// keyEncryptionKey and previousKeyEncryptionKey are keys themselves
	// (base64), from TC_KEY_ENCRYPTION_KEY and TC_PREVIOUS_KEY_ENCRYPTION_KEY
	// only, never from the file.
	keyEncryptionKey, previousKeyEncryptionKey string
	// ServerName is the DNS name clients use; also DNSNames and IPs for the
	// TLS certificate.
	ServerName string   `yaml:"server_name" env:"TC_SERVER_NAME"`
	DNSNames   []string `yaml:"dns_names" env:"TC_DNS_NAMES"`
	IPs        []string `yaml:"ips" env:"TC_IPS"`
	// TrustedProxies are the reverse proxies (CIDR prefixes or addresses)
	// in front of the API or the dashboard whose X-Forwarded-For names the
	// client of a login, for the lockout and the throttle; none by default.
	TrustedProxies []string   `yaml:"trusted_proxies" env:"TC_TRUSTED_PROXIES"`
	Admin          Admin      `yaml:"admin"`
	Tokens         Tokens     `yaml:"tokens"`
	NATS           NATS       `yaml:"nats"`
	Enrollment     Enrollment `yaml:"enrollment"`
	Metrics        Metrics    `yaml:"metrics"`
	Dashboard      Dashboard  `yaml:"dashboard"`
	HVS            HVS        `yaml:"hvs"`
	Debug          Debug      `yaml:"debug"`
	LogLevel       string     `yaml:"log_level" env:"TC_LOG_LEVEL"`
	// GCPercent is the garbage collector's target (debug.SetGCPercent, as
	// GOGC): a collection starts once the heap has grown by this percentage
	// of what the last one left live. The verifier's live heap is mostly
	// state kept per node (bus connections, caches), marked again at every
	// collection; the reports waiting on a collection's marking make the
	// tail of the report latency (docs/scaling.md#memory), so the default
	// (200) collects half as often as Go's (100) for about a third more
	// memory. The GOGC environment variable, when set, wins.
	GCPercent int `yaml:"gc_percent" env:"TC_GC_PERCENT"`
	// MemoryLimitRatio sets the Go runtime's soft memory limit
	// (debug.SetMemoryLimit) to this share of the memory limit of the
	// verifier's cgroup (a container's resources.limits.memory, systemd's
	// MemoryMax), so that the garbage collector works harder as the heap
	// nears the limit rather than letting it double past it and the kernel
	// kill the process. 0, or a cgroup without a limit, sets none; the
	// GOMEMLIMIT environment variable, when set, wins.
	MemoryLimitRatio float64 `yaml:"memory_limit_ratio" env:"TC_MEMORY_LIMIT_RATIO"`
}

// HVS tunes host verification.
type HVS struct {
	// Interval is how often each host is expected to be attested: set it to
	// the attestation manager's pollDuration (default 1h). A host whose last
	// successful attestation is older than 1.5 × Interval is overdue
	// (GET /hvs/v2/hosts, tcctl host list, tc_hvs_hosts_overdue).
	Interval time.Duration `yaml:"interval" env:"TC_HVS_INTERVAL"`
	// ReportRetention is how long reports are kept (default 720h, at least
	// 1h and 2 × Interval); each host's newest report is always kept.
	ReportRetention time.Duration `yaml:"report_retention" env:"TC_HVS_REPORT_RETENTION"`
	// FlavorCacheMiB bounds the stored flavors kept verified and decoded
	// between reports (default 256).
	FlavorCacheMiB int `yaml:"flavor_cache_mib" env:"TC_HVS_FLAVOR_CACHE_MIB"`
	// IMAPolicyCacheMiB bounds the runtime policies kept verified and
	// compiled, by their compiled size (default 128: eight policies of
	// 100,000 paths).
	IMAPolicyCacheMiB int `yaml:"ima_policy_cache_mib" env:"TC_HVS_IMA_POLICY_CACHE_MIB"`
	// IMACacheEntries bounds the IMA entries kept in memory so that a report
	// reads only the new lines of a host's IMA log (default 1048576).
	IMACacheEntries int `yaml:"ima_cache_entries" env:"TC_HVS_IMA_CACHE_ENTRIES"`
	// EventLogCacheEntries bounds the boot log appraisals kept in memory
	// (default 4096; hosts that booted alike share one).
	EventLogCacheEntries int `yaml:"event_log_cache_entries" env:"TC_HVS_EVENT_LOG_CACHE_ENTRIES"`
	// EventInterval bounds the reports one host's bus events cause: two at
	// once, then one an interval (default 1s, below the agent's IMA poll of 5s; 100ms
	// to 10m). Faster events fold into the host's next report.
	EventInterval time.Duration `yaml:"event_interval" env:"TC_HVS_EVENT_INTERVAL"`
}

// Metrics configures Prometheus /metrics. On the API port it always needs
// the permission HVS:metrics:retrieve:*; Listen (e.g. 127.0.0.1:9464) also
// serves it without a token on its own plain-HTTP listener.
type Metrics struct {
	Listen string `yaml:"listen" env:"TC_METRICS_LISTEN"`
}

// Dashboard configures the operator's fleet dashboard (docs/dashboard.md):
// served over TLS 1.3 on its own address when Listen is set, off otherwise.
type Dashboard struct {
	Listen string `yaml:"listen" env:"TC_DASHBOARD_LISTEN"`
	// StaleAfter is the age past which a node's last report shows as stale.
	StaleAfter time.Duration `yaml:"stale_after" env:"TC_DASHBOARD_STALE_AFTER"`
}

// Enrollment configures how trust agents' attestation keys are enrolled.
type Enrollment struct {
	// EKCAFiles are PEM bundles of the TPM manufacturers' EK CAs (roots and
	// intermediates). An EK certificate must chain to one of them.
	EKCAFiles []string `yaml:"ek_ca_files" env:"TC_EK_CA_FILES"`
	// AllowRegisteredEKs accepts TPMs without an EK certificate when an
	// operator registered the EK public key (/hvs/v2/tpm-endorsements).
	AllowRegisteredEKs bool `yaml:"allow_registered_eks" env:"TC_ALLOW_REGISTERED_EKS"`
	// AKCacheEntries bounds the enrollments whose verified AK certificate
	// chain is kept between reports (default 65536).
	AKCacheEntries int `yaml:"ak_cache_entries" env:"TC_AK_CACHE_ENTRIES"`
}

// Admin is the first administrator, created on first start.
type Admin struct {
	Username string `yaml:"username" env:"TC_ADMIN_USERNAME"`
	// PasswordFile holds the password (TC_ADMIN_PASSWORD_FILE). There is no
	// default password.
	PasswordFile string `yaml:"password_file" env:"TC_ADMIN_PASSWORD_FILE"`
}

// Tokens configures AAS tokens.
type Tokens struct {
	Issuer   string        `yaml:"issuer" env:"TC_TOKEN_ISSUER"`
	Audience string        `yaml:"audience" env:"TC_TOKEN_AUDIENCE"`
	Validity time.Duration `yaml:"validity" env:"TC_TOKEN_VALIDITY"`
	// Leeway is the clock skew allowed past exp (and before nbf).
	Leeway time.Duration `yaml:"leeway" env:"TC_TOKEN_LEEWAY"`
}

// NATS configures the bus.
type NATS struct {
	// Listen is the embedded server's address (default :4222).
	Listen string `yaml:"listen" env:"TC_NATS_LISTEN"`
	// URL of an external NATS cluster; empty runs the embedded server.
	URL string `yaml:"url" env:"TC_NATS_URL"`
	// CredsFile holds the verifier's credentials for an external cluster.
	CredsFile string `yaml:"creds_file" env:"TC_NATS_CREDS_FILE"`
	// CredentialLifetime is the lifetime of the bus credentials AAS issues
	// and agents renew (default 30 days; agents renew at two thirds of it).
	CredentialLifetime time.Duration `yaml:"credential_lifetime" env:"TC_NATS_CREDENTIAL_LIFETIME"`
	// ServerName names the embedded server, unique among the replicas
	// (default: the host name, the pod name in Kubernetes).
	ServerName string `yaml:"server_name" env:"TC_NATS_SERVER_NAME"`
	// Cluster joins the replicas' embedded servers (docs/scaling.md).
	Cluster NATSCluster `yaml:"cluster"`
}

// NATSCluster joins the embedded NATS servers of the verifier replicas by
// routes: TLS 1.3 both ways, pinned to the CMS root, peers named server_name.
type NATSCluster struct {
	// Name is the cluster's name, the same on every replica; empty: no cluster.
	Name string `yaml:"name" env:"TC_NATS_CLUSTER_NAME"`
	// Listen is the route address (default :6222).
	Listen string `yaml:"listen" env:"TC_NATS_CLUSTER_LISTEN"`
	// Routes are the replicas' route URLs (nats://verifier-0.verifier-nats:6222,...).
	Routes []string `yaml:"routes" env:"TC_NATS_CLUSTER_ROUTES"`
	// NoAdvertise keeps the servers from advertising the replicas' client
	// addresses to agents (set it when agents reach the bus through a load
	// balancer and list its address themselves).
	NoAdvertise bool `yaml:"no_advertise" env:"TC_NATS_CLUSTER_NO_ADVERTISE"`
}

func defaultConfig() Config {
	return Config{
		Listen:     ":8443",
		DataDir:    "/var/lib/trusted-compute",
		ServerName: "localhost",
		IPs:        []string{"127.0.0.1"},
		Admin:      Admin{Username: "admin"},
		Tokens:     Tokens{Issuer: "trusted-compute-aas", Audience: "trusted-compute", Validity: time.Hour, Leeway: 5 * time.Second},
		NATS:       NATS{Listen: ":4222", CredentialLifetime: 30 * 24 * time.Hour, Cluster: NATSCluster{Listen: ":6222"}},
		HVS: HVS{Interval: time.Hour, ReportRetention: 30 * 24 * time.Hour, FlavorCacheMiB: 256, IMAPolicyCacheMiB: 128,
			IMACacheEntries: 1 << 20, EventLogCacheEntries: 4096, EventInterval: time.Second},
		Enrollment:       Enrollment{AKCacheEntries: 1 << 16},
		LogLevel:         "info",
		GCPercent:        200,
		MemoryLimitRatio: 0.9,
	}
}

func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	errs := []error{config.Load(path, getenv, &cfg)}
	// The database URL may come from a file, to keep its password out of
	// the environment.
	if f := getenv("TC_DATABASE_URL_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("TC_DATABASE_URL_FILE: %w", err))
		}
		cfg.Database = strings.TrimSpace(string(b))
	}
	// Keys themselves come from the environment only, never from the file.
	cfg.keyEncryptionKey = getenv("TC_KEY_ENCRYPTION_KEY")
	cfg.previousKeyEncryptionKey = getenv("TC_PREVIOUS_KEY_ENCRYPTION_KEY")
	return cfg, errors.Join(errs...)
}

// validate reports every problem at once (errors.Join drops the nil ones).
func (c Config) validate() error {
	errs := []error{hostPort("listen", c.Listen, false)}
	if c.Database == "" && c.DataDir == "" {
		errs = append(errs, errors.New("set database or data_dir"))
	}
	if c.ServerName == "" {
		errs = append(errs, errors.New("server_name must be set"))
	}
	for _, ip := range c.IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("ips: %q is not an IP address", ip))
		}
	}
	if _, err := aas.ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted_proxies: %w", err))
	}
	if c.Tokens.Validity <= 0 || c.Tokens.Validity > 24*time.Hour {
		errs = append(errs, fmt.Errorf("tokens.validity %s: want more than 0 and at most 24h", c.Tokens.Validity))
	}
	if c.Tokens.Leeway <= 0 || c.Tokens.Leeway > time.Minute {
		errs = append(errs, fmt.Errorf("tokens.leeway %s: want more than 0 and at most 1m", c.Tokens.Leeway))
	}
	if c.GCPercent < 25 || c.GCPercent > 1000 {
		errs = append(errs, fmt.Errorf("gc_percent %d: want 25 to 1000 (for collections at the memory limit only, set GOGC=off in the environment)", c.GCPercent))
	}
	if !(c.MemoryLimitRatio >= 0 && c.MemoryLimitRatio <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("memory_limit_ratio %g: want 0 (none) to 1", c.MemoryLimitRatio))
	}
	if c.Metrics.Listen != "" {
		errs = append(errs, hostPort("metrics.listen", c.Metrics.Listen, false))
	}
	if c.Dashboard.Listen != "" {
		errs = append(errs, hostPort("dashboard.listen", c.Dashboard.Listen, false))
	}
	if c.Dashboard.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("dashboard.stale_after %s: want a positive duration", c.Dashboard.StaleAfter))
	}
	if c.NATS.CredentialLifetime < time.Minute || c.NATS.CredentialLifetime > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("nats.credential_lifetime %s: want at least 1m and at most 8784h (366 days)", c.NATS.CredentialLifetime))
	}
	if c.NATS.URL == "" {
		errs = append(errs, hostPort("nats.listen", c.NATS.Listen, true))
		if c.NATS.Cluster.Name != "" {
			errs = append(errs, hostPort("nats.cluster.listen", c.NATS.Cluster.Listen, true))
		}
	} else if c.NATS.CredsFile == "" {
		errs = append(errs, errors.New("nats.creds_file must be set with an external nats.url"))
	}
	if c.HVS.Interval < time.Minute || c.HVS.Interval > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("hvs.interval %s: want at least 1m and at most 168h", c.HVS.Interval))
	}
	if c.HVS.EventInterval < 100*time.Millisecond || c.HVS.EventInterval > 10*time.Minute {
		errs = append(errs, fmt.Errorf("hvs.event_interval %s: want at least 100ms and at most 10m", c.HVS.EventInterval))
	}
	if c.HVS.ReportRetention < time.Hour || c.HVS.ReportRetention < 2*c.HVS.Interval {
		errs = append(errs, fmt.Errorf("hvs.report_retention %s: want at least 1h and 2 × hvs.interval (%s)", c.HVS.ReportRetention, c.HVS.Interval))
	}
	for _, b := range []struct {
		key      string
		v, limit int
	}{
		{"hvs.flavor_cache_mib", c.HVS.FlavorCacheMiB, 1 << 16},
		{"hvs.ima_policy_cache_mib", c.HVS.IMAPolicyCacheMiB, 1 << 16},
		{"hvs.ima_cache_entries", c.HVS.IMACacheEntries, 1 << 30},
		{"hvs.event_log_cache_entries", c.HVS.EventLogCacheEntries, 1 << 24},
		{"enrollment.ak_cache_entries", c.Enrollment.AKCacheEntries, 1 << 24},
	} {
		if b.v < 1 || b.v > b.limit {
			errs = append(errs, fmt.Errorf("%s %d: want at least 1 and at most %d", b.key, b.v, b.limit))
		}
	}
	// The profiles show what the verifier does, and they are served
	// without a token.
	if err := config.LoopbackAddr(c.Debug.PprofListen); err != nil {
		errs = append(errs, fmt.Errorf("debug.pprof_listen %q: %w", c.Debug.PprofListen, err))
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log_level %q: %w", c.LogLevel, err))
	}
	return errors.Join(errs...)
}

// hostPort checks that the address addr of key is host:port; numeric also
// wants the port a number, not a service name.
func hostPort(key, addr string, numeric bool) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, addr, err)
	}
	if _, err := strconv.Atoi(port); numeric && err != nil {
		return fmt.Errorf("%s %q: port: %w", key, addr, err)
	}
	return nil
}
