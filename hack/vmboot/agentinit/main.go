//go:build linux

// Command agentinit is the /init of the trust agent VM (test/e2e/vm): it
// mounts proc, sysfs, devtmpfs, securityfs and efivarfs, writes the firmware
// event log to the serial console as base64 between TC-EVENTLOG-BEGIN and
// TC-EVENTLOG-END lines (the test keeps it as test data), then runs
// /bin/trust-agent run -config /etc/trusted-compute/agent.yaml with its log
// on the console, and powers the VM off when the agent exits. The agent
// carries its bus connection over /dev/ttyS1 (nats.serial_device).
// Build it static: CGO_ENABLED=0 go build ./hack/vmboot/agentinit.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	eventLogPath   = "/sys/kernel/security/tpm0/binary_bios_measurements"
	efivarfsModule = "/lib/modules/efivarfs.ko"
	agentPath      = "/bin/trust-agent"
	configPath     = "/etc/trusted-compute/agent.yaml"
	lineWidth      = 76
)

func main() {
	out := console()
	if err := dumpEventLog(out); err != nil {
		_, _ = fmt.Fprintf(out, "agentinit: %v\n", err)
	}
	_, _ = fmt.Fprintln(out, "TC-AGENT-START")
	cmd := exec.CommandContext(context.Background(), agentPath, "run", "-config", configPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=/bin"}
	err := cmd.Run()
	_, _ = fmt.Fprintf(out, "TC-AGENT-EXIT %v\n", err)
	syscall.Sync()
	time.Sleep(200 * time.Millisecond) // let the UART drain
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func console() io.Writer {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"securityfs", "/sys/kernel/security", "securityfs"},
		{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs"},
	}
	var errs []error
	for _, m := range mounts {
		_ = os.MkdirAll(m.dst, 0o755)
		err := syscall.Mount(m.src, m.dst, m.fstype, 0, "")
		if errors.Is(err, syscall.ENODEV) && m.fstype == "efivarfs" {
			// Debian builds efivarfs as a module; mkuki.sh puts it in the initramfs.
			if err = loadModule(efivarfsModule); err == nil {
				err = syscall.Mount(m.src, m.dst, m.fstype, 0, "")
			}
		}
		if err != nil && !errors.Is(err, syscall.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.dst, err))
		}
	}
	var out io.Writer = os.Stdout
	for _, p := range []string{"/dev/ttyS0", "/dev/console"} {
		if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
			out = f
			break
		}
	}
	for _, err := range errs {
		_, _ = fmt.Fprintf(out, "agentinit: %v\n", err)
	}
	return out
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

func dumpEventLog(out io.Writer) error {
	log, err := os.ReadFile(eventLogPath)
	if err != nil {
		return fmt.Errorf("read event log: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(log)
	var b strings.Builder
	b.WriteString("\nTC-EVENTLOG-BEGIN\n")
	for len(enc) > 0 {
		n := min(lineWidth, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	b.WriteString("TC-EVENTLOG-END\n")
	_, err = io.WriteString(out, b.String())
	return err
}
