package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/tpm"
)

// Config is the trust agent's configuration: a YAML file, overridden by TC_*
// environment variables, overridden by flags. Unknown keys are an error.
type Config struct {
	// TPM selects the TPM: device | device:<path> | swtpm:unix:<path> |
	// swtpm:<host>:<port> | simulator.
	TPM string `yaml:"tpm"`
	// Root is the file system root the measurements are read under.
	Root string `yaml:"root"`
	// HostID is the host's id on the bus; default: the SMBIOS system UUID.
	HostID string `yaml:"host_id"`
	// AKAlgorithm is ecc-p256 (default) or rsa2048.
	AKAlgorithm string `yaml:"ak_algorithm"`
	// AKHandle is the AK's persistent handle (default 0x81000100).
	AKHandle uint32 `yaml:"ak_handle"`
	NATS     NATS   `yaml:"nats"`
	// IMAPollInterval is how often the IMA log is checked for growth.
	IMAPollInterval time.Duration `yaml:"ima_poll_interval"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// NATS says how the agent dials out to the verifier's bus.
type NATS struct {
	URL string `yaml:"url"`
	// CredsFile holds the agent's NATS credentials (issued by AAS).
	CredsFile string `yaml:"creds_file"`
	// CAFile is the CMS root the bus's TLS certificate must chain to.
	CAFile string `yaml:"ca_file"`
	// SerialDevice, when set, carries the bus connection over this serial
	// line (raw mode) instead of TCP, for a node without a network to the
	// verifier, such as a VM talking to its host over a second serial port.
	// The host side bridges the line to the bus: see serialDialer.
	SerialDevice string `yaml:"serial_device"`
}

func defaultConfig() Config {
	return Config{TPM: "device", Root: "/", AKAlgorithm: string(tpm.ECCP256), IMAPollInterval: 5 * time.Second, LogLevel: "info"}
}

// loadConfig reads path (optional), then the environment.
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
	str("TC_TPM", &cfg.TPM)
	str("TC_ROOT", &cfg.Root)
	str("TC_HOST_ID", &cfg.HostID)
	str("TC_AK_ALGORITHM", &cfg.AKAlgorithm)
	str("TC_NATS_URL", &cfg.NATS.URL)
	str("TC_NATS_CREDS_FILE", &cfg.NATS.CredsFile)
	str("TC_NATS_CA_FILE", &cfg.NATS.CAFile)
	str("TC_NATS_SERIAL_DEVICE", &cfg.NATS.SerialDevice)
	str("TC_LOG_LEVEL", &cfg.LogLevel)
	if v := getenv("TC_AK_HANDLE"); v != "" {
		h, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("TC_AK_HANDLE: %w", err))
		}
		cfg.AKHandle = uint32(h)
	}
	if v := getenv("TC_IMA_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("TC_IMA_POLL_INTERVAL: %w", err))
		}
		cfg.IMAPollInterval = d
	}
	return cfg, errors.Join(errs...)
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
