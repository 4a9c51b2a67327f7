package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/verifier/store"
)

// Live updates. Run polls the store for the newest report every Poll (one
// indexed row), which also sees reports stored by other verifier replicas,
// and wakes every open event stream when it changes; the page's script then
// fetches the page again and swaps its content.

// heartbeat keeps idle event streams open through proxies and ends the
// stream of a session that has expired.
const heartbeat = 15 * time.Second

// hub wakes the subscribed streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (h *hub) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan struct{}) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

// wake signals every stream; one that has a signal pending keeps it.
func (h *hub) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

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
				d.hub.wake()
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
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch := d.hub.subscribe()
	defer d.hub.unsubscribe(ch)
	write := func(msg string) bool {
		// The server's write timeout is for pages; a stream lives longer.
		_ = rc.SetWriteDeadline(time.Now().Add(heartbeat + 10*time.Second))
		if _, err := w.Write([]byte(msg)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n: connected\n\n") {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			msg = "event: report\ndata: new\n\n"
		case <-tick.C:
			msg = ": ping\n\n"
		}
		if s, _, _ := d.check(r); s == nil {
			_ = write("event: logout\ndata: session ended\n\n")
			return
		}
		if !write(msg) {
			return
		}
	}
}
