package manager

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"trustedcompute.io/tc/internal/cluster"
)

// startController runs m as the controller does, without an API server:
// the same reconciler, work queue options and published-report forwarding;
// the Node watch is played by the returned channel (enqueueAll). stop waits
// for the controller and the forwarder to end.
func startController(t *testing.T, m *Manager, workers int) (nodes chan<- event.GenericEvent, stop func()) {
	t.Helper()
	opts := m.controllerOptions(ControllerOptions{Workers: workers, SkipNameValidation: true})
	opts.Reconciler = m
	c, err := controller.NewUnmanaged(t.Name(), opts)
	if err != nil {
		t.Fatal(err)
	}
	watch := make(chan event.GenericEvent)
	reports := make(chan event.GenericEvent)
	for _, ch := range []chan event.GenericEvent{watch, reports} {
		if err := c.Watch(source.Channel(ch, &handler.EnqueueRequestForObject{})); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = c.Start(ctx); done <- struct{}{} }()
	go func() { _ = m.forward(ctx, reports); done <- struct{}{} }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range 2 {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the controller did not stop")
			}
		}
	}
	t.Cleanup(stop)
	return watch, stop
}

// enqueueAll plays the initial list of the Node watch: every node once.
func enqueueAll(t *testing.T, e *env, ch chan<- event.GenericEvent) {
	t.Helper()
	list, err := e.nodes.EnabledNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		select {
		case ch <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}}:
		case <-time.After(10 * time.Second):
			t.Fatal("the controller does not take Node events")
		}
	}
}

// TestTwoThousandNodesAreAttestedByABoundedPoolWithSpreadPolls plays the
// controller over 2,000 nodes on the fake verifier: the goroutines stay
// within the worker pool (no goroutine per node, none left behind), every
// node is attested once, and the next polls spread over the whole jitter
// window rather than in lock step.
func TestTwoThousandNodesAreAttestedByABoundedPoolWithSpreadPolls(t *testing.T) {
	attestByABoundedPool(t, 2000, 8)
}

// attestByABoundedPool runs the controller with workers over nodes on the
// fake verifier and checks the pool's goroutines and the polls' spread.
func attestByABoundedPool(t *testing.T, nodes, workers int) {
	t.Helper()
	e := newEnv(t, Config{}, nodes)
	before := runtime.NumGoroutine()
	watch, stop := startController(t, e.m, workers)

	peak := 0
	sample := make(chan struct{})
	go func() {
		defer close(sample)
		for e.v.count("report") < 2*nodes { // before and after each first baseline
			peak = max(peak, runtime.NumGoroutine())
			_ = e.m.StatusCounts() // a metrics scrape meanwhile (go test -race)
			time.Sleep(time.Millisecond)
		}
	}()
	enqueueAll(t, e, watch)
	select {
	case <-sample:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d reports made within 2 minutes", e.v.count("report"), 2*nodes)
	}
	// The controller's own goroutines (queue, workers, sources) and the
	// sampler: a constant, not a number per node.
	if bound := before + workers + 30; peak > bound {
		t.Fatalf("peak goroutines %d with %d nodes, want at most %d (%d before, %d workers)", peak, nodes, bound, before, workers)
	}
	stop()
	time.Sleep(100 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("goroutines %d after the controller stopped, %d before: leak", after, before)
	}

	// Next polls: 60m ± 10%, in 12 one-minute buckets of about 167 each.
	now := e.now()
	var buckets [12]int
	for name, st := range e.m.hosts {
		d := st.next.Sub(now)
		if d < 54*time.Minute || d >= 66*time.Minute {
			t.Fatalf("node %s next poll in %s, want 60m ± 10%%", name, d)
		}
		buckets[(d-54*time.Minute)/time.Minute]++
	}
	for i, b := range buckets {
		if b < nodes/12/2 || b > nodes/12*2 {
			t.Fatalf("minute %d of the jitter window holds %d of %d polls, want about %d: %v", 54+i, b, nodes, nodes/12, buckets)
		}
	}
	t.Logf("%d nodes, %d workers: peak %d goroutines (%d before); polls per minute of the window %v",
		nodes, workers, peak, before, fmt.Sprint(buckets))
}

func TestWorkersAreSizedFromTheFleetAndThePollDuration(t *testing.T) {
	tests := []struct {
		name  string
		nodes int
		poll  time.Duration
		want  int
	}{
		{"a small fleet keeps the default pool", 50, time.Hour, DefaultConcurrency},
		{"ten thousand nodes every hour take twelve workers", 10000, time.Hour, 12},
		{"ten thousand nodes every fifteen minutes take forty-five", 10000, 15 * time.Minute, 45},
		{"a fleet beyond the verifier's pace is capped", 100000, time.Hour, MaxWorkers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Workers(tt.nodes, tt.poll); got != tt.want {
				t.Fatalf("Workers(%d, %s) = %d, want %d", tt.nodes, tt.poll, got, tt.want)
			}
		})
	}
}

func TestTheNodeWatchLetsThroughOnlyWhatTheVerdictDependsOn(t *testing.T) {
	node := func(change func(n *corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Labels: map[string]string{cluster.LabelEnabled: "true"}}}
		n.Status.NodeInfo.SystemUUID = hostID(1)
		change(n)
		return n
	}
	same := func(*corev1.Node) {}
	tests := []struct {
		name     string
		old, new func(n *corev1.Node)
		want     bool
	}{
		{"a kubelet heartbeat is ignored", same, func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		}, false},
		{"a ready label added by hand wakes it", same, func(n *corev1.Node) { n.Labels[cluster.LabelReady] = "true" }, true},
		{"an uncordon wakes it", func(n *corev1.Node) { n.Spec.Unschedulable = true }, same, true},
		{"a removed taint wakes it", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: cluster.TaintUntrusted, Effect: corev1.TaintEffectNoSchedule}}
		}, same, true},
		{"a new host id claim wakes it", same, func(n *corev1.Node) {
			n.Annotations = map[string]string{cluster.AnnotationHostID: hostID(2)}
		}, true},
		{"leaving Trusted Compute wakes it", same, func(n *corev1.Node) { delete(n.Labels, cluster.LabelEnabled) }, true},
		{"a node never enabled and without a verdict is ignored", func(n *corev1.Node) { n.Labels = nil },
			func(n *corev1.Node) { n.Labels = map[string]string{"team": "a"} }, false},
	}
	p := nodePredicate()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Update(event.UpdateEvent{ObjectOld: node(tt.old), ObjectNew: node(tt.new)}); got != tt.want {
				t.Fatalf("update passes = %v, want %v", got, tt.want)
			}
		})
	}
}
