package bus

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestDialRetriesUntilConnectedRefusedForGoodOrTheContextEnds(t *testing.T) {
	errDown := errors.New("connection refused")
	errRefused := errors.New("authorization violation")
	permanent := func(err error) bool { return errors.Is(err, errRefused) }
	tests := []struct {
		name         string
		failures     []error // what the attempts return before one succeeds
		timeout      time.Duration
		wantErr      error
		wantAttempts int
	}{
		{"a first attempt that connects is the connection", nil, time.Minute, nil, 1},
		{"a server that comes up is connected to at the third attempt", []error{errDown, errDown}, time.Minute, nil, 3},
		{"a permanent refusal ends the dial at once", []error{errDown, errRefused, errDown}, time.Minute, errRefused, 2},
		{"the context's end ends the dial, naming the last error", []error{errDown, errDown, errDown, errDown, errDown, errDown}, 300 * time.Millisecond, context.DeadlineExceeded, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			attempts := 0
			got, err := Dial(ctx, "tls://bus:4222", slog.New(slog.DiscardHandler), permanent, func(attempt int) (string, error) {
				attempts++
				if attempt != attempts {
					t.Errorf("attempt %d numbered %d", attempts, attempt)
				}
				if attempt <= len(tt.failures) {
					return "", tt.failures[attempt-1]
				}
				return "conn", nil
			})
			if tt.wantErr == nil {
				if err != nil || got != "conn" {
					t.Fatalf("Dial = %q, %v; want the connection", got, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Dial = %q, %v; want %v", got, err, tt.wantErr)
			}
			if errors.Is(tt.wantErr, context.DeadlineExceeded) && !errors.Is(err, errDown) {
				t.Errorf("Dial = %v; want it to name the last error too", err)
			}
			if tt.wantAttempts != 0 && attempts != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", attempts, tt.wantAttempts)
			}
		})
	}
}
