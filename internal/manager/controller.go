package manager

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"trustedcompute.io/tc/internal/cluster"
)

// ControllerName names the reconciler in controller-runtime's logs and
// metrics.
const ControllerName = "trustedcompute-attestation"

// DefaultLeaseName is the Lease that elects the one replica that acts.
const DefaultLeaseName = "trustedcompute-attestation-manager"

// Leader election defaults (client-go's: a new leader within 15 s of a
// crash, at once after a clean shutdown, which releases the Lease).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Worker pool sizing (Workers).
const (
	// ReportBudget is what one attestation may take end to end (the
	// verifier's report, the Node patches, the EIM queueing), generously.
	ReportBudget = time.Second
	// workerHeadroom keeps the pool at a quarter of its capacity in steady
	// state, so that a burst (a site reboots) drains within minutes.
	workerHeadroom = 4
	// MaxWorkers caps the pool: past it, the verifier is the bottleneck.
	MaxWorkers = 64
)

// Workers sizes the worker pool for a fleet of nodes attested every poll:
// enough reconciles at once for nodes/poll attestations a second, each
// taking up to ReportBudget, with workerHeadroom to spare; never fewer than
// DefaultConcurrency nor more than MaxWorkers. 10,000 nodes at 60 minutes
// take 12 workers.
func Workers(nodes int, poll time.Duration) int {
	if poll <= 0 {
		poll = DefaultPollDuration
	}
	need := math.Ceil(float64(nodes) * workerHeadroom * ReportBudget.Seconds() / poll.Seconds())
	return int(min(max(need, DefaultConcurrency), MaxWorkers))
}

// LeaderElection says how the replicas elect the one that acts.
type LeaderElection struct {
	// Enabled turns leader election on; without it every replica acts,
	// which is safe only with one replica.
	Enabled bool
	// Namespace holds the Lease (the manager's own namespace).
	Namespace string
	// LeaseName is the Lease's name (DefaultLeaseName).
	LeaseName string
	// HoldLeaseOnStop keeps the Lease when the manager stops, as a crashed
	// leader does (tests play a crash with it). By default a leader that
	// stops releases the Lease, and another replica takes over at once.
	HoldLeaseOnStop bool
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's
	// (defaults DefaultLeaseDuration, DefaultRenewDeadline,
	// DefaultRetryPeriod): a crashed leader is replaced within
	// LeaseDuration + RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// WithDefaults fills the zero fields.
func (l LeaderElection) WithDefaults() LeaderElection {
	l.LeaseName = cmp.Or(l.LeaseName, DefaultLeaseName)
	l.Namespace = cmp.Or(l.Namespace, cluster.DefaultNamespace)
	l.LeaseDuration = cmp.Or(l.LeaseDuration, DefaultLeaseDuration)
	l.RenewDeadline = cmp.Or(l.RenewDeadline, DefaultRenewDeadline)
	l.RetryPeriod = cmp.Or(l.RetryPeriod, DefaultRetryPeriod)
	return l
}

// Validate reports every problem at once.
func (l LeaderElection) Validate() error {
	var errs []error
	if l.RetryPeriod <= 0 || l.RenewDeadline <= l.RetryPeriod || l.LeaseDuration <= l.RenewDeadline {
		errs = append(errs, errors.New("leader election: want leaseDuration > renewDeadline > retryPeriod > 0"))
	}
	if l.LeaseName == "" || l.Namespace == "" {
		errs = append(errs, errors.New("leader election: the lease needs a name and a namespace"))
	}
	return errors.Join(errs...)
}

// NewControllerManager returns the controller-runtime manager the attestation
// manager runs in: Lease leader election as le says, a cache of Nodes
// (without managed fields and images) and of the onboard requests'
// ConfigMap in namespace only, and none of controller-runtime's own HTTP
// servers (ServeOps serves health and metrics).
func NewControllerManager(rc *rest.Config, le LeaderElection, namespace string, logger *slog.Logger) (ctrl.Manager, error) {
	le = le.WithDefaults()
	if le.Enabled {
		if err := le.Validate(); err != nil {
			return nil, err
		}
	}
	namespace = cmp.Or(namespace, cluster.DefaultNamespace)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return ctrl.NewManager(rc, ctrl.Options{
		Logger:                        logr.FromSlogHandler(logger.Handler()),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                le.Enabled,
		LeaderElectionID:              le.LeaseName,
		LeaderElectionNamespace:       le.Namespace,
		LeaderElectionReleaseOnCancel: !le.HoldLeaseOnStop,
		LeaseDuration:                 &le.LeaseDuration,
		RenewDeadline:                 &le.RenewDeadline,
		RetryPeriod:                   &le.RetryPeriod,
		Cache: cache.Options{
			DefaultTransform: stripNode,
			ByObject: map[client.Object]cache.ByObject{
				&corev1.ConfigMap{}: {
					Namespaces: map[string]cache.Config{namespace: {}},
					Field:      fields.OneTermEqualSelector("metadata.name", cluster.OnboardConfigMap),
				},
			},
		},
	})
}

// stripNode drops what the manager never reads from cached objects: managed
// fields, and a Node's image list (the bulk of a Node at 10,000 nodes).
func stripNode(in any) (any, error) {
	if o, ok := in.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	if n, ok := in.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return in, nil
}

// ControllerOptions configure Controller.
type ControllerOptions struct {
	// Workers bounds the nodes reconciled at once (Config.Concurrency when
	// 0; see Workers to size it from the fleet).
	Workers int
	// Namespace holds the onboard requests' ConfigMap; a change of it
	// reconciles the nodes it names. Empty: cluster.DefaultNamespace.
	Namespace string
	// SkipNameValidation lets one process run several controllers of the
	// same name (tests of leader election).
	SkipNameValidation bool
}

// Controller registers m with mgr as the reconciler of the Trusted Compute
// nodes. A node is reconciled:
//
//   - when its Node changes in a way the verdict depends on (labels,
//     annotations, cordon, taints, system UUID), so drift is reverted and a
//     new node attested at once; Nodes that are not enabled are watched
//     only while they still carry a verdict label, which is then removed;
//   - when the verifier publishes a report of its host (ReportPublished,
//     through a channel source);
//   - when the onboard requests' ConfigMap names it;
//   - at its jittered poll time (RequeueAfter), or its retry time after a
//     verifier failure.
//
// A failure to read or patch the Node is retried by the work queue's rate
// limiter (per node, exponential from one second up to RetryMin, at least a
// minute). At most Workers nodes are reconciled at once and one
// node never twice at once. The controller, like everything that acts, runs
// only in the elected leader.
func (m *Manager) Controller(mgr ctrl.Manager, opts ControllerOptions) error {
	opts.Namespace = cmp.Or(opts.Namespace, cluster.DefaultNamespace)
	events := make(chan event.GenericEvent)
	if err := mgr.Add(ctrlmanager.RunnableFunc(func(ctx context.Context) error {
		return m.forward(ctx, events)
	})); err != nil {
		return err
	}
	onboard := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok || cm.Namespace != opts.Namespace || cm.Name != cluster.OnboardConfigMap {
			return nil
		}
		out := make([]reconcile.Request, 0, len(cm.Data))
		for _, name := range slices.Sorted(maps.Keys(cm.Data)) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&corev1.Node{}, builder.WithPredicates(nodePredicate())).
		Watches(&corev1.ConfigMap{}, onboard).
		WatchesRawSource(source.Channel(events, &handler.EnqueueRequestForObject{})).
		WithOptions(m.controllerOptions(opts)).
		Complete(m)
}

