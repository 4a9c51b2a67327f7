package helm_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestVerifierReplicasJoinTheirEmbeddedNATSServersByRoutes renders three
// verifier replicas on PostgreSQL without an external NATS and applies them
// to the real API server: every pod names its NATS server after itself and
// routes to all three pods through the headless Service, which carries the
// route port; a PodDisruptionBudget lets one replica go at a time.
func TestVerifierReplicasJoinTheirEmbeddedNATSServersByRoutes(t *testing.T) {
	const ns = "tc-verifier-replicas"
	a := applyRelease(t, "rep", ns, "replicated-verifier.yaml")
	cs := a.cs

	sts, c := a.verifier(t)
	if r := sts.Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("verifier replicas = %v, want 3", r)
	}
	checkEnvKnown(t, c)
	wantEnv(t, c, "TC_NATS_CLUSTER_NAME", "trusted-compute")
	wantEnv(t, c, "TC_NATS_CLUSTER_LISTEN", ":6222")
	wantEnv(t, c, "TC_NATS_CLUSTER_NO_ADVERTISE", "true")
	wantEnv(t, c, "TC_HVS_INTERVAL", "30m")
	wantEnv(t, c, "TC_HVS_REPORT_RETENTION", "720h")
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://rep-verifier-%d.rep-verifier-headless.%s.svc:6222", i, ns))
	}
	wantEnv(t, c, "TC_NATS_CLUSTER_ROUTES", strings.Join(routes, ","))
	noEnv(t, c, "TC_NATS_URL")
	var name *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "TC_NATS_SERVER_NAME" {
			name = &c.Env[i]
		}
	}
	if name == nil || name.ValueFrom == nil || name.ValueFrom.FieldRef == nil || name.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("TC_NATS_SERVER_NAME = %+v, want the pod's name (unique in the cluster)", name)
	}
	headless := mustGet(t, "Service", cs.CoreV1().Services(ns).Get, "rep-verifier-headless")
	found := false
	for _, p := range headless.Spec.Ports {
		found = found || (p.Name == "nats-cluster" && p.Port == 6222)
	}
	if !found || sts.Spec.ServiceName != "rep-verifier-headless" {
		t.Errorf("headless Service ports %v (StatefulSet serviceName %s), want nats-cluster 6222 on rep-verifier-headless", headless.Spec.Ports, sts.Spec.ServiceName)
	}
	pdb := mustGet(t, "PodDisruptionBudget", cs.PolicyV1().PodDisruptionBudgets(ns).Get, "rep-verifier")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("verifier PodDisruptionBudget maxUnavailable = %v, want 1", pdb.Spec.MaxUnavailable)
	}
}

// TestALoneVerifierHasNoClusterAndNoDisruptionBudget keeps the default
// install as it was: one replica, no routes, no PodDisruptionBudget.
func TestALoneVerifierHasNoClusterAndNoDisruptionBudget(t *testing.T) {
	objs := mustRender(t, umbrellaChart, "one", "one", values(t, "required.yaml"))
	for _, o := range objs {
		if o.GetKind() == "PodDisruptionBudget" && strings.Contains(o.GetName(), "verifier") {
			t.Errorf("a lone verifier has a PodDisruptionBudget %s", o.GetName())
		}
		if o.GetKind() == "StatefulSet" && strings.Contains(mustYAML(o), "TC_NATS_CLUSTER") {
			t.Error("a lone verifier's embedded NATS server is given a cluster")
		}
	}
}
