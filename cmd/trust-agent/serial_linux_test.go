//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"trustedcompute.io/tc/internal/config/configtest"
)

// openPTY returns the master side of a new pseudo-terminal and the path of
// its slave, a tty like /dev/ttyS1.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}); err != nil || ioErr != nil {
		t.Fatalf("pty: %v %v", err, ioErr)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func TestSerialDialerCarriesBinaryDataAfterTheMarker(t *testing.T) {
	master, slave := openPTY(t)
	conn, err := serialDialer{path: slave}.Dial("tcp", "ignored:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := master.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(SerialDialMarker))
	if _, err := io.ReadFull(master, got); err != nil || string(got) != SerialDialMarker {
		t.Fatalf("marker %q, %v", got, err)
	}
	// Bytes a cooked tty would mangle: CR/LF mapping, ^C, ^D, XON/XOFF, DEL, 0xff.
	payload := []byte{0, '\r', '\n', 3, 4, 0x11, 0x13, 0x7f, 0xff, 'x', '\r'}
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(payload))
	if _, err := io.ReadFull(master, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("guest → host: % x, %v; want % x", got, err, payload)
	}
	if _, err := master.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("deadlines must work (nats.go sets them): %v", err)
	}
	got = make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("host → guest: % x, %v; want % x", got, err, payload)
	}
}

func TestSerialConfigComesFromTheEnvironment(t *testing.T) {
	cfg, err := loadConfig("", configtest.Env(map[string]string{"TC_NATS_SERIAL_DEVICE": "/dev/ttyS1"}))
	if err != nil || cfg.NATS.SerialDevice != "/dev/ttyS1" {
		t.Fatalf("serial device %q, %v", cfg.NATS.SerialDevice, err)
	}
}
