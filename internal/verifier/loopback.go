package verifier

import (
	"net"
	"path/filepath"

	"trustedcompute.io/tc/internal/verifier/aas"
)

// LoopbackConfig is a verifier for one machine, as the sandbox and the tests
// run it: HTTPS and NATS on 127.0.0.1 at ports the kernel picks, a
// certificate for localhost, SQLite and the keys in dataDir, and AAS's
// defaults (the caller sets the first admin's password).
func LoopbackConfig(dataDir string) Config {
	return Config{
		Listen:     "127.0.0.1:0",
		Database:   "sqlite:" + filepath.Join(dataDir, "verifier.db"),
		DataDir:    dataDir,
		ServerName: "localhost",
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		AAS:        aas.DefaultConfig(),
		NATS:       NATSConfig{Host: "127.0.0.1"},
	}
}
