// Package graceful stops child processes the polite way: SIGTERM first, so
// that they can clean up, and SIGKILL only when they outstay a grace period.
package graceful

import (
	"os"
	"syscall"
	"time"
)

// Stop sends p SIGTERM and waits until exited is closed (by whoever waits
// for p); when that takes longer than grace, it kills p and waits on.
func Stop(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
