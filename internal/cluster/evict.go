package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// annotationMirror marks a static pod's mirror in the API server; such a
// pod cannot be evicted (the kubelet owns it).
const annotationMirror = "kubernetes.io/config.mirror"

// EvictionBlockedError lists the pods whose eviction the API server refused
// with 429 Too Many Requests, almost always because a PodDisruptionBudget
// allows no disruption now. The pods stay; the caller may retry later.
type EvictionBlockedError struct {
	Node string
	// Pods are "namespace/name".
	Pods []string
}

func (e *EvictionBlockedError) Error() string {
	return fmt.Sprintf("node %s: eviction of %d pod(s) refused, disruption budget: %s",
		e.Node, len(e.Pods), strings.Join(e.Pods, ", "))
}

// Evict asks the Eviction API (policy/v1) to evict the pods running on node
// in the given namespaces, and only there: no namespaces, no evictions.
// DaemonSet pods and mirror pods are skipped, as are pods already being
// deleted. Evictions honour PodDisruptionBudgets: a refused one is not
// forced but reported in an *EvictionBlockedError (joined with any other
// errors), and the other pods are still evicted. evicted counts the
// evictions the API server accepted.
func (n *Nodes) Evict(ctx context.Context, node string, namespaces []string) (evicted int, err error) {
	if _, err := n.getEnabled(ctx, node); err != nil {
		return 0, fmt.Errorf("evict pods: %w", err)
	}
	namespaces = slices.Compact(slices.Sorted(slices.Values(namespaces)))
	var (
		blocked []string
		errs    []error
	)
	for _, ns := range namespaces {
		if ns == "" {
			continue
		}
		pods, err := n.podsOn(ctx, ns, node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range pods {
			if !evictable(&p) {
				continue
			}
			id := p.Namespace + "/" + p.Name
			uid := p.UID
			err := n.cs.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
				DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
			})
			switch {
			case err == nil:
				evicted++
				n.log.InfoContext(ctx, "pod evicted", keyNode, node, keyPod, id)
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
				// Gone, or replaced by a new pod of the same name.
			case apierrors.IsTooManyRequests(err):
				blocked = append(blocked, id)
			default:
				errs = append(errs, fmt.Errorf("evict pod %s: %w", id, err))
			}
		}
	}
	if len(blocked) > 0 {
		errs = append([]error{&EvictionBlockedError{Node: node, Pods: blocked}}, errs...)
		n.log.WarnContext(ctx, "pod eviction refused", keyNode, node, keyBlocked, blocked, keyEvicted, evicted)
	}
	return evicted, errors.Join(errs...)
}

func (n *Nodes) podsOn(ctx context.Context, ns, node string) ([]corev1.Pod, error) {
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(), Limit: 500}
	var out []corev1.Pod
	for {
		list, err := n.cs.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods of node %s in %s: %w", node, ns, err)
		}
		out = append(out, list.Items...)
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

func evictable(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	if _, ok := p.Annotations[annotationMirror]; ok {
		return false
	}
	if c := metav1.GetControllerOf(p); c != nil && c.Kind == "DaemonSet" {
		return false
	}
	return true
}
