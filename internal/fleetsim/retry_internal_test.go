package fleetsim

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
)

func TestEnrollmentStepsRetryOnlyTransientRefusals(t *testing.T) {
	refused := func(status int) error { return &StatusError{Method: "POST", Path: "/p", Status: status} }
	tests := []struct {
		name        string
		answers     []error // one an attempt; the last repeats
		wantErr     int     // the status of the error returned; 0: nil
		wantRetries int64
	}{
		{"a step that succeeds is not retried", []error{nil}, 0, 0},
		{"a 503 while the agent subscribes is retried until it succeeds", []error{refused(503), refused(503), nil}, 0, 2},
		{"a 500 from a store timeout under load is retried", []error{refused(500), nil}, 0, 1},
		{"a 400 is the caller's mistake and is returned at once", []error{refused(400)}, 400, 0},
		{"a 409 is returned at once", []error{refused(409)}, 409, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fleet{opts: Options{Logger: slog.New(slog.DiscardHandler)}}
			calls := 0
			err := f.retry(context.Background(), func() error {
				a := tt.answers[min(calls, len(tt.answers)-1)]
				calls++
				return a
			})
			var se *StatusError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("retry = %v, want success", err)
			case tt.wantErr != 0 && (!errors.As(err, &se) || se.Status != tt.wantErr):
				t.Fatalf("retry = %v, want the %d", err, tt.wantErr)
			}
			if got := f.Retries(); got != tt.wantRetries {
				t.Fatalf("Retries = %d, want %d", got, tt.wantRetries)
			}
		})
	}
}

func TestRetriesStopWhenTheContextEnds(t *testing.T) {
	f := &Fleet{opts: Options{Logger: slog.New(slog.DiscardHandler)}}
	ctx, cancel := context.WithCancel(context.Background())
	err := f.retry(ctx, func() error {
		cancel()
		return &StatusError{Status: http.StatusServiceUnavailable}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("retry = %v, want context.Canceled", err)
	}
}
