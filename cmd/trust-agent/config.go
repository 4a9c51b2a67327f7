package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/tpm"
)

// Config is the trust agent's configuration: a YAML file, overridden by TC_*
// environment variables, overridden by flags. Unknown keys are an error.
type Config struct {
	// TPM selects the TPM: device | device:<path> | swtpm:unix:<path> |
	// swtpm:<host>:<port> | simulator.
	TPM string `yaml:"tpm" env:"TC_TPM"`
	// Root is the file system root the measurements are read under.
	Root string `yaml:"root" env:"TC_ROOT"`
	// HostID is the host's id on the bus; default: the SMBIOS system UUID.
	HostID string `yaml:"host_id" env:"TC_HOST_ID"`
	// NodeName is the Kubernetes Node the agent runs on (the chart sets it
	// from the Downward API's spec.nodeName); the agent's host facts carry
	// it, bound to its quotes, and the attestation manager applies the
	// host's reports to that Node only. Empty outside Kubernetes.
	NodeName string `yaml:"node_name" env:"TC_NODE_NAME"`
	// AKAlgorithm is ecc-p256 (default) or rsa2048.
	AKAlgorithm string `yaml:"ak_algorithm" env:"TC_AK_ALGORITHM"`
	// AKHandle is the AK's persistent handle (default 0x81000100).
	AKHandle uint32 `yaml:"ak_handle" env:"TC_AK_HANDLE"`
	NATS     NATS   `yaml:"nats"`
	// IMAPollInterval is how often the IMA log is checked for growth.
	IMAPollInterval time.Duration `yaml:"ima_poll_interval" env:"TC_IMA_POLL_INTERVAL"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level" env:"TC_LOG_LEVEL"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (debug.SetMemoryLimit): the garbage collector works harder as the
	// agent's heap nears it, instead of letting the heap double between
	// collections. 0 leaves the runtime's default (no limit); the GOMEMLIMIT
	// environment variable, when set, wins over this setting.
	MemoryLimit int64 `yaml:"memory_limit" env:"TC_MEMORY_LIMIT"`
	// Secrets are the key broker secrets this node asks for
	// (docs/secrets.md).
	Secrets Secrets `yaml:"secrets"`
}

// Secrets names the key broker secrets the agent keeps leased, and where.
type Secrets struct {
	// Names are the secrets to ask for; none asks for nothing.
	Names []string `yaml:"names" env:"TC_SECRETS"`
	// Dir, when set, receives each secret as the file <dir>/<name> (0400);
	// it must be on a tmpfs (a trusted workload mounts it). Empty keeps the
	// secrets in the agent's memory.
	Dir string `yaml:"dir" env:"TC_SECRETS_DIR"`
}

// defaultMemoryLimit keeps the agent's heap near its live size: measured on
// a node workload (test/e2e/agent), it lowers the peak resident set by about
// 3 MiB; a soft limit never fails an allocation, and the runtime bounds the
// CPU the collector may take when the live heap is above it.
const defaultMemoryLimit = 6 << 20

// NATS says how the agent dials out to the verifier's bus.
type NATS struct {
	URL string `yaml:"url" env:"TC_NATS_URL"`
	// CredsFile holds the agent's NATS credentials (issued by AAS).
	CredsFile string `yaml:"creds_file" env:"TC_NATS_CREDS_FILE"`
	// UpdateCredsFile writes the credentials the agent renews over the bus
	// back to CredsFile (atomically, mode 0600), so that a restart after the
	// first credentials expired still connects. Off by default: the renewed
	// credentials then live in memory only and a restart needs credentials
	// that are still valid. The file's directory must be writable.
	UpdateCredsFile bool `yaml:"update_creds_file" env:"TC_NATS_UPDATE_CREDS_FILE"`
	// CAFile is the CMS root the bus's TLS certificate must chain to.
	CAFile string `yaml:"ca_file" env:"TC_NATS_CA_FILE"`
	// SerialDevice, when set, carries the bus connection over this serial
	// line (raw mode) instead of TCP, for a node without a network to the
	// verifier, such as a VM talking to its host over a second serial port.
	// The host side bridges the line to the bus: see serialDialer.
	SerialDevice string `yaml:"serial_device" env:"TC_NATS_SERIAL_DEVICE"`
}

func defaultConfig() Config {
	return Config{TPM: "device", Root: "/", AKAlgorithm: string(tpm.ECCP256), IMAPollInterval: 5 * time.Second, LogLevel: "info", MemoryLimit: defaultMemoryLimit}
}

// loadConfig reads path (optional), then the environment.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	err := config.Load(path, getenv, &cfg)
	return cfg, err
}

// validate reports every problem at once; needBus adds the bus settings.
func (c Config) validate(needBus bool) error {
	var errs []error
	if c.TPM == "" {
		errs = append(errs, errors.New("tpm must be set"))
	}
	switch tpm.KeyAlgorithm(strings.ToLower(c.AKAlgorithm)) {
	case tpm.ECCP256, tpm.RSA2048:
	default:
		errs = append(errs, fmt.Errorf("ak_algorithm %q: want %s or %s", c.AKAlgorithm, tpm.ECCP256, tpm.RSA2048))
	}
	if c.IMAPollInterval <= 0 {
		errs = append(errs, fmt.Errorf("ima_poll_interval must be positive, got %s", c.IMAPollInterval))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("memory_limit must not be negative, got %d", c.MemoryLimit))
	}
	if needBus {
		if c.NATS.URL == "" {
			errs = append(errs, errors.New("nats.url must be set"))
		}
		if c.NATS.CredsFile == "" {
			errs = append(errs, errors.New("nats.creds_file must be set"))
		}
		if c.NATS.CAFile == "" {
			errs = append(errs, errors.New("nats.ca_file must be set (the CMS root the bus certificate chains to)"))
		}
	}
	return errors.Join(errs...)
}
