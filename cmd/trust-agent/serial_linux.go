//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SerialDialMarker is the line the agent writes on its serial line before
// each bus connection. The host side reads the line until it sees it, then
// dials the bus and copies bytes both ways until either side closes; bytes
// before the marker (a previous session's tail, line noise) are dropped.
const SerialDialMarker = "TC-BUS-DIAL\n"

// serialDialer is the natsconn dialer that carries the bus connection over a
// serial device (e.g. /dev/ttyS1 of a VM whose host bridges it to the bus).
// TLS runs over it as over TCP; the address dialled is ignored, the server
// name checked is still the URL's.
type serialDialer struct{ path string }

func (d serialDialer) Dial(_, _ string) (net.Conn, error) {
	f, err := os.OpenFile(d.path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("serial bus: %w", err)
	}
	// Not f.Fd(): it would put the file in blocking mode and lose deadlines.
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("serial bus %s: %w", d.path, err)
	}
	var rawErr error
	if err := rc.Control(func(fd uintptr) { rawErr = makeRaw(int(fd)) }); err != nil || rawErr != nil {
		_ = f.Close()
		return nil, fmt.Errorf("serial bus %s: %w", d.path, errors.Join(err, rawErr))
	}
	if _, err := f.WriteString(SerialDialMarker); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("serial bus %s: %w", d.path, err)
	}
	return serialConn{File: f}, nil
}

// makeRaw puts the tty in raw 8-bit mode (cfmakeraw, no flow control, no
// modem control lines) and drops input received before this connection.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH); err != nil {
		return fmt.Errorf("flush input: %w", err)
	}
	return nil
}

// serialConn is a tty as a net.Conn; deadlines work because the runtime
// poller handles ttys.
type serialConn struct{ *os.File }

func (c serialConn) LocalAddr() net.Addr  { return serialAddr(c.Name()) }
func (c serialConn) RemoteAddr() net.Addr { return serialAddr(c.Name()) }

type serialAddr string

func (serialAddr) Network() string  { return "serial" }
func (a serialAddr) String() string { return string(a) }
