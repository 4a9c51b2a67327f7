package verifier

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Files ExportNATS writes.
//
//nolint:gosec // G101: file names, not credentials
const (
	// NATSOperatorFile is the operator JWT (nats-server's `operator`).
	NATSOperatorFile = "operator.jwt"
	// NATSAccountsFile is a nats-server configuration fragment: the
	// operator, the system account and a memory resolver preloaded with the
	// account JWTs (revocations recorded so far included). Include it in the
	// external servers' configuration.
	NATSAccountsFile = "accounts.conf"
	// NATSServiceCredsFile holds the verifier's own service credentials for
	// the external cluster (nats.creds_file), mode 0600.
	NATSServiceCredsFile = "hvs.creds"
)

// ExportNATS writes into dir what an external NATS cluster needs to trust the
// verifier's users (docs/scaling.md): the operator and account JWTs of the
// authority kept in cfg's database, and the verifier's service credentials,
// valid for ttl. It creates the seeds on a new database, as the first start
// would. The account JWT carries the revocations recorded now; later ones are
// not pushed to an external cluster (docs/verifier.md). The service
// credentials are recorded in the key ledger under the service name hvs:
// DELETE /aas/v1/credentials/services/hvs revokes them.
func ExportNATS(ctx context.Context, cfg Config, dir string, ttl time.Duration, logger *slog.Logger) error {
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	auth, err := busserver.NewAuthority(ctx, st, store.ErrNotFound, busserver.WithLedger(keyLedger{st}))
	if err != nil {
		return fmt.Errorf("nats authority: %w", err)
	}
	creds, err := auth.ServiceCredentialsContext(ctx, "hvs", ttl)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("export nats: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{NATSOperatorFile, []byte(auth.OperatorJWT() + "\n"), 0o644},
		{NATSAccountsFile, []byte(accountsConf(auth)), 0o644},
		{NATSServiceCredsFile, creds, 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("export nats: %w", err)
		}
	}
	return nil
}

// accountsConf is the nats-server configuration fragment of auth: operator,
// system account and the memory resolver's preload.
func accountsConf(auth *busserver.Authority) string {
	var b strings.Builder
	b.WriteString("# Trusted Compute: the verifier's NATS operator and accounts (verifier nats-export).\n")
	fmt.Fprintf(&b, "operator: %q\n", auth.OperatorJWT())
	fmt.Fprintf(&b, "system_account: %s\n", auth.SystemAccountPublicKey())
	b.WriteString("resolver: MEMORY\nresolver_preload: {\n")
	accounts := auth.AccountJWTs()
	keys := make([]string, 0, len(accounts))
	for k := range accounts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, accounts[k])
	}
	b.WriteString("}\n")
	return b.String()
}
