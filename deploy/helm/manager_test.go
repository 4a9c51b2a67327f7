package helm_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTheManagerRunsTwoReplicasThatElectALeader renders the default chart and
// applies it: two manager replicas, leader election on in their config, a
// PodDisruptionBudget, and a Role that lets them hold a Lease and watch the
// onboard requests in their own namespace only.
func TestTheManagerRunsTwoReplicasThatElectALeader(t *testing.T) {
	const ns = "tc-manager-ha"
	a := applyRelease(t, "ha", ns)
	cs := a.cs

	dep := a.deployment(t, "attestation-manager")
	if r := dep.Spec.Replicas; r == nil || *r != 2 {
		t.Errorf("manager replicas = %v, want 2", r)
	}
	if dep.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("manager strategy %s, want RollingUpdate (the Lease keeps two from acting)", dep.Spec.Strategy.Type)
	}
	cfg := a.managerConfig(t)
	checkConfigKeys(t, cfg)
	le, _ := cfg["leaderElection"].(map[string]any)
	if le["enabled"] != true || le["leaseDuration"] != "15s" {
		t.Errorf("manager leaderElection = %v, want enabled with a 15s lease", le)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(context.Background(), "ha-attestation-manager", metav1.GetOptions{}); err != nil {
		t.Errorf("manager PodDisruptionBudget: %v", err)
	}
	role := mustGet(t, "Role", cs.RbacV1().Roles(ns).Get, "ha-attestation-manager")
	want := map[string]bool{
		`"".configmaps:get`: true, `"".configmaps:patch`: true, `"".configmaps:list`: true, `"".configmaps:watch`: true,
		`"coordination.k8s.io".leases:get`: true, `"coordination.k8s.io".leases:create`: true, `"coordination.k8s.io".leases:update`: true,
	}
	if got := ruleSet(role.Rules); !maps.Equal(got, want) {
		t.Errorf("manager Role grants %v, want exactly %v", keys(got), keys(want))
	}
}

func TestTwoManagersWithoutLeaderElectionAreRefused(t *testing.T) {
	vals := values(t, "required.yaml")
	set(vals, "attestationManager.leaderElection.enabled", false)
	_, err := render(umbrellaChart, "tc", "tc", vals)
	if want := "attestationManager.replicas > 1 needs attestationManager.leaderElection.enabled"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("render error = %v, want %q", err, want)
	}
	set(vals, "attestationManager.replicas", 1)
	if _, err := render(umbrellaChart, "tc", "tc", vals); err != nil {
		t.Fatalf("one replica without leader election: %v", err)
	}
}
