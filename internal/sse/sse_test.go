package sse

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTheHubCountsItsStreamsAndKeepsOnePendingWakeUp(t *testing.T) {
	var h Hub
	a, n := h.Subscribe()
	if n != 1 {
		t.Fatalf("first stream: %d open", n)
	}
	b, n := h.Subscribe()
	if n != 2 {
		t.Fatalf("second stream: %d open", n)
	}
	h.Wake()
	h.Wake()
	for _, ch := range []chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatal("a subscribed stream was not woken")
		}
		select {
		case <-ch:
			t.Fatal("two wake-ups pending where one stands for any number")
		default:
		}
	}
	if left := h.Unsubscribe(a); left != 1 {
		t.Fatalf("after one unsubscribe: %d left", left)
	}
	h.Wake()
	select {
	case <-a:
		t.Fatal("an unsubscribed stream was woken")
	default:
	}
}

// readEvents reads the stream's blocks (separated by a blank line) into out.
func readEvents(t *testing.T, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var block []string
		for sc.Scan() {
			if sc.Text() == "" {
				out <- strings.Join(block, "\n")
				block = nil
				continue
			}
			block = append(block, sc.Text())
		}
	}()
	return out
}

func next(t *testing.T, events <-chan string) string {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return ""
	}
}

func TestAStreamSendsItsEventOnWakeUpAndEndsWhenItsSessionDoes(t *testing.T) {
	var h Hub
	var alive atomic.Bool
	alive.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, _ := h.Subscribe()
		defer h.Unsubscribe(ch)
		Serve(w, r, ch, Stream{Event: "report", Data: "new", Alive: alive.Load, End: "event: logout\ndata: session ended\n\n"})
	}))
	defer srv.Close()
	events := readEvents(t, srv.URL)
	if e := next(t, events); e != "retry: 2000\n: connected" {
		t.Fatalf("first block %q", e)
	}
	h.Wake()
	if e := next(t, events); e != "event: report\ndata: new" {
		t.Fatalf("after a wake-up: %q", e)
	}
	alive.Store(false)
	h.Wake()
	if e := next(t, events); e != "event: logout\ndata: session ended" {
		t.Fatalf("after the session ended: %q", e)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	select {
	case _, open := <-events:
		if open {
			t.Fatal("the stream went on after its session ended")
		}
	case <-ctx.Done():
		t.Fatal("the stream did not end")
	}
}
