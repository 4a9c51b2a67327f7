package fleet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"trustedcompute.io/tc/internal/cluster"
)

// KubeConfig reads a kubeconfig file.
func KubeConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = "trustedcompute-sandbox"
	return cfg, nil
}

// kubernetesAPI sets up the API the manager acts on: the cluster of
// Options.KubeConfig, or the local one.
func (f *Fleet) kubernetesAPI() error {
	if f.opts.KubeConfig != nil {
		cs, err := kubernetes.NewForConfig(f.opts.KubeConfig)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		f.kube = cs
	} else {
		api := newLocalAPI()
		f.api, f.kube = &api, api
	}
	f.adapter = cluster.New(f.kube, cluster.Options{Logger: f.log.With(keyPart, "kubernetes")})
	f.requests = cluster.NewOnboardRequests(f.kube, f.opts.Namespace, "")
	return nil
}

// ensureNode makes sure the API has a Node object for a sandbox node,
// labelled for Trusted Compute with the node's host id, and on a real
// cluster the namespace of the onboard requests. A real cluster's Nodes are
// meant for development clusters: the sandbox's nodes are processes on this
// machine.
func (f *Fleet) ensureNode(ctx context.Context, n *nodeProc) error {
	_, err := f.kube.CoreV1().Nodes().Create(ctx, sandboxNode(n.name, n.name, n.uuid), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", n.name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.opts.Namespace}}
	_, err = f.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", f.opts.Namespace, err)
	}
	return nil
}
