package helm_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// TestTheUmbrellasFullnameOverrideNamesEveryObjectURLAndNote installs with
// global.fullnameOverride (the umbrella's name override) and wants every
// object, every default URL between the parts and the NOTES to use it, and
// the API server to take the result.
func TestTheUmbrellasFullnameOverrideNamesEveryObjectURLAndNote(t *testing.T) {
	vals := setValues(t, values(t, "required.yaml", "trusted-workload.yaml"),
		"global.fullnameOverride=edge", "verifier.dashboard.enabled=true")
	rel, err := install(umbrellaChart, "tc", "tc-prefixed", vals)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	for _, w := range []string{"https://edge-verifier.tc-prefixed.svc:8443", "https://edge-verifier.tc-prefixed.svc:9443",
		"tls://edge-verifier-nats.tc-prefixed.svc:4222", "statefulset/edge-verifier ", "deployment/edge-attestation-manager"} {
		if !strings.Contains(rel.Info.Notes, w) {
			t.Errorf("NOTES lack %q:\n%s", w, rel.Info.Notes)
		}
	}
	if strings.Contains(rel.Info.Notes, "tc-verifier") || strings.Contains(rel.Info.Notes, "tc-attestation-manager") {
		t.Errorf("NOTES name objects by the release name:\n%s", rel.Info.Notes)
	}

	objs := mustRender(t, umbrellaChart, "tc", "tc-prefixed", vals)
	for _, o := range objs {
		if !strings.HasPrefix(o.GetName(), "edge-") && o.GetKind() != "RuntimeClass" {
			t.Errorf("%s %s is not named with the prefix edge-", o.GetKind(), o.GetName())
		}
	}
	for _, want := range [][2]string{{"StatefulSet", "edge-verifier"}, {"Service", "edge-verifier"}, {"Service", "edge-verifier-nats"},
		{"DaemonSet", "edge-trust-agent"}, {"Deployment", "edge-attestation-manager"}, {"ConfigMap", "edge-cms-root"},
		{"ConfigMap", "edge-trusted-workload-ima-policy"}, {"DaemonSet", "edge-kata-deploy"}} {
		find(t, objs, want[0], want[1])
	}
	var agent appsv1.DaemonSet
	fromUnstructured(t, find(t, objs, "DaemonSet", "edge-trust-agent"), &agent)
	wantEnv(t, agent.Spec.Template.Spec.Containers[0], "TC_NATS_URL", "tls://edge-verifier-nats.tc-prefixed.svc:4222")
	if v := volume(agent.Spec.Template.Spec, "cms-root"); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "edge-cms-root" {
		t.Errorf("agent's cms-root volume %+v, want ConfigMap edge-cms-root", v)
	}
	cfg := managerConfigOf(t, objs, "edge-attestation-manager")
	for _, part := range []struct{ key, want string }{
		{"verifier", "https://edge-verifier.tc-prefixed.svc:8443"},
		{"nats", "tls://edge-verifier-nats.tc-prefixed.svc:4222"},
	} {
		if m, _ := cfg[part.key].(map[string]any); m == nil || m["url"] != part.want {
			t.Errorf("manager config %s = %v, want url %s", part.key, cfg[part.key], part.want)
		}
	}

	cs := clustertest.Clientset(t)
	clustertest.Namespace(t, cs, "tc-prefixed")
	apply(t, cs, "tc-prefixed", objs)
}
