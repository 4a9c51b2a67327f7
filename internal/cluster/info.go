package cluster

import corev1 "k8s.io/api/core/v1"

// InfoOf describes node as Get does, from a Node the caller already read
// (a watch event, or its own Get).
func InfoOf(node *corev1.Node) NodeInfo { return infoOf(node) }
