package config

import "testing"

func TestLoopbackAddrTakesOnlyLoopbackAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"an empty address serves nothing and is valid", "", true},
		{"an IPv4 loopback address is accepted", "127.0.0.1:6060", true},
		{"another IPv4 loopback address is accepted", "127.0.0.2:6060", true},
		{"an IPv6 loopback address is accepted", "[::1]:6060", true},
		{"localhost is accepted", "localhost:6060", true},
		{"every interface is refused", ":6060", false},
		{"every IPv4 interface is refused", "0.0.0.0:6060", false},
		{"a routable address is refused", "10.0.0.5:6060", false},
		{"a host name other than localhost is refused", "verifier.example:6060", false},
		{"an address without a port is refused", "127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := LoopbackAddr(tc.addr); (err == nil) != tc.ok {
				t.Fatalf("LoopbackAddr(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}
