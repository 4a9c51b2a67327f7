package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"

	"trustedcompute.io/tc/internal/verifier/keybroker"
	"trustedcompute.io/tc/internal/verifier/store"
)

//go:embed templates
var templates embed.FS

// pages are the parsed templates, one set per page around the layout.
type pages struct {
	login, fleet, node, report, message *template.Template
}

var funcs = template.FuncMap{
	// seg is one path segment of a link.
	"seg": url.PathEscape,
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

func parsePages() (pages, error) {
	parse := func(name string) (*template.Template, error) {
		return template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html", "templates/"+name)
	}
	var (
		p    pages
		errs []error
	)
	for _, x := range []struct {
		t    **template.Template
		name string
	}{{&p.login, "login.html"}, {&p.fleet, "fleet.html"}, {&p.node, "node.html"}, {&p.report, "report.html"}, {&p.message, "message.html"}} {
		t, err := parse(x.name)
		errs = append(errs, err)
		*x.t = t
	}
	return p, errors.Join(errs...)
}

// page is what the layout renders: the title, the logged-in user with the
// anti-CSRF token of the logout form, and the page's own view.
type page struct {
	Title string
	User  string
	CSRF  string
	// Live pages refresh themselves when a new report is stored.
	Live bool
	Body any
}

// render executes t into a buffer first, so that a template error never
// sends half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, p page) {
	if s := sessionOf(r.Context()); s != nil {
		p.User, p.CSRF = s.user, s.csrf
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		d.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: render page", slog.String(keyError, err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(visible(buf.Bytes()))
}

type messageView struct{ Heading, Text string }

func (d *Dashboard) message(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	d.render(w, r, status, d.pages.message, page{Title: heading, Body: messageView{heading, text}})
}

// fail shows a store error: not found as such, anything else as an
// internal error whose detail goes to the log only.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		d.message(w, r, http.StatusNotFound, "Not found", "There is no such node or report.")
		return
	}
	d.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: read the store", slog.String(keyError, err.Error()))
	d.message(w, r, http.StatusInternalServerError, "Internal error", "The dashboard could not read the store; see the verifier's log.")
}

func (d *Dashboard) fleet(w http.ResponseWriter, r *http.Request) {
	v, err := d.fleetView(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, d.pages.fleet, page{Title: "Fleet", Live: true, Body: v})
}

func (d *Dashboard) node(w http.ResponseWriter, r *http.Request) {
	v, err := d.nodeView(r.Context(), r.PathValue("id"), allows(r.Context(), keybroker.AuditRule))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, d.pages.node, page{Title: "Node " + v.Host.Name, Live: true, Body: v})
}

func (d *Dashboard) report(w http.ResponseWriter, r *http.Request) {
	v, _, err := d.reportView(r.Context(), r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, d.pages.report, page{Title: "Report " + v.ID, Body: v})
}

// unsafeName is what a download file name may not hold of a report id.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// download serves the signed report (compact JWS) as a file.
func (d *Dashboard) download(w http.ResponseWriter, r *http.Request) {
	sr, err := d.store.ReportByID(r.Context(), r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if sr.JWS == "" {
		d.message(w, r, http.StatusNotFound, "Not found", "The verifier stored no signed form of this report.")
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Content-Disposition", `attachment; filename="report-`+unsafeName.ReplaceAllString(sr.ID, "_")+`.jws"`)
	_, _ = w.Write([]byte(sr.JWS + "\n"))
}

// visible returns page with the characters a browser acts on rather than
// shows written out as text, \u202e: format characters (bidi overrides and
// isolates, zero-width characters), control characters but the newline,
// carriage return and tab, and the line and paragraph separators.
// html/template escapes markup, not these, and a node writes much of what
// a page shows (its IMA paths, its agent's facts): a bidi override could
// show /usr/bin/evil as another file, and a page is read as evidence. The
// templates hold none of them.
func visible(page []byte) []byte {
	shown := func(r rune) bool {
		return r == '\n' || r == '\r' || r == '\t' ||
			!unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) && r != utf8.RuneError
	}
	if !bytes.ContainsFunc(page, func(r rune) bool { return !shown(r) }) {
		return page
	}
	out := make([]byte, 0, len(page)+64)
	for len(page) > 0 {
		r, n := utf8.DecodeRune(page)
		if shown(r) {
			out = append(out, page[:n]...)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		page = page[n:]
	}
	return out
}
