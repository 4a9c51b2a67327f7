//go:build !linux

package main

import (
	"errors"
	"net"
)

// serialDialer carries the bus over a serial line; Linux only.
type serialDialer struct{ path string }

func (serialDialer) Dial(_, _ string) (net.Conn, error) {
	return nil, errors.New("nats.serial_device is supported on Linux only")
}
