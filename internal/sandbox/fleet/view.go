package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"trustedcompute.io/tc/internal/cluster"
)

// NodeRow is one node as the views show it.
type NodeRow struct {
	Node       string    `json:"node"`
	Status     string    `json:"status"`
	Cordoned   bool      `json:"cordoned"`
	Tainted    bool      `json:"tainted"`
	Ready      bool      `json:"ready"`
	LastReport string    `json:"last_report"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message"`
	Since      time.Time `json:"since"`
}

// statusTitle is the seed's wording of a status.
func statusTitle(s cluster.Status) string {
	switch s {
	case cluster.StatusVerified:
		return "Verified"
	case cluster.StatusAttestationFailed:
		return "Attestation Failed"
	case cluster.StatusSecureBootDisabled:
		return "Secure Boot Disabled"
	}
	return "Pending"
}

// Rows describes every node of the registry, by name.
func (r *Registry) Rows() []NodeRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := make([]NodeRow, 0, len(r.nodes))
	for name, n := range r.nodes {
		in := infoOf(name, n)
		row := NodeRow{Node: name, Status: statusTitle(in.Status), Cordoned: in.Cordoned, Ready: in.Ready,
			LastReport: in.LastReport, Tainted: slices.Contains(n.taints, untrustedTaint)}
		if c := n.cond; c != nil {
			row.Reason, row.Message, row.Since = c.Reason, c.Message, c.LastTransitionTime
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b NodeRow) int { return strings.Compare(a.Node, b.Node) })
	return rows
}

// renderTable writes the node table and the last actions.
func renderTable(w io.Writer, r *Registry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NODE\tSTATUS\tSCHEDULING\tREADY\tLAST REPORT\tSTATUS SINCE\tREASON")
	for _, row := range r.Rows() {
		sched := "schedulable"
		if row.Cordoned {
			sched = "cordoned"
		}
		if row.Tainted {
			sched += "+tainted"
		}
		since := "-"
		if !row.Since.IsZero() {
			since = now.Sub(row.Since).Round(time.Second).String() + " ago"
		}
		reason := row.Reason
		if row.Message != "" {
			reason += ": " + row.Message
		}
		last := "-"
		if row.LastReport != "" {
			last = short(row.LastReport)
			if t, ok := reportTime(row.LastReport); ok {
				last += " (" + now.Sub(t).Round(time.Second).String() + " ago)"
			}
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", row.Node, row.Status, sched, row.Ready, last, since, reason)
	}
	_ = tw.Flush()
	acts := r.Actions("")
	if len(acts) > 8 {
		acts = acts[len(acts)-8:]
	}
	_, _ = fmt.Fprintln(w, "\nlast actions (what the Kubernetes adapter would do):")
	for _, a := range acts {
		if a.Kind == ActionAnnotation || a.Kind == ActionCondition {
			continue
		}
		_, _ = fmt.Fprintf(w, "  %s  %s\n", a.Time.Format("15:04:05"), a)
	}
}

// liveView redraws the table every second until ctx ends. On a terminal it
// clears the screen; otherwise it prints the table when it changed.
func liveView(ctx context.Context, w io.Writer, r *Registry, terminal bool, header string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		var b strings.Builder
		renderTable(&b, r, time.Now())
		out := b.String()
		if terminal {
			_, _ = fmt.Fprint(w, "\033[H\033[2J"+header+"\n\n"+out)
		} else if sig := signature(r); sig != last {
			last = sig
			_, _ = fmt.Fprint(w, "\n"+out)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// signature changes when a node's state or the adapter's visible actions
// change, not with every new report, so that a non-terminal view prints only
// real changes.
func signature(r *Registry) string {
	var b strings.Builder
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "%s %s %v %v %v %s %s\n", row.Node, row.Status, row.Cordoned, row.Tainted, row.Ready, row.Reason, row.Message)
	}
	n := 0
	for _, a := range r.Actions("") {
		if a.Kind != ActionAnnotation && a.Kind != ActionCondition {
			n++
		}
	}
	fmt.Fprintf(&b, "%d", n)
	return b.String()
}

// reportTime is the creation time of a report, from its UUIDv7 id.
func reportTime(id string) (time.Time, bool) {
	hexMS := strings.ReplaceAll(id, "-", "")
	if len(hexMS) != 32 || hexMS[12] != '7' {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(hexMS[:12], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Trusted Compute sandbox</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.Verified{color:#070}.Attestation.Failed,.Secure.Boot.Disabled{color:#b00}</style></head>
<body><h1>Trusted Compute sandbox</h1>
<p>Read-only. Verifier: {{.Verifier}}. Refreshed {{.Now.Format "15:04:05"}}.</p>
<table><tr><th>node</th><th>status</th><th>scheduling</th><th>ready</th><th>last report</th><th>reason</th></tr>
{{range .Rows}}<tr><td>{{.Node}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{if .Cordoned}}cordoned{{else}}schedulable{{end}}{{if .Tainted}}, tainted{{end}}</td><td>{{.Ready}}</td><td>{{.LastReport}}</td><td>{{.Reason}}{{if .Message}}: {{.Message}}{{end}}</td></tr>
{{end}}</table>
<h2>Actions</h2><ul>{{range .Actions}}<li>{{.Time.Format "15:04:05"}} {{.}}</li>{{end}}</ul>
<p><a href="/nodes.json">nodes.json</a></p></body></html>`))

// webHandler serves the read-only page and its JSON.
func webHandler(r *Registry, verifierURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		acts := r.Actions("")
		if len(acts) > 30 {
			acts = acts[len(acts)-30:]
		}
		_ = page.Execute(w, map[string]any{"Rows": r.Rows(), "Actions": acts, "Now": time.Now(), "Verifier": verifierURL})
	})
	mux.HandleFunc("GET /nodes.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Rows())
	})
	return mux
}

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
