package fleet

import (
	"context"
	"time"
)

// poll calls check every interval until it reports done or fails. When
// timeout passes first, it returns late(), which says what check saw last;
// when ctx ends first, ctx's error.
func poll(ctx context.Context, timeout, interval time.Duration, check func() (done bool, err error), late func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := check(); done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return late()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
