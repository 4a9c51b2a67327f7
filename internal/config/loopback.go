package config

import (
	"errors"
	"net"
)

// LoopbackAddr accepts an empty address (nothing is served) or a host:port
// on the loopback: 127.0.0.0/8, ::1 or localhost. It is for listeners that
// serve without TLS or a token and so must not be reachable from the
// network.
func LoopbackAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("want a loopback address (127.0.0.1, ::1 or localhost)")
	}
	return nil
}
