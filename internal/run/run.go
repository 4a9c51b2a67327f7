// Package run runs the long-lived parts of a process as
// func(context.Context) error tasks that stop together: when one returns,
// the others are cancelled and waited for.
package run

import (
	"context"
	"errors"
	"fmt"
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
	r, _ := New(ctx)
	for _, task := range tasks {
		r.Go("", task)
	}
	return r.Wait()
}

// Runner starts tasks one by one, for a composition root that must start
// some parts (a server) before it can set up others (its clients). All
// tasks stop together, as in Group.
type Runner struct {
	g      *errgroup.Group
	ctx    context.Context //nolint:containedctx // the one context every task of the runner shares
	cancel context.CancelFunc
}

// New returns a runner and the context its tasks run in: it ends when ctx
// ends, when any task returns, or on Stop.
func New(ctx context.Context) (*Runner, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	g, ctx := errgroup.WithContext(ctx)
	return &Runner{g: g, ctx: ctx, cancel: cancel}, ctx
}

// Go starts task; name, when set, prefixes its error.
func (r *Runner) Go(name string, task Task) {
	r.g.Go(func() error {
		err := task(r.ctx)
		switch {
		case err == nil || errors.Is(err, context.Canceled):
			return errStopped
		case name != "":
			return fmt.Errorf("%s: %w", name, err)
		default:
			return err
		}
	})
}

// Stop cancels every task; Wait still has to be called.
func (r *Runner) Stop() { r.cancel() }

// Wait waits for every task and returns the first error, as Group does.
func (r *Runner) Wait() error {
	err := r.g.Wait()
	r.cancel()
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
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
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
