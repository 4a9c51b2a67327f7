package eim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
	"trustedcompute.io/tc/internal/syncbuf"
	"trustedcompute.io/tc/internal/testca"
)

// waitLimit bounds every wait of these tests; reaching it is a failure.
const waitLimit = 10 * time.Second

// doneUpdater passes updates on to a sink and reports each finished one.
type doneUpdater struct {
	sink Updater
	done chan error
}

func (d *doneUpdater) Update(ctx context.Context, host string, status Status, detail string) error {
	err := d.sink.Update(ctx, host, status, detail)
	d.done <- err
	return err
}

// blockingUpdater never finishes an update before its context ends.
type blockingUpdater struct{ started chan string }

func (b *blockingUpdater) Update(ctx context.Context, host string, _ Status, _ string) error {
	select {
	case b.started <- host:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// runNotifier runs n until the test ends and checks that Run returns nil.
func runNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after its context ended")
		}
	})
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// startSlowEIM runs a notifier whose EIM holds its first update until
// release is closed.
func startSlowEIM(t *testing.T) (n *Notifier, eim *fakeEIM, updates *doneUpdater, release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	eim = &fakeEIM{
		seen: make(chan struct{}, 10),
		respond: func(_ context.Context, n int) error {
			if n == 1 {
				<-release
			}
			return nil
		},
	}
	client := newTestClient(t, serveEIM(t, eim, "tok"), nil)
	updates = &doneUpdater{sink: client, done: make(chan error, 10)}
	n = NewNotifier(updates, discardLogger())
	runNotifier(t, n)
	return n, eim, updates, release
}

func TestNotifierSendsOnlyTheNewestVerdictOfABusyHost(t *testing.T) {
	n, eim, updates, release := startSlowEIM(t)

	mustNotify(t, n, testHost, StatusVerified, "")
	receive(t, eim.seen, "the first update")
	mustNotify(t, n, testHost, StatusFailed, "PCR 0 changed")
	mustNotify(t, n, testHost, StatusFailed, "PCR 7 changed")
	mustNotify(t, n, testHost, StatusFailed, "newest: PCR 7 and PCR 0 changed")
	// Give an idle worker the time to wrongly send the host's newer verdict
	// while its first update is in flight; a correct notifier never does.
	time.Sleep(100 * time.Millisecond)
	if p := n.Pending(); p != 1 {
		t.Fatalf("%d hosts pending while the first update is in flight, want 1 (coalesced and not sent concurrently)", p)
	}
	close(release)
	for i := range 2 {
		if err := receive(t, updates.done, fmt.Sprintf("update %d", i+1)); err != nil {
			t.Fatalf("update %d: %v", i+1, err)
		}
	}
	if p := n.Pending(); p != 0 {
		t.Fatalf("%d hosts still pending, want 0", p)
	}
	got := eim.recorded()
	if len(got) != 2 {
		t.Fatalf("server got %d calls, want 2: %+v", len(got), got)
	}
	assertCall(t, got[0], call{hostGUID: testHost, status: attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED, authorization: []string{"Bearer tok"}})
	assertCall(t, got[1], call{hostGUID: testHost, status: attestmgrv1.AttestationStatus_ATTESTATION_STATUS_FAILED,
		detail: "newest: PCR 7 and PCR 0 changed", authorization: []string{"Bearer tok"}})
}

func TestNotifierDoesNotHoldAHostUpBehindASlowOne(t *testing.T) {
	n, eim, updates, release := startSlowEIM(t)
	defer close(release)

	mustNotify(t, n, testHost, StatusVerified, "")
	receive(t, eim.seen, "the slow update")
	mustNotify(t, n, testHost2, StatusFailed, "quote signature invalid")
	if err := receive(t, updates.done, "the second host's update"); err != nil {
		t.Fatalf("second host: %v", err)
	}
	got := eim.recorded()
	if len(got) != 2 || got[1].hostGUID != testHost2 {
		t.Fatalf("server got %+v, want the second host's update while the first is in flight", got)
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) *Notifier
	}{
		{
			name: "while every update hangs",
			setup: func(t *testing.T) *Notifier {
				u := &blockingUpdater{started: make(chan string, 1)}
				n := NewNotifier(u, discardLogger())
				n.Workers = 2
				runNotifier(t, n)
				mustNotify(t, n, testHost, StatusVerified, "")
				receive(t, u.started, "a hanging update")
				return n
			},
		},
		{
			name: "when Run is not running",
			setup: func(t *testing.T) *Notifier {
				return NewNotifier(&blockingUpdater{started: make(chan string, 1)}, discardLogger())
			},
		},
		{
			name: "when the EIM is down",
			setup: func(t *testing.T) *Notifier {
				cfg := clientConfig(t, closedAddress(t), newTestCA(t), "tok")
				cfg.BackoffBase, cfg.BackoffCap, cfg.MaxAttempts = 50*time.Millisecond, time.Second, 100
				n := NewNotifier(newTestClient(t, cfg, nil), discardLogger())
				runNotifier(t, n)
				return n
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.setup(t)
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				for i := range 5000 {
					host := fmt.Sprintf("00000000-0000-0000-0000-%012d", i%500)
					if err := n.Notify(host, StatusFailed, "detail"); err != nil {
						t.Errorf("Notify: %v", err)
						return
					}
				}
			}()
			receive(t, returned, "5000 Notify calls to return")
			if p := n.Pending(); p < 490 || p > 500 {
				t.Errorf("%d hosts pending, want about 500 (one per host)", p)
			}
		})
	}
}

