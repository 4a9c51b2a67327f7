package tcctl_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// startJWSProxy stands between tcctl and the verifier with a TLS
// certificate the CMS issued (so the client trusts it) and serves, in place
// of every signed report (JWS) it relays, what rewrite makes of its three
// parts and decoded payload: what a compromised front end could do.
func startJWSProxy(t *testing.T, h *harness, rewrite func(parts []string, payload []byte) (string, error)) string {
	t.Helper()
	target, err := url.Parse(h.base)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(h.v.CA().Root())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}}
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("format") != "jws" || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		parts := strings.Split(strings.TrimSpace(string(b)), ".")
		if len(parts) != 3 {
			t.Errorf("the verifier served a JWS of %d parts", len(parts))
			return nil
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return err
		}
		forged, err := rewrite(parts, payload)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(strings.NewReader(forged))
		resp.ContentLength = int64(len(forged))
		resp.Header.Set("Content-Length", strconv.Itoa(len(forged)))
		return nil
	}
	cert, err := h.v.CA().ServerCertificate("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}}
	// The pinned bootstrap's first handshake fails on purpose; do not log it.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// tamperingProxy is a JWS proxy that, while tamper is set, rewrites the
// payload of every signed report it relays, keeping the signature: short
// of the HVS signing key, that is all a compromised front end can do.
type tamperingProxy struct {
	url    string
	tamper atomic.Bool
}

func startTamperingProxy(t *testing.T, h *harness, replace, with string) *tamperingProxy {
	t.Helper()
	p := &tamperingProxy{}
	p.url = startJWSProxy(t, h, func(parts []string, payload []byte) (string, error) {
		if !p.tamper.Load() {
			return strings.Join(parts, "."), nil
		}
		if !bytes.Contains(payload, []byte(replace)) {
			t.Errorf("the signed report lacks %q:\n%s", replace, payload)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(bytes.ReplaceAll(payload, []byte(replace), []byte(with)))
		return strings.Join(parts, "."), nil
	})
	return p
}

// TestReportsAreVerifiedOfflineAgainstTheCMSRoot attests a host whose agent
// does not answer: the report is untrusted (CONNECTION_FAILURE) but signed,
// so --verify accepts it; a report whose payload was changed in transit is
// refused.
func TestReportsAreVerifiedOfflineAgainstTheCMSRoot(t *testing.T) {
	h := startVerifier(t)
	proxy := startTamperingProxy(t, h, `"host_name":"edge-two"`, `"host_name":"edge-evil"`)
	c := newCLI(t)
	c.must(t, "login", "--url", proxy.url, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword))
	c.must(t, "host", "register", "--host-id", "edge-2", "--name", "edge-two")

	var created struct {
		ID         string `json:"id"`
		HostID     string `json:"host_id"`
		HostStatus string `json:"host_status"`
	}
	out := c.must(t, "report", "create", "--host-id", "edge-2", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if created.ID == "" || created.HostID != "edge-2" {
		t.Fatalf("report %+v", created)
	}

	t.Run("get --verify accepts the signed report and names its signer", func(t *testing.T) {
		out := c.must(t, "report", "get", created.ID, "--verify")
		t.Logf("tcctl report get %s --verify:\n%s", created.ID, out)
		if !strings.Contains(out, "signature: valid (signed by CN=") {
			t.Errorf("output lacks the signature line:\n%s", out)
		}
		rows := tableRows(out)
		if len(rows) < 2 || rows[1][0] != created.ID || rows[1][3] != "no" {
			t.Errorf("report table rows %q, want %s untrusted", rows, created.ID)
		}
	})
	t.Run("get --verify -o json keeps stdout json and says valid on stderr", func(t *testing.T) {
		out, errOut, err := c.run("report", "get", created.ID, "--verify", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ID       string `json:"id"`
			HostName string `json:"host_name"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != created.ID || got.HostName != "edge-two" {
			t.Errorf("json %+v (%v):\n%s", got, err, out)
		}
		if !strings.Contains(errOut, "signature: valid") {
			t.Errorf("stderr:\n%s", errOut)
		}
	})
	t.Run("-o ear prints a JWT that --verify accepts", func(t *testing.T) {
		out, errOut, err := c.run("report", "get", created.ID, "-o", "ear", "--verify")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(strings.TrimSpace(out), ".") != 2 || !strings.Contains(errOut, "signature: valid") {
			t.Errorf("ear output %q, stderr %q", out, errOut)
		}
	})
	t.Run("list --host-id shows the report", func(t *testing.T) {
		rows := tableRows(c.must(t, "report", "list", "--host-id", "edge-2", "--latest", "--limit", "5"))
		if len(rows) != 2 || rows[1][0] != created.ID {
			t.Errorf("rows %q", rows)
		}
	})
	t.Run("a report changed in transit fails --verify", func(t *testing.T) {
		proxy.tamper.Store(true)
		defer proxy.tamper.Store(false)
		out, errOut, err := c.run("report", "get", created.ID, "--verify")
		if err == nil {
			t.Fatalf("a tampered report verified:\n%s", out)
		}
		if !strings.Contains(err.Error(), "signature does not verify") {
			t.Errorf("error %q, want the signature refused", err)
		}
		if strings.Contains(out+errOut, "edge-evil") || strings.Contains(out, "signature: valid") {
			t.Errorf("the tampered content was shown:\n%s%s", out, errOut)
		}
	})
	t.Run("get of an unknown report names the 404", func(t *testing.T) {
		_, _, err := c.run("report", "get", "00000000-0000-0000-0000-000000000000", "--verify")
		if err == nil || !strings.Contains(err.Error(), "404 Not Found") {
			t.Errorf("unknown report: %v", err)
		}
	})
}
