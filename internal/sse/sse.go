// Package sse serves the Server-Sent Events streams of the product's live
// pages (the verifier's dashboard, the sandbox's page): a Hub wakes the open
// streams when what a page shows changed, and Serve writes one stream. The
// page's script then fetches the page again; no data goes over the stream.
package sse

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Heartbeat is how often an idle stream gets a comment: it keeps the stream
// open through proxies and lets a stream whose client went away end.
const Heartbeat = 15 * time.Second

// Hub wakes the subscribed streams. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Subscribe adds a stream and returns its wake-up channel and the number
// of streams now open.
func (h *Hub) Subscribe() (chan struct{}, int) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan struct{}]struct{}{}
	}
	h.subs[ch] = struct{}{}
	return ch, len(h.subs)
}

// Unsubscribe removes a stream and returns the number of streams left.
func (h *Hub) Unsubscribe(ch chan struct{}) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
	return len(h.subs)
}

// Wake signals every stream; one that has a signal pending keeps it (one
// pending wake-up stands for any number).
func (h *Hub) Wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Stream is what Serve sends: Event with Data on every wake-up, and End
// (an event, e.g. "event: logout\ndata: ...\n\n") when Alive says the
// stream's session is over. Alive nil: the stream lives as long as its
// request.
type Stream struct {
	Event, Data string
	Alive       func() bool
	End         string
}

// Serve writes the event stream of s on w until r's context ends, the
// client goes away or Alive says no, taking wake-ups from ch.
func Serve(w http.ResponseWriter, r *http.Request, ch <-chan struct{}, s Stream) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(msg string) bool {
		// A server's write timeout is for pages; a stream lives longer.
		_ = rc.SetWriteDeadline(time.Now().Add(Heartbeat + 10*time.Second))
		if _, err := io.WriteString(w, msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n: connected\n\n") {
		return
	}
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			msg = "event: " + s.Event + "\ndata: " + s.Data + "\n\n"
		case <-beat.C:
			msg = ": ping\n\n"
		}
		if s.Alive != nil && !s.Alive() {
			_ = write(s.End)
			return
		}
		if !write(msg) {
			return
		}
	}
}
