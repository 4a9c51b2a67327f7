package fleet

import (
	"context"
	_ "embed"
	"io"
	"net/http"
	"time"
)

// The page's live updates, as the verifier's dashboard does them: a
// Server-Sent Events stream says "change" when a node's state or the
// Events change, and the page's script fetches the page again and swaps
// its <main>. The page is rendered and escaped by the server; the script
// builds no HTML from data.

//go:embed webevents.js
var script []byte

func serveScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(script)
}

// heartbeat keeps an idle stream open through proxies and shows the
// browser the server is alive.
const heartbeat = 15 * time.Second

// watchEvery is how often the fleet is looked at while a page is open: a
// fleet of thousands of nodes is one list of thousands of Nodes.
func (f *Fleet) watchEvery() time.Duration {
	return 500*time.Millisecond + time.Duration(len(f.nodes))*400*time.Microsecond
}

// subscribe adds a stream; the first one starts the watch of the fleet,
// which outlives the request (ctx) that started it.
func (wb *web) subscribe(ctx context.Context) chan struct{} {
	ch := make(chan struct{}, 1)
	wb.mu.Lock()
	defer wb.mu.Unlock()
	wb.subs[ch] = struct{}{}
	if len(wb.subs) == 1 {
		wb.watching = make(chan struct{})
		go wb.watch(context.WithoutCancel(ctx), wb.watching, wb.f.watchEvery())
	}
	return ch
}

// unsubscribe removes a stream; the last one stops the watch.
func (wb *web) unsubscribe(ch chan struct{}) {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	delete(wb.subs, ch)
	if len(wb.subs) == 0 {
		close(wb.watching)
	}
}

// watch wakes every stream when the fleet's signature changes, until stop
// closes.
func (wb *web) watch(ctx context.Context, stop <-chan struct{}, every time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	last := wb.f.signature(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sig := wb.f.signature(ctx)
		if sig == last || ctx.Err() != nil {
			continue
		}
		last = sig
		wb.mu.Lock()
		for ch := range wb.subs {
			select {
			case ch <- struct{}{}:
			default: // one pending wake-up stands for any number
			}
		}
		wb.mu.Unlock()
	}
}

// events is the Server-Sent Events stream of the page: an event "change"
// when the fleet changes, a comment as a heartbeat.
func (wb *web) events(w http.ResponseWriter, r *http.Request) {
	flusher := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	ch := wb.subscribe(r.Context())
	defer wb.unsubscribe(ch)
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for msg := "retry: 2000\n: connected\n\n"; ; {
		if _, err := io.WriteString(w, msg); err != nil || flusher.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			msg = "event: change\ndata: fleet\n\n"
		case <-beat.C:
			msg = ": ping\n\n"
		}
	}
}
