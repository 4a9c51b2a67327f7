package busserver

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// nats-server lets a client send CONNECT again on an open connection, and
// authenticates it again, as whoever the new JWT names. userConns keeps
// what it read from a connection's JWT keyed by that JWT, never by the
// connection, so that a connection that changed its user is listed under
// the new key: a revocation of either host finds the key that is really
// connected. A cache by connection ID would keep naming the first.
func TestAConnectionThatConnectsAgainIsListedUnderItsNewKey(t *testing.T) {
	b := newTestBus(t)
	creds1 := mustCreds(t)(b.auth.AgentCredentials("H1", bus.GrammarTwoPrefixes, time.Hour))
	creds2 := mustCreds(t)(b.auth.AgentCredentials("H2", bus.GrammarTwoPrefixes, time.Hour))
	key1, key2 := parseCreds(t, creds1).UserPublicKey(), parseCreds(t, creds2).UserPublicKey()

	c := rawConnect(t, b, creds1)
	if got := listedKeys(t, b.srv); !got[key1] || got[key2] {
		t.Fatalf("after the first CONNECT: listed %v, want H1's key only", got)
	}
	c.connect(t, creds2)
	if got := listedKeys(t, b.srv); got[key1] || !got[key2] {
		t.Fatalf("after CONNECT as H2 on the same connection: listed %v, want H2's key only", got)
	}
}

func parseCreds(t *testing.T, creds []byte) *bus.Credentials {
	t.Helper()
	c, err := bus.ParseCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listedKeys(t *testing.T, srv *Server) map[string]bool {
	t.Helper()
	conns, err := srv.userConns()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range conns {
		out[c.PublicKey] = true
	}
	return out
}

// rawConn speaks the NATS client protocol by hand, which nats.go does not
// let a test do: CONNECT twice on one connection.
type rawConn struct {
	conn  *tls.Conn
	r     *bufio.Reader
	nonce string
}

// rawConnect dials b's server, reads its INFO, starts TLS and connects
// with creds.
func rawConnect(t *testing.T, b testBus, creds []byte) *rawConn {
	t.Helper()
	u, err := url.Parse(b.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	nonce := readInfoNonce(t, bufio.NewReader(nc))
	serverName := b.ca.serverTLS.ServerName
	if serverName == "" {
		serverName = u.Hostname()
	}
	tc := tls.Client(nc, &tls.Config{RootCAs: b.ca.pool, ServerName: serverName, MinVersion: tls.VersionTLS13})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c := &rawConn{conn: tc, r: bufio.NewReader(tc), nonce: nonce}
	c.connect(t, creds)
	return c
}

// connect sends CONNECT with creds, signing the server's nonce, and waits
// for the PONG that says the server took it.
func (c *rawConn) connect(t *testing.T, creds []byte) {
	t.Helper()
	if _, err := c.conn.Write(connectLine(t, creds, c.nonce, true)); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("after CONNECT: %v", err)
		}
		switch {
		case strings.HasPrefix(line, "PONG"):
			return
		case strings.HasPrefix(line, "-ERR"):
			t.Fatalf("CONNECT refused: %s", strings.TrimSpace(line))
		case strings.HasPrefix(line, "PING"):
			if _, err := c.conn.Write([]byte("PONG\r\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
}
