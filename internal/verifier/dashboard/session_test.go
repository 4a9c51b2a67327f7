package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLogin(t *testing.T) {
	tests := []struct {
		name        string
		send        func(b *browser) response
		wantCode    int
		wantSession bool
		wantText    string
	}{{
		name:        "the right password of a user who may read hosts and reports opens a session",
		send:        func(b *browser) response { return b.login("operator", operatorPassword) },
		wantCode:    http.StatusSeeOther,
		wantSession: true,
	}, {
		name:     "a wrong password is refused",
		send:     func(b *browser) response { return b.login("operator", "guess") },
		wantCode: http.StatusUnauthorized,
		wantText: "Invalid username or password.",
	}, {
		name:     "an unknown user is refused as a wrong password is",
		send:     func(b *browser) response { return b.login("nobody", operatorPassword) },
		wantCode: http.StatusUnauthorized,
		wantText: "Invalid username or password.",
	}, {
		name:     "a user without read permissions is refused with a page that says which it needs",
		send:     func(b *browser) response { return b.login("enroller", "enroller password") },
		wantCode: http.StatusForbidden,
		wantText: "HVS:hosts:retrieve:*",
	}, {
		name: "a login form without its anti-CSRF token is refused",
		send: func(b *browser) response {
			b.do(http.MethodGet, "/login", nil)
			return b.do(http.MethodPost, "/login", url.Values{"username": {"operator"}, "password": {operatorPassword}})
		},
		wantCode: http.StatusForbidden,
	}, {
		name: "a login form whose token is not the one of its cookie is refused",
		send: func(b *browser) response {
			b.do(http.MethodGet, "/login", nil)
			return b.do(http.MethodPost, "/login", url.Values{"csrf": {"forged"}, "username": {"operator"}, "password": {operatorPassword}})
		},
		wantCode: http.StatusForbidden,
	}, {
		name: "a login posted by another site is refused",
		send: func(b *browser) response {
			p := b.do(http.MethodGet, "/login", nil)
			return b.do(http.MethodPost, "/login", url.Values{"csrf": {b.csrf(p.body)}, "username": {"operator"}, "password": {operatorPassword}},
				"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		},
		wantCode: http.StatusForbidden,
		wantText: "not sent from the dashboard",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.browser(t)
			res := tt.send(b)
			if res.code != tt.wantCode {
				t.Fatalf("status %d, want %d; body:\n%s", res.code, tt.wantCode, res.body)
			}
			if !strings.Contains(res.body, tt.wantText) {
				t.Errorf("page lacks %q:\n%s", tt.wantText, res.body)
			}
			_, has := b.cookies[sessionCookie]
			if has != tt.wantSession {
				t.Errorf("session cookie set = %v, want %v", has, tt.wantSession)
			}
			fleet := b.do(http.MethodGet, "/", nil)
			if got := fleet.code == http.StatusOK; got != tt.wantSession {
				t.Errorf("fleet page status %d with session %v", fleet.code, tt.wantSession)
			}
			if strings.Contains(f.log.String(), operatorPassword) || strings.Contains(f.log.String(), "-secret") {
				t.Errorf("a password or token was logged:\n%s", f.log.String())
			}
		})
	}
}

func TestSessionCookieIsHttpOnlySecureStrictAndEndsWithTheToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	res := b.login("operator", operatorPassword)
	var c *http.Cookie
	for _, s := range res.set {
		if s.Name == sessionCookie {
			c = s
		}
	}
	if c == nil {
		t.Fatalf("no session cookie in %v", res.set)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/ and no Domain", c)
	}
	if !c.Expires.Equal(t0.Add(tokenTTL).Truncate(time.Second)) {
		t.Errorf("cookie expires %s, want the token's expiry %s", c.Expires, t0.Add(tokenTTL))
	}
	if strings.Contains(c.Value, "token-") || len(c.Value) < 40 {
		t.Errorf("cookie value %q: want a long random id, not the token", c.Value)
	}
}

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name string
		end  func(f *fixture)
		want int // status of the fleet page after end
	}{
		{"a session works until its token expires", func(f *fixture) { f.clock.Advance(tokenTTL - time.Second) }, http.StatusOK},
		{"a session ends when its token expires", func(f *fixture) { f.clock.Advance(tokenTTL) }, http.StatusSeeOther},
		{"a session ends when its token is revoked", func(f *fixture) { f.auth.revokeAll() }, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.browser(t)
			b.login("operator", operatorPassword)
			tt.end(f)
			res := b.do(http.MethodGet, "/", nil)
			if res.code != tt.want {
				t.Fatalf("fleet page: status %d, want %d", res.code, tt.want)
			}
			if tt.want == http.StatusSeeOther && res.header.Get("Location") != "/login" {
				t.Errorf("redirect to %q, want /login", res.header.Get("Location"))
			}
			if tt.want == http.StatusSeeOther {
				f.d.sessions.mu.Lock()
				n := len(f.d.sessions.m)
				f.d.sessions.mu.Unlock()
				if n != 0 {
					t.Errorf("%d sessions kept after the end, want none", n)
				}
				if res := b.do(http.MethodGet, "/events", nil); res.code != http.StatusUnauthorized {
					t.Errorf("event stream after the end: status %d, want 401", res.code)
				}
			}
		})
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name      string
		form      func(csrf string) url.Values
		hdr       []string
		wantCode  int
		wantAlive bool
	}{
		{"a logout with the session's token ends the session", func(c string) url.Values { return url.Values{"csrf": {c}} }, nil, http.StatusSeeOther, false},
		{"a logout without the session's token is refused", func(string) url.Values { return url.Values{"csrf": {"forged"}} }, nil, http.StatusForbidden, true},
		{"a logout posted by another site is refused", func(c string) url.Values { return url.Values{"csrf": {c}} },
			[]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, true},
		{"a logout by GET is not a route", nil, nil, http.StatusMethodNotAllowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.browser(t)
			b.login("operator", operatorPassword)
			page := b.do(http.MethodGet, "/", nil)
			var res response
			if tt.form == nil {
				res = b.do(http.MethodGet, "/logout", nil)
			} else {
				res = b.do(http.MethodPost, "/logout", tt.form(b.csrf(page.body)), tt.hdr...)
			}
			if res.code != tt.wantCode {
				t.Fatalf("logout: status %d, want %d:\n%s", res.code, tt.wantCode, res.body)
			}
			if alive := b.do(http.MethodGet, "/", nil).code == http.StatusOK; alive != tt.wantAlive {
				t.Errorf("session alive after logout = %v, want %v", alive, tt.wantAlive)
			}
		})
	}
}

func TestSessionsAreBounded(t *testing.T) {
	ss := newSessions(2)
	for i, id := range []string{"a", "b", "c"} {
		ss.add(&session{id: id, created: t0.Add(time.Duration(i) * time.Second), expires: t0.Add(time.Hour)}, t0)
	}
	if ss.get("a", t0) != nil || ss.get("b", t0) == nil || ss.get("c", t0) == nil {
		t.Errorf("after three sessions with room for two: want the oldest gone, the others kept")
	}
	if ss.get("b", t0.Add(time.Hour)) != nil {
		t.Errorf("a session past its expiry is still served")
	}
}
