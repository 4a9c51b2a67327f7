// Package vm boots unified kernel images in QEMU VMs with OVMF (Secure Boot
// on or off) and a software TPM, through the scripts of hack/vmboot, for
// end-to-end tests of measured boot. A VM's second serial port (/dev/ttyS1 in
// the guest) is its only channel to the host: Boot bridges it to a TCP
// address (the verifier's bus) whenever the guest asks for a connection.
//
// Tests that use it call Require first: it skips the test when QEMU, OVMF or
// swtpm are missing, unless the comma-separated env TC_TEST_REQUIRE contains
// "qemu"; then it fails.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/graceful"
	"trustedcompute.io/tc/internal/syncbuf"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// RequireEnv is the env variable that turns missing QEMU/OVMF/swtpm into a
// failure instead of a skip, when it contains RequireName.
const (
	RequireEnv  = "TC_TEST_REQUIRE"
	RequireName = "qemu"
)

// DialMarker is the line the trust agent writes on its serial line before
// each bus connection (cmd/trust-agent SerialDialMarker).
const DialMarker = "TC-BUS-DIAL\n"

// Firmware files of the Debian ovmf package (hack/vmboot/lib.sh).
const (
	ovmfCode    = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfVarsOn  = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
	ovmfVarsOff = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

func required() bool { return tpmtest.Required(RequireName) }

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Require makes sure the VM tooling and a kernel are there: it runs
// hack/vmboot/setup.sh (idempotent; installs missing Debian packages as
// root and fetches the kernel once into its cache) when anything is missing.
// It skips the test when that does not help, or fails it when required.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() && !required() {
		t.Skip("VM boots take minutes; skipped in -short mode")
	}
	if missing := missingTools(); len(missing) == 0 && kernelCached() {
		return
	}
	setup := filepath.Join(RepoRoot(t), "hack", "vmboot", "setup.sh")
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), setup).CombinedOutput() //nolint:gosec // G204: the repository's own setup script
	t.Logf("hack/vmboot/setup.sh: %s", time.Since(start).Round(time.Second))
	missing := missingTools()
	if err == nil && len(missing) == 0 && kernelCached() {
		return
	}
	msg := fmt.Sprintf("VM tooling unavailable (missing %v, setup.sh: %v)\n%s", missing, err, out)
	if required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func missingTools() []string {
	var missing []string
	for _, p := range []string{"qemu-system-x86_64", "swtpm", "swtpm_setup", "sbsign", "objcopy", "cpio", "openssl", "timeout"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, f := range []string{ovmfCode, ovmfVarsOn, ovmfVarsOff, "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	return missing
}

func cacheDir() string {
	if d := os.Getenv("VMBOOT_CACHE"); d != "" {
		return d
	}
	base, _ := os.UserCacheDir() // $XDG_CACHE_HOME, else ~/.cache, as hack/vmboot/lib.sh
	return filepath.Join(base, "trusted-compute", "vmboot")
}

func kernelCached() bool {
	b, err := os.ReadFile(filepath.Join(cacheDir(), "kernel.env"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VMLINUZ="); ok {
			_, err := os.Stat(v) //nolint:gosec // G703: the kernel path setup.sh wrote into its own cache
			return err == nil
		}
	}
	return false
}

// GoBuild builds a static (CGO_ENABLED=0) binary of pkg (relative to the
// repository root) into dir and returns its path.
func GoBuild(t testing.TB, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./"+pkg) //nolint:gosec // G204: a package of this repository
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// Image says what a unified kernel image holds.
type Image struct {
	// Init is the static /init binary.
	Init string
	// Files are put into the initramfs: absolute guest path → host file.
	Files map[string]string
	// Cmdline is the kernel command line (default "console=ttyS0 quiet").
	Cmdline string
	// Unsigned leaves the image unsigned (the Secure Boot firmware refuses it).
	Unsigned bool
}

// BuildUKI builds img with hack/vmboot/mkuki.sh into out.
func BuildUKI(t testing.TB, img Image, out string) {
	t.Helper()
	var args []string
	if img.Unsigned {
		args = append(args, "--unsigned")
	}
	for dst, src := range img.Files {
		args = append(args, "--add", src+"="+dst)
	}
	args = append(args, img.Init, out)
	if img.Cmdline != "" {
		args = append(args, img.Cmdline)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(RepoRoot(t), "hack", "vmboot", "mkuki.sh"), args...) //nolint:gosec // G204: the repository's own script
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkuki.sh: %v\n%s", err, b)
	}
}

// Options configure one boot.
type Options struct {
	// UKI is the image to boot from EFI/BOOT/BOOTX64.EFI.
	UKI string
	// SecureBoot selects the UEFI variable template of a new Vars file:
	// snakeoil keys enrolled (on) or empty (off).
	SecureBoot bool
	// Vars is the UEFI variable store, created from the template if missing
	// and kept (reuse it to reboot the same machine).
	Vars string
	// TPMState is the swtpm state dir; a new one is manufactured by
	// swtpm_setup with SHA-256 and SHA-384 banks and EK certificates from
	// the swtpm local CA. Reuse it to reboot the same TPM.
	TPMState string
	// UUID is the SMBIOS system UUID (QEMU -uuid).
	UUID string
	// Bus is the TCP address the guest's /dev/ttyS1 is bridged to when it
	// writes DialMarker; empty leaves the port unconnected.
	Bus string
	// Dir holds the serial console log and the channel socket; it must be
	// short (a unix socket path is at most 108 bytes).
	Dir string
	// Timeout bounds the whole boot (default 15 minutes).
	Timeout time.Duration
}

// VM is a running VM.
type VM struct {
	// Console is the serial console log (ttyS0).
	Console string
	// Started is when QEMU was started.
	Started time.Time

	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	dialed    chan struct{}
	dialOnce  sync.Once
	chanConn  net.Conn
	mu        sync.Mutex
	firstDial time.Time
	stopOnce  sync.Once
	logf      func(string, ...any)
}

// Boot starts a VM with hack/vmboot/boot.sh and, when opts.Bus is set, the
// bridge of its second serial port. The VM is stopped at the end of the test.
func Boot(t testing.TB, opts Options) *VM {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Minute
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		t.Fatal(err)
	}
	sb := "off"
	if opts.SecureBoot {
		sb = "on"
	}
	v := &VM{
		Console: filepath.Join(opts.Dir, "console.log"),
		exited:  make(chan struct{}),
		dialed:  make(chan struct{}),
		logf:    t.Logf,
	}
	_ = os.Remove(v.Console)
	sock := filepath.Join(opts.Dir, "chan.sock")
	_ = os.Remove(sock)
	args := []string{
		"--uki", opts.UKI, "--secureboot", sb, "--vars", opts.Vars,
		"--tpm-state", opts.TPMState, "--pcr-banks", "sha256,sha384", "--ek-cert",
		"--serial", v.Console, "--timeout", fmt.Sprint(int(opts.Timeout.Seconds())),
		"--",
		"-serial", "unix:" + sock + ",server,nowait",
	}
	if opts.UUID != "" {
		args = append(args, "-uuid", opts.UUID)
	}
	// Not CommandContext: Stop ends boot.sh with SIGTERM so that it stops
	// its QEMU and swtpm; a context would SIGKILL it and leave them.
	v.cmd = exec.Command(filepath.Join(RepoRoot(t), "hack", "vmboot", "boot.sh"), args...) //nolint:gosec,noctx // G204: the repository's own script; see above
	stderr := &syncbuf.Buffer{}
	v.cmd.Stdout, v.cmd.Stderr = stderr, stderr
	v.Started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("boot.sh: %v", err)
	}
	go func() {
		v.exitErr = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("boot.sh output:\n%s", stderr.String())
			if b, err := os.ReadFile(v.Console); err == nil {
				t.Logf("console tail:\n%s", tail(b, 4000))
			}
		}
	})
	if opts.Bus != "" {
		conn, err := v.dialChannel(sock)
		if err != nil {
			t.Fatalf("serial channel: %v\nboot.sh: %s", err, stderr.String())
		}
		v.chanConn = conn
		go v.bridge(conn, opts.Bus)
	}
	return v
}

