package fleet

import (
	"context"
	"errors"
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

// kubeQPS is the request rate the sandbox's Kubernetes clients may use.
const kubeQPS = 200

// kubernetesAPI sets up the API the manager acts on: the cluster of
// Options.KubeConfig, or the local one.
func (f *Fleet) kubernetesAPI() error {
	if f.opts.KubeConfig != nil {
		// client-go's default of 5 requests a second would take minutes
		// to create a large fleet's Nodes (the manager shares the config).
		if f.opts.KubeConfig.QPS == 0 {
			f.opts.KubeConfig.QPS, f.opts.KubeConfig.Burst = kubeQPS, 2*kubeQPS
		}
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

// createNodes makes sure the API has a Node object for every sandbox node,
// labelled for Trusted Compute with the node's host id, and the namespace
// of the onboard requests. A real cluster's Nodes are meant for
// development clusters: the sandbox's nodes run on this machine.
func (f *Fleet) createNodes(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.opts.Namespace}}
	_, err := f.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", f.opts.Namespace, err)
	}
	return inParallel(ctx, len(f.nodes), f.opts.Parallel, func(ctx context.Context, i int) error {
		name, uuid := f.nodes[i].id()
		_, err := f.kube.CoreV1().Nodes().Create(ctx, sandboxNode(name, name, uuid), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
		return nil
	})
}

// The --kube choices.
const (
	kubeAuto      = "auto"
	kubeAPIServer = "apiserver"
	kubeMemory    = "memory"
)

// chooseKube sets the Kubernetes API of opts from --kube, --kube-assets
// and --kubeconfig (a real cluster, which wins).
func chooseKube(opts *Options, kube, kubeconfig string) error {
	if kubeconfig != "" {
		rc, err := KubeConfig(kubeconfig)
		if err != nil {
			return err
		}
		opts.KubeConfig, opts.KubeAssets = rc, ""
		return nil
	}
	switch kube {
	case kubeMemory:
		opts.KubeAssets = ""
	case kubeAPIServer:
		if opts.KubeAssets == "" {
			return errors.New("--kube apiserver: no --kube-assets (hack/kube-tools.sh builds kube-apiserver and etcd and prints their directory)")
		}
		if err := HasKubeBinaries(opts.KubeAssets); err != nil {
			return fmt.Errorf("--kube apiserver: %w", err)
		}
	case kubeAuto:
		if opts.KubeAssets != "" && HasKubeBinaries(opts.KubeAssets) != nil {
			opts.KubeAssets = ""
		}
	default:
		return fmt.Errorf("--kube %q: want %s, %s or %s", kube, kubeAuto, kubeAPIServer, kubeMemory)
	}
	return nil
}
