//go:build tools

// Package tools pins the Kubernetes control plane the integration tests run
// against, and the kubectl and helm CLIs the install guide's test runs. It is
// a separate module so the project's go.mod stays clean.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
