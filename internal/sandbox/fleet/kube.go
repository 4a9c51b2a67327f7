package fleet

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"trustedcompute.io/tc/internal/cluster"
)

// KubeClient builds a Kubernetes client from a kubeconfig file.
func KubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// ensureKubeNode makes sure the cluster has a Node object for a sandbox node,
// labelled for Trusted Compute with the node's host id. It is meant for
// development clusters: the sandbox's nodes are processes on this machine.
func ensureKubeNode(ctx context.Context, cs kubernetes.Interface, name, hostID string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{cluster.LabelEnabled: "true"},
		Annotations: map[string]string{cluster.AnnotationHostID: hostID},
	}}
	_, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// teeNodes does every action to the real cluster's Node objects, then
// records it in the local registry (the live view and the scenarios read
// it). The cluster goes first, so that whoever sees an action in the registry
// finds it in the cluster too.
type teeNodes struct {
	*Registry
	kube *cluster.Nodes
}

func (t teeNodes) MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error {
	kerr := t.kube.MarkVerified(ctx, node, ready, reportID, message)
	return errors.Join(kerr, t.Registry.MarkVerified(ctx, node, ready, reportID, message))
}

func (t teeNodes) MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (bool, error) {
	_, kerr := t.kube.MarkFailed(ctx, node, status, parts, reportID, message)
	changed, err := t.Registry.MarkFailed(ctx, node, status, parts, reportID, message)
	return changed, errors.Join(kerr, err)
}

func (t teeNodes) Onboarded(ctx context.Context, node string, ready bool, reportID string) error {
	kerr := t.kube.Onboarded(ctx, node, ready, reportID)
	return errors.Join(kerr, t.Registry.Onboarded(ctx, node, ready, reportID))
}

func (t teeNodes) Pending(ctx context.Context, node, reason, message string) error {
	kerr := t.kube.Pending(ctx, node, reason, message)
	return errors.Join(kerr, t.Registry.Pending(ctx, node, reason, message))
}
