// Package run runs the long-lived parts of a process as
// func(context.Context) error tasks that stop together: when one returns,
// the others are cancelled and waited for.
package run

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// Task is a long-lived part of a process; it returns when ctx ends or it
// fails.
type Task func(ctx context.Context) error

// errStopped marks a task that returned without an error: the group stops
// all the same.
var errStopped = errors.New("task stopped")

// Group runs every task until ctx ends or one task returns; then it cancels
// the others, waits for them and returns the first error (nil when the first
// task to return returned nil or context.Canceled).
func Group(ctx context.Context, tasks ...Task) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, task := range tasks {
		g.Go(func() error {
			err := task(ctx)
			if err == nil || errors.Is(err, context.Canceled) {
				return errStopped
			}
			return err
		})
	}
	if err := g.Wait(); !errors.Is(err, errStopped) {
		return err
	}
	return nil
}

// Server runs srv with serve (srv.Serve(ln) or srv.ServeTLS(ln, "", "")) until
// ctx ends, then shuts it down, giving open requests up to grace.
func Server(ctx context.Context, srv *http.Server, serve func() error, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		<-errc // http.ErrServerClosed
		return nil
	}
}
