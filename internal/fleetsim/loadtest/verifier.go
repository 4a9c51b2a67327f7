package loadtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"trustedcompute.io/tc/internal/fleetsim"
)

// verifierProc is the verifier binary running as its own process.
type verifierProc struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	dir     string
	Base    string
	NATSURL string
	Roots   *x509.CertPool
	// Password is the first administrator's.
	Password string
	// Pprof is the verifier's net/http/pprof address (debug.pprof_listen),
	// for `go tool pprof http://<Pprof>/debug/pprof/profile`.
	Pprof string
}

// startVerifier writes a configuration (loopback listeners, the database,
// the simulator's EK CA as the only trusted EK CA) and runs `verifier run`
// on it until the returned process is stopped, in tc-loadtest's environment
// and env (KEY=VALUE, later wins). Its log goes to <dir>/verifier.log.
func startVerifier(ctx context.Context, bin, dir, database string, ekCAPEM []byte, env []string) (*verifierProc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	pw := make([]byte, 18)
	kek := make([]byte, 32)
	_, _ = rand.Read(pw)
	_, _ = rand.Read(kek)
	password := base64.RawURLEncoding.EncodeToString(pw)
	files := map[string][]byte{
		"admin-password": []byte(password + "\n"),
		"kek":            []byte(base64.StdEncoding.EncodeToString(kek)),
		"ek-ca.pem":      ekCAPEM,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(ctx, 3)
	if err != nil {
		return nil, err
	}
	httpPort, natsPort, pprofPort := ports[0], ports[1], ports[2]
	if database == "" {
		database = "sqlite:" + filepath.Join(dir, "data", "verifier.db")
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data_dir: %s
database: %q
key_encryption_key_file: %s
server_name: localhost
ips: [127.0.0.1]
admin:
  username: admin
  password_file: %s
nats:
  listen: 127.0.0.1:%d
enrollment:
  ek_ca_files: [%s]
debug:
  pprof_listen: 127.0.0.1:%d
log_level: warn
`, httpPort, filepath.Join(dir, "data"), database, filepath.Join(dir, "kek"), filepath.Join(dir, "admin-password"),
		natsPort, filepath.Join(dir, "ek-ca.pem"), pprofPort)
	cfgPath := filepath.Join(dir, "verifier.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "verifier.log")) //nolint:gosec // G304: the load test's own work directory
	if err != nil {
		return nil, err
	}
	// Not ctx: Stop ends the verifier with SIGTERM, then waits.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, "run", "-config", cfgPath) //nolint:gosec // G204: the verifier binary the caller names
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start verifier: %w", err)
	}
	v := &verifierProc{cmd: cmd, exited: make(chan struct{}), dir: dir, Password: password,
		Base: fmt.Sprintf("https://127.0.0.1:%d", httpPort), Pprof: fmt.Sprintf("127.0.0.1:%d", pprofPort), NATSURL: fmt.Sprintf("tls://127.0.0.1:%d", natsPort)}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(v.exited) }()
	if err := v.waitReady(ctx); err != nil {
		v.Stop()
		return nil, err
	}
	return v, nil
}

// waitReady waits for the CMS root the verifier writes and its API to log
// the administrator in.
func (v *verifierProc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-v.exited:
			return fmt.Errorf("verifier exited at start (see %s)", filepath.Join(v.dir, "verifier.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("verifier not ready in 90s (see %s)", filepath.Join(v.dir, "verifier.log"))
		}
		pemBytes, err := os.ReadFile(filepath.Join(v.dir, "data", "cms-root.pem"))
		if err != nil {
			continue
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			continue
		}
		api := fleetsim.NewAPI(v.Base, roots, "admin", v.Password, 1)
		_, err = api.Call(ctx, "GET", "/hvs/v2/hosts?limit=1", nil)
		api.Close()
		if err == nil {
			v.Roots = roots
			return nil
		}
	}
}

// PasswordFile holds the administrator's password.
func (v *verifierProc) PasswordFile() string { return filepath.Join(v.dir, "admin-password") }

// PID is the verifier's process id.
func (v *verifierProc) PID() int { return v.cmd.Process.Pid }

// Stop asks the verifier to stop, kills it after 20 s, and waits.
func (v *verifierProc) Stop() {
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(20 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
}

// freePorts finds n distinct free TCP ports on the loopback.
func freePorts(ctx context.Context, n int) ([]int, error) {
	var lc net.ListenConfig
	ports := make([]int, 0, n)
	for range n {
		// Each listener stays open until all are found, so the ports differ.
		l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
