package natsconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// subscribeWait bounds the round trip that confirms a subscription.
const subscribeWait = 30 * time.Second

// drainWait bounds how long Drain waits for the handler.
const drainWait = 10 * time.Second

// Subscription is an interest in a subject. Its handler runs on a goroutine
// of its own, for one message at a time.
type Subscription struct {
	c       *Conn
	sid     uint64
	subject string
	queue   string
	ch      chan *bus.Msg
	done    chan struct{}
	endOnce sync.Once
	// draining (under the connection's lock) keeps s out of a new session.
	draining bool
}

// Subscribe calls h with each message on subject. It returns once the
// server has the subscription, with the server's refusal when it has none
// (ErrPermission).
func (c *Conn) Subscribe(subject string, h func(*bus.Msg)) (bus.Subscription, error) {
	return c.QueueSubscribe(subject, "", h)
}

// QueueSubscribe is Subscribe in a queue group: each message reaches one
// member of the group.
func (c *Conn) QueueSubscribe(subject, queue string, h func(*bus.Msg)) (bus.Subscription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), subscribeWait)
	defer cancel()
	s, err := c.subscribe(ctx, subject, queue, h)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Conn) subscribe(ctx context.Context, subject, queue string, h func(*bus.Msg)) (*Subscription, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	if queue != "" {
		if err := checkSubject(queue); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrNotConnected
	}
	c.nextSID++
	s := &Subscription{c: c, sid: c.nextSID, subject: subject, queue: queue,
		ch: make(chan *bus.Msg, pendingMsgs), done: make(chan struct{})}
	c.subs[s.sid] = s
	c.mu.Unlock()
	go func() {
		defer close(s.done)
		for m := range s.ch {
			h(m)
		}
	}()
	// While disconnected the SUB goes out with the next session's.
	err := c.write(0, s.writeSub)
	if err == nil {
		// Violations of other operations are not this subscription's.
		if err = c.Flush(ctx); errors.Is(err, ErrPermission) && !strings.Contains(err.Error(), "Subscription to \""+subject+"\"") {
			err = nil
		}
	}
	if err != nil && !errors.Is(err, ErrNotConnected) {
		_ = s.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return s, nil
}

// writeSub writes the SUB of s.
func (s *Subscription) writeSub(w *bufio.Writer) error {
	line := "SUB " + s.subject + " "
	if s.queue != "" {
		line += s.queue + " "
	}
	_, err := w.WriteString(line + strconv.FormatUint(s.sid, 10) + "\r\n")
	return err
}

// deliver queues a message for its subscription's handler.
func (c *Conn) deliver(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.subs[f.sid]
	if s == nil {
		return // unsubscribed meanwhile
	}
	select {
	case s.ch <- &bus.Msg{Subject: f.subject, Reply: f.reply, Data: f.data}:
	default:
		c.logger.Warn("nats slow consumer: message dropped", bus.KeySubject, s.subject)
	}
}

// forget removes s from the connection; it reports whether s was there.
func (s *Subscription) forget() bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs[s.sid]
	delete(c.subs, s.sid)
	return ok
}

// unsub tells the server to stop sending s's messages.
func (s *Subscription) unsub() error {
	err := s.c.write(0, func(w *bufio.Writer) error {
		_, err := w.WriteString("UNSUB " + strconv.FormatUint(s.sid, 10) + "\r\n")
		return err
	})
	if errors.Is(err, ErrNotConnected) {
		return nil // the next session does not subscribe it again
	}
	return err
}

// end stops the handler after what is queued.
func (s *Subscription) end() {
	s.endOnce.Do(func() {
		s.c.mu.Lock()
		close(s.ch)
		s.c.mu.Unlock()
	})
}

// Unsubscribe stops the deliveries; messages already queued are dropped.
func (s *Subscription) Unsubscribe() error {
	var err error
	if s.forget() {
		err = s.unsub()
	}
	s.drop()
	s.end()
	return err
}

// drop empties the queue.
func (s *Subscription) drop() {
	for {
		select {
		case <-s.ch:
		default:
			return
		}
	}
}

// Drain stops taking messages and returns once the handler has finished
// those the server sent before (for at most 10 s).
func (s *Subscription) Drain() error {
	s.c.mu.Lock()
	_, ok := s.c.subs[s.sid]
	s.draining = true
	s.c.mu.Unlock()
	if ok {
		if err := s.unsub(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			// After this PONG every message sent before the UNSUB is queued.
			_ = s.c.Flush(ctx)
			cancel()
		}
		s.forget()
	}
	s.end()
	select {
	case <-s.done:
		return nil
	case <-time.After(drainWait):
		return fmt.Errorf("drain %s: the handler did not finish in %s", s.subject, drainWait)
	}
}

// String names the subscription in logs.
func (s *Subscription) String() string { return strings.TrimSpace(s.subject + " " + s.queue) }
