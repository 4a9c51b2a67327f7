package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// Cookies. The __Host- prefix makes browsers accept them only when Secure,
// for this host alone and for every path.
const (
	sessionCookie = "__Host-tc-session"
	// loginCookie holds the anti-CSRF token of the login form (double
	// submit: the form must carry the same value).
	loginCookie = "__Host-tc-login"
	loginTTL    = 10 * time.Minute
	// maxFormBytes bounds a login or logout form.
	maxFormBytes = 8 << 10
)

// session is what the server keeps of a logged-in browser. The browser
// holds only id; the token never leaves the server.
type session struct {
	id      string
	token   string
	user    string
	csrf    string // the anti-CSRF token of the session's forms
	created time.Time
	expires time.Time // never after the token's expiry
}

// sessions holds the sessions in memory, at most max of them.
type sessions struct {
	mu  sync.Mutex
	max int
	m   map[string]*session
}

func newSessions(maxSessions int) *sessions {
	return &sessions{max: maxSessions, m: map[string]*session{}}
}

// add stores s, dropping expired sessions and then the oldest when full.
func (ss *sessions) add(s *session, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		var oldest *session
		for id, o := range ss.m {
			if !now.Before(o.expires) {
				delete(ss.m, id)
			} else if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		if len(ss.m) >= ss.max && oldest != nil {
			delete(ss.m, oldest.id)
		}
	}
	ss.m[s.id] = s
}

// get returns the live session of id; an expired one is dropped.
func (ss *sessions) get(id string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil
	}
	if !now.Before(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// randomToken is 256 random bits, base32 (rand.Text).
func randomToken() string { return rand.Text() + rand.Text() }

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

type sessionKey struct{}

func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// authed lets a request through with a live session whose token the AAS
// still accepts and whose user may read hosts and reports. Pages without
// one go to the login page; the event stream gets a 401.
func (d *Dashboard) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, claims, reason := d.check(r)
		if s == nil {
			if reason != "" {
				d.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard session ended", slog.String(keyReason, reason))
			}
			setCookie(w, sessionCookie, "", time.Time{})
			if r.URL.Path == "/events" || r.Method != http.MethodGet {
				http.Error(w, "log in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), sessionKey{}, s), claimsKey{}, claims)
		h(w, r.WithContext(ctx))
	})
}

// check returns the request's live session with its token's claims, or
// nil and why it ended ("" for no session at all).
func (d *Dashboard) check(r *http.Request) (*session, *auth.Claims, string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil, ""
	}
	s := d.sessions.get(c.Value, d.cfg.Clock.Now())
	if s == nil {
		return nil, nil, "unknown or expired session"
	}
	claims, _, err := d.auth.CheckToken(r.Context(), s.token)
	if err != nil {
		d.sessions.remove(s.id)
		return nil, nil, "token refused: " + err.Error()
	}
	if missing := missingRules(claims); missing != "" {
		d.sessions.remove(s.id)
		return nil, nil, "permission " + missing + " missing"
	}
	return s, claims, ""
}

type claimsKey struct{}

// allows reports whether the request's user holds an HVS permission rule
// beside those every dashboard user holds.
func allows(ctx context.Context, rule string) bool {
	c, _ := ctx.Value(claimsKey{}).(*auth.Claims)
	need, err := auth.ParseRule(rule)
	return c != nil && err == nil && c.Allows(Service, need)
}

// missingRules names the first rule the claims lack, or "".
func missingRules(c *auth.Claims) string {
	for _, rule := range Rules {
		need, err := auth.ParseRule(rule)
		if err != nil || !c.Allows(Service, need) {
			return Service + ":" + rule
		}
	}
	return ""
}

type loginView struct {
	CSRF, Username, Error string
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, _, _ := d.check(r); s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.renderLogin(w, r, http.StatusOK, loginView{})
}

// renderLogin shows the login form with a fresh anti-CSRF token.
func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	v.CSRF = randomToken()
	setCookie(w, loginCookie, v.CSRF, d.cfg.Clock.Now().Add(loginTTL))
	d.render(w, r, status, d.pages.login, page{Title: "Log in", Body: v})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		d.message(w, r, http.StatusBadRequest, "Bad request", "The login form could not be read.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !equalTokens(c.Value, r.PostForm.Get("csrf")) {
		d.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard login refused", slog.String(keyReason, "anti-CSRF token missing or wrong"))
		d.renderLogin(w, r, http.StatusForbidden, loginView{Error: "The login form expired. Please try again."})
		return
	}
	user := strings.TrimSpace(r.PostForm.Get("username"))
	token, err := d.auth.Login(aas.ContextWithRequestPeer(r.Context(), r), user, r.PostForm.Get("password"))
	if err != nil {
		d.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard login refused", slog.String(keyUser, user), slog.String(keyError, err.Error()))
		d.renderLogin(w, r, http.StatusUnauthorized, loginView{Username: user, Error: "Invalid username or password."})
		return
	}
	claims, exp, err := d.auth.CheckToken(r.Context(), token)
	if err != nil {
		d.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard login refused", slog.String(keyUser, user), slog.String(keyError, err.Error()))
		d.renderLogin(w, r, http.StatusUnauthorized, loginView{Username: user, Error: "The login could not be completed."})
		return
	}
	if missing := missingRules(claims); missing != "" {
		d.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard login refused", slog.String(keyUser, user), slog.String(keyReason, "permission "+missing+" missing"))
		d.message(w, r, http.StatusForbidden, "Not allowed",
			"The account "+user+" may not read hosts and reports. The dashboard needs the permissions "+
				Service+":"+strings.Join(Rules, " and "+Service+":")+"; ask an administrator for a role that grants them.")
		return
	}
	now := d.cfg.Clock.Now()
	s := &session{id: randomToken(), token: token, user: user, csrf: randomToken(), created: now, expires: exp}
	d.sessions.add(s, now)
	setCookie(w, loginCookie, "", time.Time{})
	setCookie(w, sessionCookie, s.id, s.expires)
	d.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard login", slog.String(keyUser, user))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || !equalTokens(s.csrf, r.PostForm.Get("csrf")) {
		d.message(w, r, http.StatusForbidden, "Request refused", "The logout form did not carry this session's token.")
		return
	}
	d.sessions.remove(s.id)
	setCookie(w, sessionCookie, "", time.Time{})
	d.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard logout", slog.String(keyUser, s.user))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