// controllerOptions are the work queue's: bounded workers, rate-limited
// retries.
func (m *Manager) controllerOptions(opts ControllerOptions) controller.Options {
	workers := opts.Workers
	if workers <= 0 {
		workers = m.cfg.Concurrency
	}
	skip := opts.SkipNameValidation
	return controller.Options{
		MaxConcurrentReconciles: workers,
		SkipNameValidation:      &skip,
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, max(m.cfg.RetryMin, time.Minute)),
		// The verifier's own timeouts bound a report; this bounds a
		// reconcile stuck on the API server.
		ReconciliationTimeout: 5 * time.Minute,
	}
}

// Reconcile is ReconcileNode as a controller-runtime reconciler: the node is
// requeued after its jittered poll duration (or retry), and a failure is
// retried rate-limited.
func (m *Manager) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	after, err := m.ReconcileNode(ctx, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// forward hands the nodes of published reports to the controller until ctx
// ends. Many reports of one node before it is handed over are one event.
func (m *Manager) forward(ctx context.Context, events chan<- event.GenericEvent) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		}
		for _, name := range m.takeWoken() {
			ev := event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}}
			select {
			case events <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// nodePredicate lets through the Node events the verdict depends on.
func nodePredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return watched(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return watched(e.Object) },
		GenericFunc: func(event.GenericEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return (watched(e.ObjectOld) || watched(e.ObjectNew)) && verdictInputsChanged(e.ObjectOld, e.ObjectNew)
		},
	}
}

// watched: an enabled Node, or one that still carries a verdict label.
func watched(o client.Object) bool {
	l := o.GetLabels()
	return l[cluster.LabelEnabled] == "true" || l[cluster.LabelStatus] != "" || l[cluster.LabelReady] != ""
}

// verdictInputsChanged ignores the kubelet's status heartbeats: only what
// the manager reads or writes wakes it.
func verdictInputsChanged(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	return !maps.Equal(o.Labels, n.Labels) || !maps.Equal(o.Annotations, n.Annotations) ||
		o.Spec.Unschedulable != n.Spec.Unschedulable || !slices.EqualFunc(o.Spec.Taints, n.Spec.Taints, sameTaint) ||
		o.Status.NodeInfo.SystemUUID != n.Status.NodeInfo.SystemUUID
}

func sameTaint(a, b corev1.Taint) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
}
