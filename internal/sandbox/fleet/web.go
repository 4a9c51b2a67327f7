package fleet

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/sse"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// Who may use the controls: a user of the verifier's AAS whose token allows
// these HVS rules (the administrator does), the same login as the
// dashboard's.
const controlService = "HVS"

var controlRules = []string{"hosts:retrieve:*", "reports:create:*"}

// Authenticator is the verifier's AAS as the control page uses it.
type Authenticator interface {
	Login(ctx context.Context, username, password string) (string, error)
	CheckToken(ctx context.Context, token string) (*auth.Claims, time.Time, error)
}

// Names of the page's session cookie and form fields.
const (
	sessionCookie = "tc-sandbox-session"
	fieldCSRF     = "csrf"
	fieldNode     = "node"
	fieldControl  = "control"
	fieldPCR      = "pcr"
	maxFormBytes  = 16 << 10
	maxSessions   = 1000
)

// session is a logged-in browser. The AAS token stays on the server; the
// browser holds a random id in an HttpOnly, SameSite=Strict cookie, and
// every request checks the token again (expiry and revocation).
type session struct {
	token, user, csrf string
	expires           time.Time
	// said is the outcome of the last control, shown for saidFor.
	said   string
	saidAt time.Time
}

// saidFor is how long the page shows the outcome of a control: live
// updates render the page again as the fleet changes.
const saidFor = 30 * time.Second

// web is the sandbox's page: the node table for anyone on loopback, the
// controls after an AAS login, and the control endpoint.
type web struct {
	f    *Fleet
	auth Authenticator
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session

	// streams are the live pages' streams; watching, while there is one,
	// closes to stop the watch of the fleet (both under mu).
	streams  sse.Hub
	watching chan struct{}
}

func newWeb(f *Fleet, a Authenticator, logger *slog.Logger) *web {
	return &web{f: f, auth: a, log: logger, sessions: map[string]*session{}}
}

// Handler is the sandbox's web page: the node table and the Events for
// anyone on loopback, the controls after a login with the verifier's AAS,
// and the control endpoint POST /control (fields node, control, pcr) for
// an AAS token.
func (f *Fleet) Handler() http.Handler {
	return newWeb(f, f.verifier.AAS(), f.log.With(keyPart, "web")).handler()
}

func (wb *web) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", wb.page)
	mux.HandleFunc("GET /nodes.json", wb.nodesJSON)
	mux.HandleFunc("GET /events", wb.events)
	mux.HandleFunc("GET /app.js", serveScript)
	mux.HandleFunc("POST /login", wb.login)
	mux.HandleFunc("POST /logout", wb.logout)
	mux.HandleFunc("POST /control", wb.control)
	return mux
}

func randomToken() string { return rand.Text() }

func (wb *web) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	wb.mu.Lock()
	s := wb.sessions[c.Value]
	wb.mu.Unlock()
	if s == nil || time.Now().After(s.expires) {
		return nil
	}
	if err := wb.allowed(r.Context(), s.token); err != nil {
		wb.drop(c.Value)
		return nil
	}
	return s
}

func (wb *web) drop(id string) {
	wb.mu.Lock()
	delete(wb.sessions, id)
	wb.mu.Unlock()
}

// allowed checks an AAS token: genuine, not expired nor revoked, and
// granting controlRules.
func (wb *web) allowed(ctx context.Context, token string) error {
	claims, _, err := wb.auth.CheckToken(ctx, token)
	if err != nil {
		return fmt.Errorf("token refused: %w", err)
	}
	for _, rule := range controlRules {
		need, err := auth.ParseRule(rule)
		if err != nil || !claims.Allows(controlService, need) {
			return fmt.Errorf("permission %s:%s missing", controlService, rule)
		}
	}
	return nil
}

// sameOrigin refuses a form posted from another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || o == "http://"+r.Host
}

type pageView struct {
	Rows      []NodeRow
	Summary   []StatusCount
	Total     int
	Status    string // the status the table is filtered by, if any
	Page      int
	Pages     int
	Events    []Event
	Now       time.Time
	Verifier  string
	Dashboard string
	Login     string
	LoggedIn  bool
	User      string
	CSRF      string
	Said      string
	Controls  []Control
	PCR       int
	Error     string
}

// pageSize is how many nodes a page of the table lists.
const pageSize = 100

// Prev and Next are the numbers of the neighbouring pages (0: none).
func (v pageView) Prev() int { return max(v.Page-1, 0) }

