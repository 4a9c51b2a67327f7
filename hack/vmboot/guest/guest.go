//go:build linux

// Package guest is what a static /init in the test VMs needs: the kernel's
// pseudo file systems mounted and the serial console to write to.
package guest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EfivarfsModule is where mkuki.sh puts efivarfs.ko: Debian builds efivarfs
// as a module.
const EfivarfsModule = "/lib/modules/efivarfs.ko"

// Console mounts proc, sysfs, devtmpfs, securityfs and efivarfs and returns
// the serial console; mount failures are written to it, prefixed with name.
func Console(name string) io.Writer {
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
			if err = loadModule(EfivarfsModule); err == nil {
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
		_, _ = fmt.Fprintf(out, "%s: %v\n", name, err)
	}
	return out
}

// PowerOff flushes, lets the UART drain and powers the VM off.
func PowerOff() {
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// WriteBlock writes data to out as base64 lines of 76 characters between a
// TC-<tag>-BEGIN and a TC-<tag>-END line, in one write so that other output
// on the console does not interleave with it.
func WriteBlock(out io.Writer, tag string, data []byte) error {
	const lineWidth = 76
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.WriteString("\nTC-" + tag + "-BEGIN\n")
	for len(enc) > 0 {
		n := min(lineWidth, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	b.WriteString("TC-" + tag + "-END\n")
	_, err := io.WriteString(out, b.String())
	return err
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
