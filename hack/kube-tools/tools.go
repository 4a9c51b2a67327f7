//go:build tools

// Package tools pins the Kubernetes control plane the integration tests run
// against. It is a separate module so the project's go.mod stays clean.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
