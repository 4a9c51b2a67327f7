package errtest_test

import (
	"errors"
	"testing"

	"trustedcompute.io/tc/internal/errtest"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed, fatal bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) {
	r.failed, r.fatal = true, true
	panic(r) // stands for runtime.Goexit
}

func run(err error, want ...string) (r *recorder, goOn bool) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	return r, errtest.Want(r, err, want...)
}

func TestWant(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       []string
		wantFailed bool
		wantFatal  bool
		wantGoOn   bool
	}{
		{name: "no error where none is wanted goes on", wantGoOn: true},
		{name: "an empty substring wants no error", want: []string{""}, wantGoOn: true},
		{name: "an error where none is wanted is fatal", err: errors.New("boom"), wantFailed: true, wantFatal: true},
		{name: "no error where one is wanted is fatal", want: []string{"boom"}, wantFailed: true, wantFatal: true},
		{name: "an error mentioning every substring passes and stops the case", err: errors.New("a boom and a bang"), want: []string{"boom", "bang"}},
		{name: "an error lacking a substring fails", err: errors.New("a boom"), want: []string{"boom", "bang"}, wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, goOn := run(tt.err, tt.want...)
			if r.failed != tt.wantFailed || r.fatal != tt.wantFatal {
				t.Fatalf("failed %v fatal %v, want %v %v", r.failed, r.fatal, tt.wantFailed, tt.wantFatal)
			}
			if !r.fatal && goOn != tt.wantGoOn {
				t.Fatalf("go on = %v, want %v", goOn, tt.wantGoOn)
			}
		})
	}
}
