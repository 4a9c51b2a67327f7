package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/verifier/report"
)

// HVSVerifier adapts the verifier's REST client to Verifier.
type HVSVerifier struct {
	*hvsclient.Client
	Log *slog.Logger
}

func (h HVSVerifier) RegisterHost(ctx context.Context, nodeName, hostID string) (string, error) {
	host, err := h.Client.RegisterHost(ctx, nodeName, hostID)
	if errors.Is(err, hvsclient.ErrHostBound) {
		return "", fmt.Errorf("%w: %w", ErrHostClaimed, err)
	}
	if err == nil && host.EnrollmentError != "" {
		h.Log.Warn("host registered but its AK is not enrolled; attestation fails until it is",
			slog.String("node", nodeName), slog.String("host_id", hostID), slog.String("error", host.EnrollmentError))
	}
	return host.ID, err
}

func (h HVSVerifier) LatestReport(ctx context.Context, hostID string) (*report.Report, error) {
	r, err := h.Client.LatestReport(ctx, hostID)
	if errors.Is(err, hvsclient.ErrNoReport) {
		return nil, nil
	}
	return r, err
}

// KubeNodes adapts cluster.Nodes to Nodes, adding the poll-duration
// annotation, which cluster.NodeInfo does not carry, and the onboard
// requests, which live in a ConfigMap of the manager's namespace and never
// on the Node.
type KubeNodes struct {
	*cluster.Nodes
	Clientset kubernetes.Interface
	// Requests are the onboard requests; nil: none are ever read.
	Requests *cluster.OnboardRequests
	Log      *slog.Logger
}

func (k KubeNodes) EnabledNodes(ctx context.Context) ([]Node, error) {
	if cleared, err := k.ClearDisabled(ctx); err != nil && k.Log != nil {
		k.Log.Warn("clearing verdict labels of nodes not enabled failed", slog.Any(keyErr, err))
	} else if len(cleared) > 0 && k.Log != nil {
		k.Log.Warn("nodes not enabled carried verdict labels: removed", slog.Any("nodes", cleared))
	}
	infos, err := k.Nodes.EnabledNodes(ctx)
	if err != nil {
		return nil, err
	}
	requests := map[string]string{}
	if k.Requests != nil {
		if requests, err = k.Requests.List(ctx); err != nil {
			return nil, err
		}
	}
	sel := labels.SelectorFromSet(labels.Set{cluster.LabelEnabled: "true"}).String()
	list, err := k.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list enabled nodes: %w", err)
	}
	poll := make(map[string]string, len(list.Items))
	for i := range list.Items {
		poll[list.Items[i].Name] = list.Items[i].Annotations[AnnotationPollDuration]
	}
	out := make([]Node, 0, len(infos))
	for _, n := range infos {
		n.OnboardRequested = requests[n.Name] != ""
		out = append(out, Node{NodeInfo: n, PollDuration: poll[n.Name]})
	}
	return out, nil
}

// Node reads one Node from the API server (never a cache: what the manager
// does next depends on what the Node says now) and whether an operator asked
// for its re-onboarding. A Node not enabled loses any verdict labels it
// still carries (ClearDisabled) and is cluster.ErrNotEnabled.
func (k KubeNodes) Node(ctx context.Context, name string) (Node, error) {
	node, err := k.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Node{}, fmt.Errorf("get node %s: %w", name, cluster.ErrNodeNotFound)
	}
	if err != nil {
		return Node{}, fmt.Errorf("get node %s: %w", name, err)
	}
	info := cluster.InfoOf(node)
	if !info.Enabled {
		if node.Labels[cluster.LabelStatus] != "" || node.Labels[cluster.LabelReady] != "" {
			if _, err := k.ClearDisabled(ctx); err != nil {
				return Node{}, err
			}
		}
		return Node{}, fmt.Errorf("node %s: %w", name, cluster.ErrNotEnabled)
	}
	if k.Requests != nil {
		requests, err := k.Requests.List(ctx)
		if err != nil {
			return Node{}, err
		}
		info.OnboardRequested = requests[name] != ""
	}
	return Node{NodeInfo: info, PollDuration: node.Annotations[AnnotationPollDuration]}, nil
}

// Onboarded finishes the re-onboarding on the Node, then clears the request.
func (k KubeNodes) Onboarded(ctx context.Context, node string, ready bool, reportID string) error {
	if err := k.Nodes.Onboarded(ctx, node, ready, reportID); err != nil || k.Requests == nil {
		return err
	}
	return k.Requests.Done(ctx, node)
}