// closedAddress is a loopback address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestNotifierReportsFailures(t *testing.T) {
	tests := []struct {
		name  string
		addr  func(t *testing.T, ca *testca.CA) string
		check func(t *testing.T, err error)
	}{
		{
			name: "an unknown host is reported as rejected with NotFound",
			addr: func(t *testing.T, ca *testca.CA) string {
				return serve(t, &fakeEIM{respond: func(context.Context, int) error {
					return grpcstatus.Error(codes.NotFound, "no instance")
				}}, tls13(t, ca))
			},
			check: wantRejected(codes.NotFound),
		},
		{
			name: "an EIM that is down is reported as exhausted with Unavailable",
			addr: func(t *testing.T, _ *testca.CA) string { return closedAddress(t) },
			check: func(t *testing.T, err error) {
				t.Helper()
				ex, ok := errors.AsType[*ExhaustedError](err)
				if !ok || grpcstatus.Code(ex.Last) != codes.Unavailable {
					t.Fatalf("error %v (%T), want *ExhaustedError ending Unavailable", err, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			var logs syncbuf.Buffer
			n := NewNotifier(newTestClient(t, clientConfig(t, tt.addr(t, ca), ca, "tok"), nil),
				slogTo(&logs))
			type failure struct {
				host string
				err  error
			}
			failures := make(chan failure, 1)
			n.OnFailure = func(host string, err error) { failures <- failure{host, err} }
			runNotifier(t, n)

			mustNotify(t, n, testHost, StatusFailed, "PCR 7 changed")
			f := receive(t, failures, "OnFailure")
			if f.host != testHost {
				t.Errorf("OnFailure for host %q, want %q", f.host, testHost)
			}
			tt.check(t, f.err)
			if !strings.Contains(logs.String(), "eim status update failed") || !strings.Contains(logs.String(), testHost) {
				t.Errorf("failure not logged with the host; logs:\n%s", logs.String())
			}
		})
	}
}

func TestNotifyChecksTheVerdict(t *testing.T) {
	tests := []struct {
		name, host, detail string
		status             Status
		wantErr            bool
		wantPending        int
	}{
		{name: "a bad host GUID is refused at once", host: "node-1", status: StatusVerified, wantErr: true},
		{name: "an unspecified status is refused at once", host: testHost, status: 0, wantErr: true},
		{name: "a FAILED verdict without detail is refused at once", host: testHost, status: StatusFailed, wantErr: true},
		{name: "an overlong detail is cut, not refused", host: testHost, status: StatusFailed, detail: strings.Repeat("PCR ", 1000), wantPending: 1},
		{name: "a detail with invalid UTF-8 is repaired, not refused", host: testHost, status: StatusFailed, detail: "\xff", wantPending: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNotifier(Noop{}, discardLogger())
			err := n.Notify(tt.host, tt.status, tt.detail)
			if _, ok := errors.AsType[*InvalidUpdateError](err); ok != tt.wantErr {
				t.Errorf("Notify: %v, want an *InvalidUpdateError: %v", err, tt.wantErr)
			}
			if p := n.Pending(); p != tt.wantPending {
				t.Errorf("%d pending, want %d", p, tt.wantPending)
			}
		})
	}
}

func TestNotifierRunStopsWhenItsContextEnds(t *testing.T) {
	u := &blockingUpdater{started: make(chan string, 1)}
	n := NewNotifier(u, discardLogger())
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	mustNotify(t, n, testHost, StatusVerified, "")
	receive(t, u.started, "the update")
	cancel()
	if err := receive(t, errc, "Run to return"); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
}

func TestNotifierSendsEveryHostOnce(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]int{}
	u := updaterFunc(func(_ context.Context, host string, _ Status, _ string) error {
		mu.Lock()
		sent[host]++
		mu.Unlock()
		return nil
	})
	done := &doneUpdater{sink: u, done: make(chan error, 100)}
	n := NewNotifier(done, discardLogger())
	const hosts = 50
	for i := range hosts {
		mustNotify(t, n, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), StatusVerified, "")
	}
	runNotifier(t, n)
	for i := range hosts {
		if err := receive(t, done.done, fmt.Sprintf("update %d", i+1)); err != nil {
			t.Errorf("update %d: %v", i+1, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != hosts {
		t.Errorf("%d hosts sent, want %d", len(sent), hosts)
	}
	for host, times := range sent {
		if times != 1 {
			t.Errorf("host %s sent %d times, want once", host, times)
		}
	}
}

type updaterFunc func(ctx context.Context, host string, status Status, detail string) error

func (f updaterFunc) Update(ctx context.Context, host string, status Status, detail string) error {
	return f(ctx, host, status, detail)
}

func mustNotify(t *testing.T, n *Notifier, host string, status Status, detail string) {
	t.Helper()
	if err := n.Notify(host, status, detail); err != nil {
		t.Fatalf("Notify: %v", err)
	}
}
