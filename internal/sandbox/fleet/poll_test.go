package fleet

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPollEndsOnTheFirstAnswerThatSettlesIt(t *testing.T) {
	errCheck, errLate := errors.New("check failed"), errors.New("late")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		answers   []error // nil: done; errNotYet: not yet; else: failed
		wantErr   error
		wantCalls int
	}{
		{"a check that is done at once is called once", context.Background(), []error{nil}, nil, 1},
		{"a check is called again until it is done", context.Background(), []error{errNotYet, errNotYet, nil}, nil, 3},
		{"a failed check ends the poll with its error", context.Background(), []error{errNotYet, errCheck}, errCheck, 2},
		{"a check never done ends with the caller's account when time is up", context.Background(), nil, errLate, -1},
		{"an ended context ends the poll with its error", canceled, nil, context.Canceled, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := poll(tc.ctx, 50*time.Millisecond, time.Millisecond, func() (bool, error) {
				calls++
				if calls > len(tc.answers) {
					return false, nil
				}
				if a := tc.answers[calls-1]; !errors.Is(a, errNotYet) {
					return a == nil, a
				}
				return false, nil
			}, func() error { return errLate })
			if !errors.Is(err, tc.wantErr) || (tc.wantCalls >= 0 && calls != tc.wantCalls) {
				t.Fatalf("poll = %v after %d calls, want %v after %d", err, calls, tc.wantErr, tc.wantCalls)
			}
		})
	}
}

var errNotYet = errors.New("not yet")
