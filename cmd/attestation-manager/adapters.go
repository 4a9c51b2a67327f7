package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/verifier/report"
)

// hvsVerifier adapts the REST client to manager.Verifier.
type hvsVerifier struct {
	*hvsclient.Client
	log *slog.Logger
}

func (h hvsVerifier) RegisterHost(ctx context.Context, nodeName, hostID string) (string, error) {
	host, err := h.Client.RegisterHost(ctx, nodeName, hostID)
	if err == nil && host.EnrollmentError != "" {
		h.log.Warn("host registered but its AK is not enrolled; attestation fails until it is",
			slog.String("node", nodeName), slog.String("host_id", hostID), slog.String("error", host.EnrollmentError))
	}
	return host.ID, err
}

func (h hvsVerifier) LatestReport(ctx context.Context, hostID string) (*report.Report, error) {
	r, err := h.Client.LatestReport(ctx, hostID)
	if errors.Is(err, hvsclient.ErrNoReport) {
		return nil, nil
	}
	return r, err
}

// kubeNodes adapts cluster.Nodes to manager.Nodes, adding the poll-duration
// annotation, which cluster.NodeInfo does not carry.
type kubeNodes struct {
	*cluster.Nodes
	cs kubernetes.Interface
}

func (k kubeNodes) EnabledNodes(ctx context.Context) ([]manager.Node, error) {
	infos, err := k.Nodes.EnabledNodes(ctx)
	if err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(labels.Set{cluster.LabelEnabled: "true"}).String()
	list, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list enabled nodes: %w", err)
	}
	poll := make(map[string]string, len(list.Items))
	for i := range list.Items {
		poll[list.Items[i].Name] = list.Items[i].Annotations[manager.AnnotationPollDuration]
	}
	out := make([]manager.Node, 0, len(infos))
	for _, n := range infos {
		out = append(out, manager.Node{NodeInfo: n, PollDuration: poll[n.Name]})
	}
	return out, nil
}
