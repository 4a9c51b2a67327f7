// Package tpmtest starts real software TPMs (swtpm) for tests: a fresh one
// per test, optionally provisioned with EK certificates, that can be
// restarted on the same state to simulate a reboot.
//
// A program a test needs (swtpm, swtpm_setup) that is missing skips the
// test, unless the comma-separated env TC_TEST_REQUIRE names it; then the
// test fails. `make test` sets TC_TEST_REQUIRE.
//
// Reboots: stopping swtpm and starting it again on the same state directory
// (Restart) is a power cycle: it starts with TPM2_Startup(CLEAR), which is a
// TPM Reset, so clockInfo.resetCount grows by one, persistent objects and
// NV survive, transient objects and PCRs do not. The control channel's
// CMD_INIT (swtpm_ioctl -i) also resets the TPM without a restart, but then
// the client must itself send TPM2_Startup(CLEAR) on its server connection
// (the startup-clear flag acts only when the process starts), so Restart is
// the helper offered here.
package tpmtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/graceful"
)

// Paths of the local CA swtpm_setup issues EK certificates from (Debian's
// /etc/swtpm-localca.conf). The EK certificate's issuer is LocalCACert
// (CN=swtpm-localca), which LocalCARootCert (CN=swtpm-localca-rootca) signs.
const (
	LocalCACert     = "/var/lib/swtpm-localca/issuercert.pem"
	LocalCARootCert = "/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem"
)

// localCAMu keeps two tests of a package from creating the local CA at once.
var localCAMu sync.Mutex

// EnsureLocalCA makes sure swtpm's local CA (LocalCACert, LocalCARootCert)
// exists. swtpm_setup creates it the first time it issues an EK
// certificate on a machine, so a test that reads it before any TPM was
// manufactured there (on a fresh machine, whichever package runs first)
// would find nothing: EnsureLocalCA then manufactures a throwaway TPM
// state. Read the CA's files only after it.
func EnsureLocalCA(t testing.TB) {
	t.Helper()
	localCAMu.Lock()
	defer localCAMu.Unlock()
	if haveLocalCA() {
		return
	}
	manufacture(t, t.TempDir())
	if !haveLocalCA() {
		t.Fatalf("swtpm_setup issued an EK certificate but %s or %s is missing", LocalCACert, LocalCARootCert)
	}
}

