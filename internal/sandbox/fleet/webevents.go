package fleet

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"trustedcompute.io/tc/internal/sse"
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

// watchEvery is how often the fleet is looked at while a page is open: a
// fleet of thousands of nodes is one list of thousands of Nodes.
func (f *Fleet) watchEvery() time.Duration {
	return 500*time.Millisecond + time.Duration(len(f.nodes))*400*time.Microsecond
}

// subscribe adds a stream; the first one starts the watch of the fleet,
// which outlives the request (ctx) that started it.
func (wb *web) subscribe(ctx context.Context) chan struct{} {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	ch, n := wb.streams.Subscribe()
	if n == 1 {
		wb.watching = make(chan struct{})
		go wb.watch(context.WithoutCancel(ctx), wb.watching, wb.f.watchEvery())
	}
	return ch
}

// unsubscribe removes a stream; the last one stops the watch.
func (wb *web) unsubscribe(ch chan struct{}) {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	if wb.streams.Unsubscribe(ch) == 0 {
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
		wb.streams.Wake()
	}
}

// events is the Server-Sent Events stream of the page: an event "change"
// when the fleet changes, a comment as a heartbeat.
func (wb *web) events(w http.ResponseWriter, r *http.Request) {
	ch := wb.subscribe(r.Context())
	defer wb.unsubscribe(ch)
	sse.Serve(w, r, ch, sse.Stream{Event: "change", Data: "fleet"})
}
