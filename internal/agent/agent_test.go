package agent_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/evidence"
)

func TestNewRefusesANodeNameKubernetesWouldNot(t *testing.T) {
	for _, name := range []string{"Edge-1", "-edge", "edge-", "edge_1", "edge 1", "edge\x1b[2K", strings.Repeat("a", 254)} {
		if _, err := agent.New(agent.Config{HostID: "edge-1", NodeName: name}, nil, nil, slog.New(slog.DiscardHandler)); !errors.Is(err, evidence.ErrNodeName) {
			t.Errorf("node name %q: %v, want %v", name, err, evidence.ErrNodeName)
		}
	}
	for _, name := range []string{"", "edge-1", "ip-10-0-0-1.ec2.internal", strings.Repeat("a", 253)} {
		if _, err := agent.New(agent.Config{HostID: "edge-1", NodeName: name}, nil, nil, slog.New(slog.DiscardHandler)); err != nil {
			t.Errorf("node name %q: %v", name, err)
		}
	}
}
