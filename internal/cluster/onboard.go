package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// OnboardConfigMap is the ConfigMap, in the attestation manager's namespace,
// that holds the re-onboarding requests: one key per Node name, the value
// the time of the request (RFC 3339).
const OnboardConfigMap = "trustedcompute-onboard-requests"

// DefaultNamespace is the namespace the charts are installed in by the
// install guide, and where tcctl looks for OnboardConfigMap by default.
const DefaultNamespace = "trusted-compute"

// OnboardRequests are the operators' re-onboarding requests. They live in a
// ConfigMap of the manager's namespace and not on the Node: a node's own
// identity may patch its Node object, but the Node authorizer grants it no
// write on any ConfigMap, so a compromised node cannot have its tampered
// state re-baselined and its cordon lifted. Who may ask is whoever RBAC lets
// create and patch that ConfigMap (the chart's onboarder Role).
type OnboardRequests struct {
	cs        kubernetes.Interface
	namespace string
	manager   string
}

// NewOnboardRequests returns the requests kept in namespace; fieldManager
// names the writer in the ConfigMap's managed fields.
func NewOnboardRequests(cs kubernetes.Interface, namespace, fieldManager string) *OnboardRequests {
	namespace = cmp.Or(namespace, DefaultNamespace)
	fieldManager = cmp.Or(fieldManager, DefaultName)
	return &OnboardRequests{cs: cs, namespace: namespace, manager: fieldManager}
}

// List returns the requests by Node name. No ConfigMap is no request.
func (r *OnboardRequests) List(ctx context.Context) (map[string]string, error) {
	cm, err := r.cs.CoreV1().ConfigMaps(r.namespace).Get(ctx, OnboardConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read onboard requests %s/%s: %w", r.namespace, OnboardConfigMap, err)
	}
	out := make(map[string]string, len(cm.Data))
	for node, v := range cm.Data {
		if v != "" {
			out[node] = v
		}
	}
	return out, nil
}

// Request asks for the re-onboarding of node, at time at.
func (r *OnboardRequests) Request(ctx context.Context, node string, at time.Time) error {
	if node == "" {
		return fmt.Errorf("request onboarding: %w: empty name", ErrNodeNotFound)
	}
	v := at.UTC().Format(time.RFC3339)
	body, err := json.Marshal(map[string]any{"data": map[string]string{node: v}})
	if err != nil {
		return fmt.Errorf("request onboarding of node %s: %w", node, err)
	}
	cms := r.cs.CoreV1().ConfigMaps(r.namespace)
	_, err = cms.Patch(ctx, OnboardConfigMap, types.MergePatchType, body, metav1.PatchOptions{FieldManager: r.manager})
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: OnboardConfigMap, Namespace: r.namespace},
			Data:       map[string]string{node: v},
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: r.manager})
		if apierrors.IsAlreadyExists(err) { // created meanwhile
			_, err = cms.Patch(ctx, OnboardConfigMap, types.MergePatchType, body, metav1.PatchOptions{FieldManager: r.manager})
		}
	}
	if err != nil {
		return fmt.Errorf("request onboarding of node %s: %w", node, err)
	}
	return nil
}

// Done removes the request of node, if any.
func (r *OnboardRequests) Done(ctx context.Context, node string) error {
	body, err := json.Marshal(map[string]any{"data": map[string]any{node: nil}})
	if err != nil {
		return fmt.Errorf("clear onboard request of node %s: %w", node, err)
	}
	_, err = r.cs.CoreV1().ConfigMaps(r.namespace).Patch(ctx, OnboardConfigMap, types.MergePatchType, body,
		metav1.PatchOptions{FieldManager: r.manager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("clear onboard request of node %s: %w", node, err)
	}
	return nil
}
