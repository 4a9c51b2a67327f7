package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"trustedcompute.io/tc/internal/sse"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Live updates. Run polls the store for the newest report every Poll (one
// indexed row), which also sees reports stored by other verifier replicas,
// and wakes every open event stream when it changes; the page's script then
// fetches the page again and swaps its content.

// Run polls the store for new reports until ctx ends.
func (d *Dashboard) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	last, failing := "", false
	for first := true; ; first = false {
		rs, err := d.store.ListReports(ctx, store.ReportFilter{Limit: 1})
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				d.logger.LogAttrs(ctx, slog.LevelWarn, "dashboard: poll for new reports", slog.String(keyError, err.Error()))
			}
			failing = true
		case err == nil && len(rs) > 0 && rs[0].ID != last:
			failing, last = false, rs[0].ID
			if !first {
				d.hub.Wake()
			}
		case err == nil:
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// events is a Server-Sent Events stream: an event "report" when a new
// report is stored. It ends when the session does.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	ch, _ := d.hub.Subscribe()
	defer d.hub.Unsubscribe(ch)
	sse.Serve(w, r, ch, sse.Stream{
		Event: "report", Data: "new",
		Alive: func() bool { s, _, _ := d.check(r); return s != nil },
		End:   "event: logout\ndata: session ended\n\n",
	})
}
