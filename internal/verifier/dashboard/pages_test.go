package dashboard

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"html"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// loggedIn returns a browser with a session of the operator.
func (f *fixture) loggedIn(t *testing.T) *browser {
	t.Helper()
	b := f.browser(t)
	if res := b.login("operator", operatorPassword); res.code != http.StatusSeeOther {
		t.Fatalf("login: status %d:\n%s", res.code, res.body)
	}
	return b
}

func (b *browser) page(path string) string {
	b.t.Helper()
	res := b.do(http.MethodGet, path, nil)
	if res.code != http.StatusOK {
		b.t.Fatalf("GET %s: status %d:\n%s", path, res.code, res.body)
	}
	return res.body
}

// Hostile values a node controls: its name (it registers under it), IMA
// paths and event-log entries (its logs), and so the fault texts.
const (
	hostileName  = `<script>alert("name")</script>`
	hostileFile  = `/tmp/"><img src=x onerror=alert(1)>.sh`
	hostileEntry = `EV_IPL </code><script src=//evil.example/x.js></script>`
)

func TestPagesEscapeWhatANodeControls(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", hostileName)
	id := f.addReport(t, "host-1", t0.Add(-time.Minute),
		appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, Description: "file " + hostileFile + " changed",
			File: hostileFile, Expected: "aa", Actual: `bb"><script>alert(2)</script>`},
		appraise.Fault{Name: flavor.FaultPcrEventLogContainsUnexpectedEntries, Description: "unexpected",
			PCRIndex: pcr(8), PCRBank: "SHA384", UnexpectedEntries: []string{hostileEntry}})
	b := f.loggedIn(t)
	markup := regexp.MustCompile(`<script[ >]|<img|="javascript:`)
	for _, path := range []string{"/", "/nodes/host-1", "/reports/" + id} {
		t.Run(path, func(t *testing.T) {
			body := b.page(path)
			// The page's own markup has no script element but the one of
			// the layout, which is a file; strip it and look for any other.
			body = strings.Replace(body, `<script src="/static/app.js" defer></script>`, "", 1)
			if m := markup.FindString(body); m != "" {
				t.Errorf("page carries markup %q from node data:\n%s", m, body)
			}
			if path != "/reports/"+id && !strings.Contains(body, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;") {
				t.Errorf("page does not show the host name escaped:\n%s", body)
			}
		})
	}
}

// A node also controls characters that html/template leaves alone: a bidi
// override in an IMA path showed /usr/bin/evil.sh as another file name,
// zero-width characters hid in a fault. The pages write them as text.
func TestPagesShowTheCharactersABrowserWouldActOnAsText(t *testing.T) {
	const spoofed = "/usr/bin/\u202ehs.live\u200b"
	f := newFixture(t)
	f.addHost(t, "host-1", "edge-1\u2066")
	id := f.addReport(t, "host-1", t0.Add(-time.Minute),
		appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, Description: "file " + spoofed + " changed\x1b[2K",
			File: spoofed, Expected: "aa", Actual: "bb"})
	b := f.loggedIn(t)
	for _, path := range []string{"/", "/nodes/host-1", "/reports/" + id} {
		body := b.page(path)
		if i := strings.IndexFunc(body, func(r rune) bool {
			return r != '\n' && r != '\r' && r != '\t' && unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
		}); i >= 0 {
			t.Errorf("%s: %q at %d reaches the browser", path, body[i:min(i+8, len(body))], i)
		}
		if path == "/reports/"+id && !strings.Contains(body, `/usr/bin/\u202ehs.live\u200b`) {
			t.Errorf("%s: the path is not shown with its bidi override written out:\n%s", path, body)
		}
	}
}

func TestEveryResponseCarriesAStrictContentSecurityPolicy(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{"/login", "/", "/static/app.js", "/nowhere"} {
		res := b.do(http.MethodGet, path, nil)
		csp := res.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline script or eval", path, csp)
		}
		if res.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
}

