package configtest

import (
	"runtime"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatal ends only the goroutine it is
// called in and records that it was called.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatal(...any) {
	r.fatal = true
	runtime.Goexit()
}

func TestPrintEnvKeysFailsOnAConfigurationThatReadsNoVariable(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       any
		wantFatal bool
	}{
		{"a configuration without env tags fails the test", struct{ X int }{}, true},
		{"a configuration with an env tag prints it and passes", struct {
			X int `env:"TC_X"`
		}{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				PrintEnvKeys(r, tt.cfg)
			}()
			<-done
			if r.fatal != tt.wantFatal {
				t.Fatalf("fatal = %v, want %v", r.fatal, tt.wantFatal)
			}
		})
	}
}