func haveLocalCA() bool {
	for _, f := range []string{LocalCACert, LocalCARootCert} {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// LocalCAPool holds both certificates of the swtpm local CA (LocalCACert
// and LocalCARootCert): the EK roots of a verifier that is to accept the EK
// certificates of NewWithEKCert.
func LocalCAPool(t testing.TB) *x509.CertPool {
	t.Helper()
	EnsureLocalCA(t)
	pool := x509.NewCertPool()
	for _, f := range []string{LocalCACert, LocalCARootCert} {
		b, err := os.ReadFile(f) //nolint:gosec // G304: swtpm's fixed local CA paths
		if err != nil {
			t.Fatalf("swtpm local CA: %v", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			t.Fatalf("swtpm local CA: %s holds no certificate", f)
		}
	}
	return pool
}

// RequireEnv is the env variable that turns a missing program into a failure.
const RequireEnv = "TC_TEST_REQUIRE"

// Require returns the path of program, or skips the test when it is
// missing; when TC_TEST_REQUIRE names program, it fails the test instead.
func Require(t testing.TB, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if Required(program) {
		t.Fatalf("%s is required (%s=%q) but not found: %v", program, RequireEnv, os.Getenv(RequireEnv), err)
	}
	t.Skipf("%s not found (install the Debian package swtpm/swtpm-tools, or set %s=%s to make this a failure): %v", program, RequireEnv, program, err)
	return ""
}

// Required tells whether TC_TEST_REQUIRE names the tool: a test that
// cannot get it must fail rather than skip.
func Required(tool string) bool {
	return slices.Contains(strings.Split(os.Getenv(RequireEnv), ","), tool)
}

// Swtpm is a swtpm process serving TPM commands on a unix socket.
type Swtpm struct {
	// Dir is the TPM state directory.
	Dir string
	// ServerSock is the unix socket that takes raw TPM commands.
	ServerSock string
	// CtrlSock is swtpm's control channel.
	CtrlSock string
	// ServerAddr is the TCP address of the server socket when NewTCP
	// started it; ServerSock is empty then.
	ServerAddr string

	t      testing.TB
	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *bytes.Buffer
}

// newSwtpm is a swtpm not started yet, with its state and control socket
// in a temporary directory; it stops when the test ends.
func newSwtpm(t testing.TB) *Swtpm {
	t.Helper()
	s := &Swtpm{t: t, bin: Require(t, "swtpm"), Dir: t.TempDir()}
	s.CtrlSock = filepath.Join(s.Dir, "ctrl.sock")
	t.Cleanup(s.Stop)
	return s
}

// New starts a fresh swtpm in a temporary directory; it stops when the test ends.
func New(t testing.TB) *Swtpm {
	t.Helper()
	s := newSwtpm(t)
	s.ServerSock = filepath.Join(s.Dir, "tpm.sock")
	s.start()
	return s
}

// NewWithEKCert manufactures a TPM state with swtpm_setup (RSA-2048 and ECC
// P-384 EKs with certificates from the local CA, platform certificate,
// NVRAM locked; only the sha256 PCR bank active) and starts swtpm on it.
// It runs as root with Debian's /etc/swtpm_setup.conf; it takes about 1.5 s.
func NewWithEKCert(t testing.TB) *Swtpm {
	t.Helper()
	s := newSwtpm(t)
	s.ServerSock = filepath.Join(s.Dir, "tpm.sock")
	manufacture(t, s.Dir)
	s.start()
	return s
}

// manufacture runs swtpm_setup on the TPM state directory dir, as
// NewWithEKCert describes.
func manufacture(t testing.TB, dir string) {
	t.Helper()
	setup := Require(t, "swtpm_setup")
	out, err := exec.CommandContext(t.Context(), setup, "--tpm2", "--tpmstate", dir,
		"--create-ek-cert", "--create-platform-cert", "--lock-nvram", "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
}

// NewTCP starts a fresh swtpm whose server socket listens on a free TCP
// port of 127.0.0.1 (the control channel stays a unix socket).
func NewTCP(t testing.TB) *Swtpm {
	t.Helper()
	s := newSwtpm(t)
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free tcp port: %v", err)
	}
	s.ServerAddr = l.Addr().String()
	_ = l.Close()
	s.start()
	return s
}

// Spec is the tpm.Open spec of this swtpm.
func (s *Swtpm) Spec() string {
	if s.ServerAddr != "" {
		return "swtpm:" + s.ServerAddr
	}
	return "swtpm:unix:" + s.ServerSock
}

func (s *Swtpm) serverArg() string {
	if s.ServerAddr != "" {
		_, port, _ := net.SplitHostPort(s.ServerAddr)
		return "type=tcp,bindaddr=127.0.0.1,port=" + port
	}
	return "type=unixio,path=" + s.ServerSock
}

// ready tells whether the server socket accepts commands.
func (s *Swtpm) ready() bool {
	// Not the test's context: Restart may run while the test is ending, and
	// the dialer's timeout bounds the probe.
	ctx := context.Background()
	d := net.Dialer{Timeout: time.Second}
	// A unix socket file exists from bind on; dial to know swtpm listens.
	network, addr := "unix", s.ServerSock
	if s.ServerAddr != "" {
		network, addr = "tcp", s.ServerAddr
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func (s *Swtpm) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ServerSock != "" {
		_ = os.Remove(s.ServerSock)
	}
	_ = os.Remove(s.CtrlSock)
	s.stderr = &bytes.Buffer{}
	// Not the test's context, which ends before cleanup: Stop ends swtpm
	// gracefully (SIGTERM) at cleanup.
	cmd := exec.CommandContext(context.Background(), s.bin, "socket", "--tpm2",
		"--tpmstate", "dir="+s.Dir,
		"--server", s.serverArg(),
		"--ctrl", "type=unixio,path="+s.CtrlSock,
		"--flags", "not-need-init,startup-clear")
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start swtpm: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("swtpm exited at start: %s", s.stderr)
		default:
		}
		if s.ready() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("swtpm server socket %s did not come up within 10s: %s", s.Spec(), s.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops swtpm (SIGTERM, then SIGKILL after 5 s). It is safe to call twice.
func (s *Swtpm) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	graceful.Stop(s.cmd.Process, s.exited, 5*time.Second)
	s.cmd = nil
}

// Restart stops swtpm and starts it again on the same state: a simulated
// reboot (TPM Reset: resetCount + 1, PCRs cleared, persistent keys kept).
// Open connections break; reopen the TPM afterwards.
func (s *Swtpm) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