func (v pageView) Next() int {
	if v.Page < v.Pages {
		return v.Page + 1
	}
	return 0
}

// paged keeps the rows of status (all when empty) and cuts page number
// page (from 1) of pageSize rows; it returns the page shown and the count.
func paged(rows []NodeRow, status string, page int) (shown []NodeRow, page1, pages int) {
	if status != "" {
		kept := rows[:0:0]
		for _, r := range rows {
			if r.Status == status {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	pages = max((len(rows)+pageSize-1)/pageSize, 1)
	page = min(max(page, 1), pages)
	return rows[min((page-1)*pageSize, len(rows)):min(page*pageSize, len(rows))], page, pages
}

func (wb *web) page(w http.ResponseWriter, r *http.Request) {
	v := pageView{Now: time.Now(), Verifier: wb.f.VerifierURL(), Dashboard: wb.f.DashboardURL(),
		Login: wb.f.LoginCommand(), Controls: Controls(), PCR: DefaultPCR, Status: r.URL.Query().Get("status")}
	rows, err := wb.f.Rows(r.Context())
	if err != nil {
		v.Error = err.Error()
	}
	pageNo, _ := strconv.Atoi(r.URL.Query().Get("page"))
	v.Summary, v.Total = summarize(rows), len(rows)
	v.Rows, v.Page, v.Pages = paged(rows, v.Status, pageNo)
	if v.Events, err = wb.f.Events(r.Context(), ""); err == nil && len(v.Events) > 30 {
		v.Events = v.Events[len(v.Events)-30:]
	}
	if s := wb.sessionOf(r); s != nil {
		wb.mu.Lock()
		v.LoggedIn, v.User, v.CSRF = true, s.user, s.csrf
		if time.Since(s.saidAt) < saidFor {
			v.Said = s.said
		}
		wb.mu.Unlock()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Frame-Options", "DENY")
	if err := page.Execute(w, v); err != nil {
		wb.log.Warn("render the sandbox page", slog.Any(keyError, err))
	}
}

// contentSecurityPolicy allows the page its own script (live updates) and
// its own streams and forms, nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

func (wb *web) nodesJSON(w http.ResponseWriter, r *http.Request) {
	rows, err := wb.f.Rows(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rows)
}

func (wb *web) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !sameOrigin(r) || r.ParseForm() != nil {
		http.Error(w, "bad login form", http.StatusBadRequest)
		return
	}
	user := strings.TrimSpace(r.PostForm.Get("username"))
	// The peer's address is the login's source: failures lock the user
	// out for that source only (package aas).
	token, err := wb.auth.Login(aas.ContextWithRequestPeer(r.Context(), r), user, r.PostForm.Get("password"))
	if err == nil {
		err = wb.allowed(r.Context(), token)
	}
	if err != nil {
		wb.log.Info("sandbox control login refused", slog.String("user", user), slog.Any(keyError, err))
		http.Error(w, "login refused: wrong username or password, or the user may not run the controls", http.StatusUnauthorized)
		return
	}
	_, exp, _ := wb.auth.CheckToken(r.Context(), token)
	s := &session{token: token, user: user, csrf: randomToken(), expires: exp}
	id := randomToken()
	wb.mu.Lock()
	if len(wb.sessions) >= maxSessions {
		clear(wb.sessions)
	}
	wb.sessions[id] = s
	wb.mu.Unlock()
	// Not Secure: the page is plain HTTP on loopback only (loopbackOnly).
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, //nolint:gosec // G124: see above
		SameSite: http.SameSiteStrictMode, Expires: exp})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (wb *web) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && sameOrigin(r) {
		wb.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode}) //nolint:gosec // G124: plain HTTP on loopback, see login
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// control runs a control. It takes either an AAS token in an
// "Authorization: Bearer" header (scripts, curl) and answers in plain text,
// or the page's session cookie with its anti-CSRF field and redirects back
// to the page. Anything else is 401.
func (wb *web) control(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad control form", http.StatusBadRequest)
		return
	}
	var s *session
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			http.Error(w, "want Authorization: Bearer <AAS token>", http.StatusUnauthorized)
			return
		}
		if err := wb.allowed(r.Context(), strings.TrimSpace(token)); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	} else {
		s = wb.sessionOf(r)
		if s == nil || !sameOrigin(r) {
			http.Error(w, "log in first (an AAS user allowed "+controlService+":"+strings.Join(controlRules, ", ")+"), or send an AAS token", http.StatusUnauthorized)
			return
		}
		if subtle.ConstantTimeCompare([]byte(s.csrf), []byte(r.PostForm.Get(fieldCSRF))) != 1 {
			http.Error(w, "anti-CSRF token missing or wrong: reload the page", http.StatusForbidden)
			return
		}
	}
	pcr := DefaultPCR
	if v := r.PostForm.Get(fieldPCR); v != "" {
		var err error
		if pcr, err = strconv.Atoi(v); err != nil {
			http.Error(w, "pcr: want a number", http.StatusBadRequest)
			return
		}
	}
	node, c := r.PostForm.Get(fieldNode), Control(r.PostForm.Get(fieldControl))
	said, err := wb.f.Do(r.Context(), node, c, pcr)
	status := http.StatusOK
	if err != nil {
		said, status = err.Error(), http.StatusBadRequest
	}
	wb.log.Info("sandbox control", slog.String(keyNode, node), slog.String(keyControl, string(c)), slog.Bool("ok", err == nil))
	if s != nil {
		wb.mu.Lock()
		s.said, s.saidAt = said, time.Now()
		wb.mu.Unlock()
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, said) //nolint:gosec // G705: plain text, never sniffed as HTML
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8">
<title>Trusted Compute sandbox</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.Verified{color:#070}.Attestation.Failed,.Secure.Boot.Disabled{color:#b00}form.inline{display:inline;margin:0}
code{background:#f4f4f4;padding:.1em .3em}.said{background:#ffd;padding:.4em}#live{font-size:.8em;color:#666}</style>
<script src="/app.js" defer></script></head>
<body><h1>Trusted Compute sandbox <span id="live" hidden></span></h1>
<p>Verifier {{.Verifier}} · <a href="{{.Dashboard}}">dashboard</a><br>
<code>{{.Login}}</code></p>
<main data-live>
<p>{{.Total}} nodes:{{range .Summary}} <a href="?status={{.Status}}">{{.Count}} {{.Status}}</a>{{end}}{{if .Status}} · <a href="/">all</a>{{end}} · updated {{.Now.Format "15:04:05"}}</p>
{{if .Error}}<p class="said">{{.Error}}</p>{{end}}
{{if .Said}}<p class="said">{{.Said}}</p>{{end}}
{{if gt .Pages 1}}<p>page {{.Page}} of {{.Pages}}{{if .Prev}} · <a href="?status={{.Status}}&amp;page={{.Prev}}">previous</a>{{end}}{{if .Next}} · <a href="?status={{.Status}}&amp;page={{.Next}}">next</a>{{end}}</p>{{end}}
<table><tr><th>#</th><th>node</th><th>status</th><th>scheduling</th><th>ready</th><th>last report</th><th>reason</th>{{if .LoggedIn}}<th>controls</th>{{end}}</tr>
{{range .Rows}}{{$node := .Node}}<tr data-node="{{.Node}}"><td>{{.Number}}</td><td>{{.Node}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Scheduling}}</td><td>{{.Ready}}</td><td>{{.LastReport}}</td><td>{{.Why}}</td>
{{if $.LoggedIn}}<td>{{range $.Controls}}<form class="inline" method="post" action="/control"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="node" value="{{$node}}"><input type="hidden" name="control" value="{{.}}">{{if eq (printf "%s" .) "extend-pcr"}}<input name="pcr" size="2" value="{{$.PCR}}" aria-label="PCR">{{end}}<button>{{.}}</button></form> {{end}}</td>{{end}}</tr>
{{end}}</table>
{{if .LoggedIn}}<form method="post" action="/logout"><p>Logged in as {{.User}}. <button>log out</button></p></form>
{{else}}<form method="post" action="/login"><p>Log in to tamper, extend a PCR, reboot, turn Secure Boot off, kill the agent or re-onboard a node (the verifier's AAS user, as on the dashboard):
<input id="username" name="username" value="admin" aria-label="username"> <input id="password" name="password" type="password" aria-label="password" autocomplete="current-password"> <button id="login">log in</button></p></form>{{end}}
<h2>Events of the attestation manager on the Nodes</h2><ul>{{range .Events}}<li>{{.Time.Format "15:04:05"}} {{.}}</li>{{end}}</ul>
</main>
<p><a href="/nodes.json">nodes.json</a></p></body></html>`))

// serveWeb serves the page on addr (loopback) until ctx ends; it returns
// the URL once listening, and a function that waits for the server's end.
func serveWeb(ctx context.Context, addr string, h http.Handler) (string, func(), error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("web view: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String() + "/", func() { <-done }, nil
}