// dialChannel connects to QEMU's listening socket of the guest's ttyS1.
func (v *VM) dialChannel(sock string) (net.Conn, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := (&net.Dialer{}).DialContext(context.Background(), "unix", sock)
		if err == nil {
			return conn, nil
		}
		select {
		case <-v.exited:
			return nil, fmt.Errorf("boot.sh exited before QEMU listened: %w", exitError(v.exitErr))
		default:
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bridge reads the guest's serial channel: until DialMarker it drops the
// bytes; then it dials bus and copies both ways until the bus side closes,
// and waits for the next DialMarker.
func (v *VM) bridge(ch net.Conn, bus string) {
	var (
		mu      sync.Mutex
		session net.Conn
		pending []byte
		buf     = make([]byte, 32<<10)
	)
	for {
		n, err := ch.Read(buf)
		if err != nil {
			mu.Lock()
			if session != nil {
				_ = session.Close()
			}
			mu.Unlock()
			return
		}
		data := buf[:n]
		mu.Lock()
		s := session
		mu.Unlock()
		if s == nil {
			pending = append(pending, data...)
			i := bytes.Index(pending, []byte(DialMarker))
			if i < 0 {
				if len(pending) > len(DialMarker) {
					pending = pending[len(pending)-len(DialMarker):]
				}
				continue
			}
			data = pending[i+len(DialMarker):]
			pending = nil
			tcp, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(context.Background(), "tcp", bus)
			if err != nil {
				v.logf("vm bridge: dial %s: %v", bus, err)
				continue
			}
			v.dialOnce.Do(func() {
				v.mu.Lock()
				v.firstDial = time.Now()
				v.mu.Unlock()
				close(v.dialed)
			})
			mu.Lock()
			session = tcp
			mu.Unlock()
			s = tcp
			go func() {
				_, _ = io.Copy(ch, tcp)
				_ = tcp.Close()
				mu.Lock()
				if session == tcp {
					session = nil
				}
				mu.Unlock()
			}()
			if len(data) == 0 {
				continue
			}
		}
		if _, err := s.Write(data); err != nil {
			_ = s.Close()
		}
	}
}

// TimeToDial is how long the guest took from QEMU's start to its first bus
// connection, or 0 when it has not dialled.
func (v *VM) TimeToDial() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.firstDial.IsZero() {
		return 0
	}
	return v.firstDial.Sub(v.Started)
}

// WaitDial waits until the guest dials the bus, the VM exits or timeout.
func (v *VM) WaitDial(timeout time.Duration) error {
	select {
	case <-v.dialed:
		return nil
	case <-v.exited:
		return fmt.Errorf("the VM exited before its agent dialled the bus: %w", exitError(v.exitErr))
	case <-time.After(timeout):
		return fmt.Errorf("the agent did not dial the bus within %s", timeout)
	}
}

// WaitConsole waits until the console log contains s.
func (v *VM) WaitConsole(ctx context.Context, s string) error {
	for {
		if b, err := os.ReadFile(v.Console); err == nil && bytes.Contains(b, []byte(s)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("console never showed %q: %w", s, ctx.Err())
		case <-v.exited:
			if b, err := os.ReadFile(v.Console); err == nil && bytes.Contains(b, []byte(s)) {
				return nil
			}
			return fmt.Errorf("the VM exited before its console showed %q", s)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop stops QEMU and swtpm (boot.sh cleans up on SIGTERM) and waits. The
// swtpm state and the UEFI variables stay for the next boot.
func (v *VM) Stop() {
	v.stopOnce.Do(func() {
		if v.cmd.Process != nil {
			graceful.Stop(v.cmd.Process, v.exited, 30*time.Second)
		}
		if v.chanConn != nil {
			_ = v.chanConn.Close()
		}
	})
}

// EventLog extracts the firmware event log agentinit wrote to the console
// between TC-EVENTLOG-BEGIN and TC-EVENTLOG-END.
func (v *VM) EventLog() ([]byte, error) {
	b, err := os.ReadFile(v.Console)
	if err != nil {
		return nil, err
	}
	var enc strings.Builder
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "TC-EVENTLOG-BEGIN":
			in = true
		case line == "TC-EVENTLOG-END":
			return base64.StdEncoding.DecodeString(enc.String())
		case in:
			enc.WriteString(line)
		}
	}
	return nil, errors.New("no complete TC-EVENTLOG block on the console")
}

// exitError says how boot.sh ended; nil means the guest powered off.
func exitError(err error) error {
	if err == nil {
		return errors.New("the guest powered off")
	}
	return err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
