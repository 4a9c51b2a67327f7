// Command verifier runs the Trusted Compute verifier: AAS, CMS, HVS and the
// NATS bus in one process, on SQLite (default) or PostgreSQL.
//
//	verifier run [-config file] [-listen addr] [-data-dir dir]
//	verifier version
package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/hvs"
)

var version = "dev"

func main() { program().Main() }

func program() cli.Program {
	return cli.Program{Name: "verifier", Version: version, Usage: usage, Commands: map[string]cli.Func{"run": cmdRun, "nats-export": cmdNATSExport}}
}

const usage = `usage: verifier <command> [flags]

commands:
  run          serve AAS, CMS, HVS and NATS
  nats-export  write the NATS operator and account JWTs and the verifier's
               credentials for an external NATS cluster (-out DIR)
  version      print the version`

// cmdNATSExport writes, from the configured database, what an external
// NATS cluster needs (verifier.ExportNATS).
func cmdNATSExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, configPath := cli.Flags("nats-export", stderr)
	out := fs.String("out", "", "directory to write operator.jwt, accounts.conf and hvs.creds into (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("nats-export: --out is required")
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	vcfg, logger, err := cfg.prepare(getenv, stderr)
	if err != nil {
		return err
	}
	if err := verifier.ExportNATS(ctx, vcfg, *out, cfg.NATS.CredentialLifetime, logger); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s, %s and %s to %s\n", verifier.NATSOperatorFile, verifier.NATSAccountsFile,
		verifier.NATSServiceCredsFile, *out)
	return err
}

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer, getenv func(string) string) error {
	fs, configPath := cli.Flags("run", stderr)
	listen := fs.String("listen", "", "HTTPS address (overrides the config)")
	dataDir := fs.String("data-dir", "", "data directory (overrides the config)")
	natsURL := fs.String("nats-url", "", "external NATS cluster instead of the embedded server (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	cfg.Listen = cmp.Or(*listen, cfg.Listen)
	cfg.DataDir = cmp.Or(*dataDir, cfg.DataDir)
	cfg.NATS.URL = cmp.Or(*natsURL, cfg.NATS.URL)
	vcfg, logger, err := cfg.prepare(getenv, stderr)
	if err != nil {
		return err
	}
	tuneMemory(cfg.GCPercent, cfg.MemoryLimitRatio, getenv, memlimit.FromCgroup, logger)
	if cfg.Debug.PprofListen != "" {
		if err := servePprof(ctx, cfg.Debug.PprofListen, logger); err != nil {
			return err
		}
	}
	v, err := verifier.New(ctx, vcfg, logger)
	if err != nil {
		return err
	}
	return v.Run(ctx)
}

// prepare validates the configuration and returns the composition root's
// configuration and the logger every command uses.
func (c Config) prepare(getenv func(string) string, stderr io.Writer) (verifier.Config, *slog.Logger, error) {
	if err := c.validate(); err != nil {
		return verifier.Config{}, nil, err
	}
	vcfg, err := c.verifierConfig(getenv)
	if err != nil {
		return verifier.Config{}, nil, err
	}
	logger, err := cli.Logger(stderr, c.LogLevel)
	if err != nil {
		return verifier.Config{}, nil, err
	}
	return vcfg, logger, nil
}

// verifierConfig turns the file configuration into the composition root's.
func (c Config) verifierConfig(getenv func(string) string) (verifier.Config, error) {
	db := c.Database
	if db == "" {
		db = "sqlite:" + filepath.Join(c.DataDir, "verifier.db")
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return verifier.Config{}, err
		}
	}
	a := aas.DefaultConfig()
	a.Issuer, a.Audience, a.TokenValidity, a.Leeway = c.Tokens.Issuer, c.Tokens.Audience, c.Tokens.Validity, c.Tokens.Leeway
	a.CredentialValidity = c.NATS.CredentialLifetime
	a.AdminUsername = c.Admin.Username
	proxies, err := aas.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return verifier.Config{}, fmt.Errorf("trusted_proxies: %w", err)
	}
	a.TrustedProxies = proxies
	a.AdminPasswordFile = c.Admin.PasswordFile
	a.AdminPassword = getenv("TC_ADMIN_PASSWORD")
	if a.AdminPasswordFile != "" {
		a.AdminPassword = ""
	}
	var ips []net.IP
	for _, s := range c.IPs {
		ips = append(ips, net.ParseIP(s))
	}
	ekRoots, err := loadPool(c.Enrollment.EKCAFiles)
	if err != nil {
		return verifier.Config{}, err
	}
	out := verifier.Config{
		Listen: c.Listen, Database: db, DataDir: c.DataDir,
		KeyEncryption: verifier.KeyEncryptionConfig{
			KeyFile: c.KeyEncryptionKeyFile, Key: c.keyEncryptionKey,
			PreviousKeyFiles: c.PreviousKeyEncryptionKeyFiles,
		},
		ServerName: c.ServerName, DNSNames: c.DNSNames, IPs: ips, AAS: a,
		NATS:      verifier.NATSConfig{External: c.NATS.URL, ExternalCredsFile: c.NATS.CredsFile},
		Metrics:   verifier.MetricsConfig{Listen: c.Metrics.Listen},
		Dashboard: verifier.DashboardConfig{Listen: c.Dashboard.Listen, StaleAfter: c.Dashboard.StaleAfter},
		HVS: hvs.Config{Interval: c.HVS.Interval, ReportRetention: c.HVS.ReportRetention,
			FlavorCacheBytes: c.HVS.FlavorCacheMiB << 20, IMAPolicyCacheBytes: c.HVS.IMAPolicyCacheMiB << 20,
			IMACacheEntries: c.HVS.IMACacheEntries, EventLogCacheEntries: c.HVS.EventLogCacheEntries, EventInterval: c.HVS.EventInterval},
		Enrollment: enroll.Config{EKRoots: ekRoots, EKIntermediates: ekRoots, AllowRegisteredEKs: c.Enrollment.AllowRegisteredEKs,
			AKCacheEntries: c.Enrollment.AKCacheEntries},
	}
	if c.previousKeyEncryptionKey != "" {
		out.KeyEncryption.PreviousKeys = []string{c.previousKeyEncryptionKey}
	}
	if c.NATS.URL == "" {
		host, port, _ := net.SplitHostPort(c.NATS.Listen)
		out.NATS.Host = host
		out.NATS.Port, _ = strconv.Atoi(port)
		out.NATS.ServerName = c.NATS.ServerName
		if out.NATS.ServerName == "" {
			out.NATS.ServerName, _ = os.Hostname()
		}
		if cl := c.NATS.Cluster; cl.Name != "" {
			host, port, _ := net.SplitHostPort(cl.Listen)
			out.NATS.Cluster = verifier.NATSClusterConfig{Name: cl.Name, Host: host, Routes: cl.Routes, NoAdvertise: cl.NoAdvertise}
			out.NATS.Cluster.Port, _ = strconv.Atoi(port)
		}
	}
	return out, nil
}

// loadPool reads PEM bundles into one pool; nil when no file is given (no EK
// certificate is trusted then).
func loadPool(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ek ca file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ek ca file %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}