func TestPagesHaveNoInlineScriptAndFetchNothingFromOutside(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	id := f.addReport(t, "host-1", t0.Add(-time.Minute))
	b, anon := f.loggedIn(t), f.browser(t)
	inline := regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+=`)
	outside := regexp.MustCompile(`(src|href|action)="(https?:)?//`)
	for _, path := range []string{"/login", "/", "/nodes/host-1", "/reports/" + id} {
		c := b
		if path == "/login" {
			c = anon
		}
		body := c.page(path)
		if m := inline.FindString(body); m != "" {
			t.Errorf("GET %s: inline script or style %q", path, m)
		}
		if m := outside.FindString(body); m != "" {
			t.Errorf("GET %s: fetches from outside: %q", path, m)
		}
	}
}

func TestFleetSummary(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-a", "node-trusted")
	f.addHost(t, "host-b", "node-untrusted")
	f.addHost(t, "host-c", "node-pending")
	f.addHost(t, "host-d", "node-stale")
	f.addReport(t, "host-a", t0.Add(-30*time.Minute), appraise.Fault{Name: "IMAReplay", Description: "old failure"})
	f.addReport(t, "host-a", t0.Add(-20*time.Minute))
	f.addReport(t, "host-a", t0.Add(-10*time.Minute))
	f.addReport(t, "host-b", t0.Add(-5*time.Minute), appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, File: "/usr/bin/kubelet"})
	f.addReport(t, "host-d", t0.Add(-3*time.Hour))
	body := f.loggedIn(t).page("/")
	for _, want := range []string{
		`id="count-total">4<`, `id="count-Trusted">1<`, `id="count-Untrusted">1<`, `id="count-Pending">1<`, `id="count-Stale">1<`,
		"3h 0m ago", // the oldest last report
	} {
		if !strings.Contains(body, want) {
			t.Errorf("fleet page lacks %s", want)
		}
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr class="node [a-z]+" data-node="([^"]+)">(.*?)</tr>`).FindAllStringSubmatch(body, -1) {
		rows[m[1]] = m[2]
	}
	for _, tt := range []struct{ name, host, want string }{
		{"a trusted node is trusted since the first report after its last failure", "host-a", "2026-12-04 11:40:00Z"},
		{"an untrusted node shows its status", "host-b", ">Untrusted<"},
		{"a node without report is pending since it was registered", "host-c", "2026-12-03 12:00:00Z"},
		{"a node whose last report is older than stale_after is stale", "host-d", `class="stale"`},
		{"a node shows Secure Boot and disk encryption of its last report", "host-a", `<td class="ok">measured</td>`},
	} {
		if !strings.Contains(rows[tt.host], tt.want) {
			t.Errorf("%s: row of %s lacks %q:\n%s", tt.name, tt.host, tt.want, rows[tt.host])
		}
	}
}

func TestNodeTimelineListsReportsWithTheirFaults(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	ok := f.addReport(t, "host-1", t0.Add(-20*time.Minute))
	bad := f.addReport(t, "host-1", t0.Add(-10*time.Minute), appraise.Fault{Name: flavor.FaultImaMeasurementMismatch,
		File: "/usr/bin/kubelet", Expected: "aa", Actual: "bb"})
	body := f.loggedIn(t).page("/nodes/host-1")
	iBad, iOK := strings.Index(body, "/reports/"+bad), strings.Index(body, "/reports/"+ok)
	if iBad < 0 || iOK < 0 || iBad > iOK {
		t.Errorf("timeline: want the untrusted report %s, then the trusted %s:\n%s", bad, ok, body)
	}
	if !strings.Contains(body, "IMA · ImaMeasurementMismatch (/usr/bin/kubelet)") {
		t.Errorf("timeline does not name the fault:\n%s", body)
	}
}

