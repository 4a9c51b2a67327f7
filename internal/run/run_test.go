package run

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupStopsEveryTaskWhenOneFails(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	waiter := func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return ctx.Err() }
	err := Group(context.Background(), waiter, waiter, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if stopped.Load() != 2 {
		t.Fatalf("%d of 2 tasks stopped", stopped.Load())
	}
}

func TestGroupStopsWhenATaskReturnsNilOrTheContextEnds(t *testing.T) {
	waiter := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := Group(context.Background(), waiter, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a task returning nil: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := Group(ctx, waiter, waiter); err != nil {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestServerShutsDownWhenTheContextEnds(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Server(ctx, srv, func() error { return srv.Serve(ln) }, time.Second) }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Server = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Server did not return after cancel")
	}
}

func TestRunnerNamesTheFailingTaskAndStopsTheOthers(t *testing.T) {
	r, ctx := New(context.Background())
	stopped := make(chan struct{})
	r.Go("server", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
	r.Go("https", func(context.Context) error { return errors.New("address in use") })
	err := r.Wait()
	if err == nil || err.Error() != "https: address in use" {
		t.Fatalf("err = %v", err)
	}
	<-stopped
	if ctx.Err() == nil {
		t.Fatal("the runner's context is still live after Wait")
	}
}

func TestRunnerStopEndsTasksStartedBeforeASetupError(t *testing.T) {
	r, _ := New(context.Background())
	r.Go("server", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	r.Stop() // a setup step failed
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait after Stop = %v", err)
	}
}