func TestReportDrillDown(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	id := f.addReport(t, "host-1", t0.Add(-time.Minute),
		appraise.Fault{Name: flavor.FaultPcrValueMismatch, Description: "SHA384 PCR 8 differs from the flavor",
			PCRIndex: pcr(8), PCRBank: "SHA384", Expected: "11aa", Actual: "22bb"},
		appraise.Fault{Name: flavor.FaultPcrEventLogContainsUnexpectedEntries, Description: "1 unexpected",
			PCRIndex: pcr(8), PCRBank: "SHA384", UnexpectedEntries: []string{"EV_IPL grub_cmd linux /vmlinuz init=/bin/sh"}},
		appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, Description: "/usr/bin/kubelet changed",
			File: "/usr/bin/kubelet", Expected: "sha256:aaaa", Actual: "sha256:bbbb"})
	body := f.loggedIn(t).page("/reports/" + id)
	for _, tt := range []struct{ name, want string }{
		{"a PCR fault names its bank and index", "PcrValueMismatch <small>SHA384 PCR 8</small>"},
		{"a PCR fault shows the expected value", `<code class="expected">11aa</code>`},
		{"a PCR fault shows the actual value", `<code class="actual">22bb</code>`},
		{"a PCR value fault shows the event-log entries that explain it", "Event-log entries that explain it (PLATFORM · PcrEventLogEquals · PcrEventLogContainsUnexpectedEntries)"},
		{"the explaining entry is listed", "EV_IPL grub_cmd linux /vmlinuz init=/bin/sh"},
		{"an IMA fault names the file", `<code class="file">/usr/bin/kubelet</code>`},
		{"an IMA fault shows the expected digest", "Expected digest</th><td><code class=\"expected\">sha256:aaaa"},
		{"an IMA fault shows the actual digest", "Actual digest</th><td><code class=\"actual\">sha256:bbbb"},
		{"the rule and flavor are named", "<td>ImaEventLogEquals</td><td></td><td><code>flavor-ima</code></td><td>failed</td>"},
		{"the report is untrusted", `id="result">untrusted<`},
	} {
		if !strings.Contains(body, tt.want) {
			t.Errorf("%s: page lacks %q", tt.name, tt.want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestReportSignatureStatus(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	f.addHost(t, "host-2", "node-2")
	good := f.signer(t)
	foreign := foreignSigner(t)
	tests := []struct {
		name    string
		jws     func(t *testing.T, id string, at time.Time) string
		at      time.Time
		wantOK  bool
		wantTxt string
	}{{
		name: "a report signed by the verifier's signing identity is valid",
		jws: func(t *testing.T, id string, at time.Time) string {
			return mustSign(t, good, testReport("host-1", id, at))
		},
		at: t0.Add(-time.Minute), wantOK: true, wantTxt: "valid, signed by the verifier's signing identity",
	}, {
		name: "an expired report keeps a valid signature and says it expired",
		jws: func(t *testing.T, id string, at time.Time) string {
			f.clock.Set(at.Add(-time.Hour)) // a signing certificate of then
			defer f.clock.Set(t0)
			return mustSign(t, f.signer(t), testReport("host-1", id, at))
		},
		at: t0.Add(-2 * time.Hour), wantOK: true, wantTxt: "the report expired",
	}, {
		name: "a signed report of another host stored under this id is invalid",
		jws: func(t *testing.T, id string, at time.Time) string {
			return mustSign(t, good, testReport("host-2", id, at))
		},
		at: t0.Add(-time.Minute), wantTxt: "invalid: the signed report is",
	}, {
		name: "a report signed by a key outside the CMS root is invalid",
		jws: func(t *testing.T, id string, at time.Time) string {
			return mustSign(t, foreign, testReport("host-1", id, at))
		},
		at: t0.Add(-time.Minute), wantTxt: "invalid: verify report: signing certificate is not trusted",
	}, {
		name: "a report without a signed form says so",
		jws:  func(*testing.T, string, time.Time) string { return "" },
		at:   t0.Add(-time.Minute), wantTxt: "no signed form stored",
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "sig-report-" + string(rune('a'+i))
			r := testReport("host-1", id, tt.at)
			f.store(t, r, tt.jws(t, id, tt.at))
			body := f.loggedIn(t).page("/reports/" + id)
			cls := "bad"
			if tt.wantOK {
				cls = "ok"
			}
			m := regexp.MustCompile(`<dd class="([a-z]+)" id="signature">([^<]*)</dd>`).FindStringSubmatch(body)
			if m == nil || m[1] != cls || !strings.Contains(html.UnescapeString(m[2]), tt.wantTxt) {
				t.Errorf("signature status %q, want %s %q", m, cls, tt.wantTxt)
			}
		})
	}
}

func mustSign(t *testing.T, s *report.Signer, r *report.Report) string {
	t.Helper()
	jws, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// foreignSigner signs with a self-signed "HVS Signing" certificate that no
// CMS issued.
func foreignSigner(t *testing.T) *report.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "HVS Signing"},
		NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0.Add(48 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, key, []*x509.Certificate{c})
}

func TestDownloadServesTheSignedReportAsAFile(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	r := testReport("host-1", "dl-report", t0.Add(-time.Minute))
	jws := mustSign(t, f.signer(t), r)
	f.store(t, r, jws)
	res := f.loggedIn(t).do(http.MethodGet, "/reports/dl-report/jws", nil)
	if res.code != http.StatusOK || strings.TrimSpace(res.body) != jws {
		t.Fatalf("download: status %d, body %.60q, want the stored JWS", res.code, res.body)
	}
	if cd := res.header.Get("Content-Disposition"); cd != `attachment; filename="report-dl-report.jws"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if res := f.browser(t).do(http.MethodGet, "/reports/dl-report/jws", nil); res.code != http.StatusSeeOther {
		t.Errorf("download without a session: status %d, want a redirect to the login", res.code)
	}
}

func TestEventStreamPushesANewReport(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	f.addReport(t, "host-1", t0.Add(-time.Minute))
	b := f.loggedIn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx) }()
	srv := httptest.NewServer(f.d.Handler())
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.cookies[sessionCookie]})
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string, within time.Duration) bool {
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if l == want {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !waitLine(": connected", 2*time.Second) {
		t.Fatal("the stream did not open")
	}
	if waitLine("event: report", 200*time.Millisecond) {
		t.Fatal("an event came before any new report")
	}
	start := time.Now()
	f.addReport(t, "host-1", t0, appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, File: "/usr/bin/kubelet"})
	if !waitLine("event: report", 2*time.Second) {
		t.Fatal("no report event within 2 s of a new report")
	}
	t.Logf("event %s after the report was stored", time.Since(start).Round(time.Millisecond))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Whoever can write the verifier's database (a copy written back, a
// PostgreSQL account) cannot sign reports, but can change the columns and
// the JSON stored beside a report's signed form. The report page must not
// show such a row as trusted under a valid signature.
func TestAReportRowChangedInTheDatabaseIsShownAsItsSignedForm(t *testing.T) {
	f := newFixture(t)
	f.addHost(t, "host-1", "node-1")
	signer := f.signer(t)
	at := t0.Add(-time.Minute)
	forged := func(t *testing.T, r *report.Report) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		// row makes the stored row of the untrusted signed report.
		row func(t *testing.T, signed *report.Report) store.Report
	}{{
		name: "a row whose verdict column was set to trusted",
		row: func(t *testing.T, signed *report.Report) store.Report {
			return store.Report{Trusted: true, CreatedAt: signed.Created, ExpiresAt: signed.Expiration, JSON: forged(t, signed)}
		},
	}, {
		name: "a row whose verdict and JSON were replaced by a trusted report's",
		row: func(t *testing.T, signed *report.Report) store.Report {
			return store.Report{Trusted: true, CreatedAt: signed.Created, ExpiresAt: signed.Expiration,
				JSON: forged(t, testReport("host-1", signed.ID, at))}
		},
	}, {
		name: "a row whose JSON was replaced by a trusted report's",
		row: func(t *testing.T, signed *report.Report) store.Report {
			return store.Report{CreatedAt: signed.Created, ExpiresAt: signed.Expiration, JSON: forged(t, testReport("host-1", signed.ID, at))}
		},
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "altered-report-" + string(rune('a'+i))
			signed := testReport("host-1", id, at, appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, File: "/usr/bin/kubelet"})
			row := tt.row(t, signed)
			row.ID, row.HostID, row.HostName, row.JWS = id, "host-1", signed.HostName, mustSign(t, signer, signed)
			if err := f.st.CreateReport(t.Context(), row); err != nil {
				t.Fatal(err)
			}
			body := f.loggedIn(t).page("/reports/" + id)
			if m := regexp.MustCompile(`id="result">([a-z]+)<`).FindStringSubmatch(body); m == nil || m[1] != "untrusted" {
				t.Errorf("result %q, want the signed verdict untrusted", m)
			}
			m := regexp.MustCompile(`<dd class="([a-z]+)" id="signature">([^<]*)</dd>`).FindStringSubmatch(body)
			if m == nil || m[1] != "bad" || !strings.Contains(html.UnescapeString(m[2]), "not its signed form") {
				t.Errorf("signature status %q, want bad: not its signed form", m)
			}
			if !strings.Contains(body, "/usr/bin/kubelet") {
				t.Error("the page does not show the signed report's fault")
			}
		})
	}
}

// The fleet and node pages read the stored verdict column of many reports
// at once; a row set to trusted in the database, beside a signed form that
// says otherwise or without one, is not trusted there either.
func TestARowSetToTrustedInTheDatabaseIsNotTrustedOnTheFleetAndNodePages(t *testing.T) {
	f := newFixture(t)
	at := t0.Add(-time.Minute)
	for _, tt := range []struct {
		name, host, want string
		jws              func(t *testing.T, r *report.Report) string
	}{{
		name: "a row whose signed form is untrusted", host: "host-1", want: "signature invalid",
		jws: func(t *testing.T, r *report.Report) string { return mustSign(t, f.signer(t), r) },
	}, {
		name: "a row without a signed form", host: "host-2", want: "unsigned",
		jws: func(*testing.T, *report.Report) string { return "" },
	}} {
		t.Run(tt.name, func(t *testing.T) {
			f.addHost(t, tt.host, "node-"+tt.host)
			signed := testReport(tt.host, "row-"+tt.host, at, appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, File: "/usr/bin/kubelet"})
			b, err := json.Marshal(testReport(tt.host, signed.ID, at))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.st.CreateReport(t.Context(), store.Report{ID: signed.ID, HostID: tt.host, HostName: signed.HostName,
				Trusted: true, CreatedAt: at, ExpiresAt: signed.Expiration, JSON: b, JWS: tt.jws(t, signed)}); err != nil {
				t.Fatal(err)
			}
			b2 := f.loggedIn(t)
			m := regexp.MustCompile(`(?s)<tr class="node [a-z]+" data-node="` + tt.host + `">(.*?)</tr>`).FindStringSubmatch(b2.page("/"))
			if m == nil || !strings.Contains(m[1], ">Untrusted<") || !strings.Contains(m[1], tt.want) || strings.Contains(m[1], "measured") {
				t.Errorf("fleet row %q: want Untrusted, %q and no facts of the changed JSON", m, tt.want)
			}
			if node := b2.page("/nodes/" + tt.host); !strings.Contains(node, `<span class="badge bad">untrusted</span>`) {
				t.Errorf("node page timeline does not show the row untrusted:\n%s", node)
			}
		})
	}
}
