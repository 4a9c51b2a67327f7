package helm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

const (
	umbrellaChart = "trusted-compute"
	exampleChart  = "examples/confidential-app"
	fieldManager  = "trusted-compute-helm-test"
)

// TestChartsApplyToAPIServer renders the umbrella chart with the values an
// installation must set plus one option at a time, and applies every object
// to a real kube-apiserver, dry run first.
func TestChartsApplyToAPIServer(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		// namespaces the chart puts objects in besides its own (they
		// must exist before the install).
		namespaces []string
		check      func(t *testing.T, a *applied)
	}{
		{
			name:  "the default values with the required secrets run the verifier on SQLite with the embedded NATS",
			files: nil,
			check: func(t *testing.T, a *applied) {
				sts, c := a.verifier(t)
				if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
					t.Errorf("verifier volumeClaimTemplates = %v, want one named data (SQLite on a PVC)", sts.Spec.VolumeClaimTemplates)
				}
				wantEnv(t, c, "TC_ADMIN_PASSWORD_FILE", "/var/run/secrets/trustedcompute.io/admin/password")
				wantEnv(t, c, "TC_NATS_LISTEN", ":4222")
				// The data directory is below the volume root, which fsGroup
				// makes group-writable; the verifier makes its own 0700.
				wantEnv(t, c, "TC_DATA_DIR", "/var/lib/trusted-compute/verifier")
				if p := sts.Spec.Template.Spec.SecurityContext.FSGroupChangePolicy; p == nil || *p != corev1.FSGroupChangeOnRootMismatch {
					t.Errorf("verifier fsGroupChangePolicy = %v, want OnRootMismatch (keep the verifier's 0700/0600 modes)", p)
				}
				wantEnv(t, c, "TC_TOKEN_LEEWAY", "5s")
				noEnv(t, c, "TC_DATABASE_URL_FILE", "TC_DATABASE_URL", "TC_NATS_URL", "TC_ADMIN_PASSWORD", "TC_METRICS_LISTEN")
				if _, ok := sts.Spec.Template.Annotations["prometheus.io/scrape"]; ok {
					t.Errorf("verifier scrape annotations %v by default: /metrics on the API port needs a token", sts.Spec.Template.Annotations)
				}
				for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
					if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
						t.Errorf("verifier probe %+v: want an HTTPS GET", p)
					}
				}
				if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("probes: readiness %s, liveness %s; want /readyz and /healthz", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
				}
				a.servicePort(t, "tc-default-verifier", 8443)
				a.servicePort(t, "tc-default-verifier-nats", 4222)
				cfg := a.managerConfig(t)
				if got, ok := cfg["pollDuration"].(string); !ok || got != "60" {
					t.Errorf("manager pollDuration = %#v, want the string \"60\" (minutes)", cfg["pollDuration"])
				}
				if cfg["goldenFlavors"] != "everyBoot" {
					t.Errorf("manager goldenFlavors = %v, want everyBoot", cfg["goldenFlavors"])
				}
				// The chart's agents name their Node, so the manager requires it.
				if cfg["nodeBinding"] != "required" {
					t.Errorf("manager nodeBinding = %v, want required", cfg["nodeBinding"])
				}
				agent := a.daemonSet(t, "trust-agent").Spec.Template.Spec.Containers[0]
				if !slices.ContainsFunc(agent.Env, func(e corev1.EnvVar) bool {
					return e.Name == "TC_NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
				}) {
					t.Errorf("agent env %+v: want TC_NODE_NAME from spec.nodeName", agent.Env)
				}
				if _, ok := cfg["eim"]; ok {
					t.Errorf("manager config has eim, want it off by default: %v", cfg["eim"])
				}
				if a.hasKind("RuntimeClass") {
					t.Error("trusted-workload rendered although trustedWorkload.enabled is false by default")
				}
				// Eviction is off by default: the manager may evict nowhere.
				for _, ns := range []string{a.ns, "default", "kube-system"} {
					if a.managerCanEvict(t, ns) {
						t.Errorf("the manager may evict pods in %s with evictNamespaces empty", ns)
					}
				}
			},
		},
		{
			name:  "postgres takes the database URL from a Secret file and keeps no PVC",
			files: []string{"postgres.yaml"},
			check: func(t *testing.T, a *applied) {
				sts, c := a.verifier(t)
				wantEnv(t, c, "TC_DATABASE_URL_FILE", "/var/run/secrets/trustedcompute.io/database/url")
				noEnv(t, c, "TC_DATABASE_URL")
				if len(sts.Spec.VolumeClaimTemplates) != 0 {
					t.Errorf("verifier on postgres has volumeClaimTemplates %v, want none", sts.Spec.VolumeClaimTemplates)
				}
				wantSecretVolume(t, sts.Spec.Template.Spec, "tc-verifier-database")
				wantEnvFromSecret(t, c, "TC_KEY_ENCRYPTION_KEY", "tc-verifier-kek", "kek")
				noEnv(t, c, "TC_PREVIOUS_KEY_ENCRYPTION_KEY")
			},
		},
		{
			name:  "an external NATS replaces the embedded server and its Service",
			files: []string{"external-nats.yaml"},
			check: func(t *testing.T, a *applied) {
				_, c := a.verifier(t)
				wantEnv(t, c, "TC_NATS_URL", "tls://nats.nats.svc:4222")
				wantEnv(t, c, "TC_NATS_CREDS_FILE", "/var/run/secrets/trustedcompute.io/nats/creds")
				noEnv(t, c, "TC_NATS_LISTEN")
				if a.has("Service", "tc-external-nats-verifier-nats") {
					t.Error("the embedded NATS Service is rendered with an external NATS")
				}
				wantEnv(t, a.daemonSet(t, "trust-agent").Spec.Template.Spec.Containers[0], "TC_NATS_URL", "tls://nats.example.net:4222")
			},
		},
		{
			name:  "several verifier replicas run on postgres and an external NATS",
			files: []string{"scaled-verifier.yaml"},
			check: func(t *testing.T, a *applied) {
				if r := a.statefulSet(t, "verifier").Spec.Replicas; r == nil || *r != 3 {
					t.Errorf("verifier replicas = %v, want 3", r)
				}
			},
		},
		{
			name:  "metrics enabled serves /metrics on a port of its own and points the scrape annotations at it",
			files: []string{"verifier-metrics.yaml"},
			check: func(t *testing.T, a *applied) {
				sts, c := a.verifier(t)
				wantEnv(t, c, "TC_METRICS_LISTEN", ":9464")
				found := false
				for _, p := range c.Ports {
					found = found || (p.Name == "metrics" && p.ContainerPort == 9464)
				}
				if !found {
					t.Errorf("verifier ports %v: want metrics 9464", c.Ports)
				}
				ann := sts.Spec.Template.Annotations
				if ann["prometheus.io/port"] != "9464" || ann["prometheus.io/scheme"] != "http" || ann["prometheus.io/scrape"] != "true" {
					t.Errorf("verifier scrape annotations %v: want http on 9464", ann)
				}
			},
		},
		{
			name:  "the dashboard enabled listens on its own port, also on the Service, behind its trusted proxies",
			files: []string{"verifier-dashboard.yaml"},
			check: func(t *testing.T, a *applied) {
				_, c := a.verifier(t)
				wantEnv(t, c, "TC_DASHBOARD_LISTEN", ":9443")
				wantEnv(t, c, "TC_DASHBOARD_STALE_AFTER", "90m")
				wantEnv(t, c, "TC_TRUSTED_PROXIES", "10.42.0.0/16,192.0.2.10")
				if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "dashboard" && p.ContainerPort == 9443 }) {
					t.Errorf("verifier ports %v: want dashboard 9443", c.Ports)
				}
				svcs, err := a.cs.CoreV1().Services(a.ns).List(context.Background(), metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, svc := range svcs.Items {
					for _, p := range svc.Spec.Ports {
						found = found || (p.Name == "dashboard" && p.Port == 9443 && p.TargetPort.StrVal == "dashboard")
					}
				}
				if !found {
					t.Error("no Service port dashboard 9443")
				}
			},
		},
		{
			name:  "EIM on mounts its CA and token and configures its address",
			files: []string{"eim.yaml"},
			check: func(t *testing.T, a *applied) {
				eim, _ := a.managerConfig(t)["eim"].(map[string]any)
				want := map[string]any{
					"address": "eim.example.net:443", "serverName": "eim.example.net",
					"caFile": "/etc/trusted-compute/eim-ca/ca.crt", "tokenFile": "/var/run/secrets/trustedcompute.io/eim/token",
				}
				if !maps.Equal(eim, want) {
					t.Errorf("manager eim config = %v, want %v", eim, want)
				}
				wantSecretVolume(t, a.deployment(t, "attestation-manager").Spec.Template.Spec, "tc-eim-token")
			},
		},
		{
			name:       "evict namespaces, poll duration and golden flavors reach the manager's config",
			files:      []string{"evict.yaml"},
			namespaces: []string{"payments", "tenant-a"},
			check: func(t *testing.T, a *applied) {
				// Eviction rights in the evict namespaces, and nowhere else.
				for ns, want := range map[string]bool{"payments": true, "tenant-a": true, a.ns: false, "default": false, "kube-system": false} {
					if got := a.managerCanEvict(t, ns); got != want {
						t.Errorf("the manager may evict pods in %s: %v, want %v", ns, got, want)
					}
				}
				cfg := a.managerConfig(t)
				if got := fmt.Sprint(cfg["evictNamespaces"]); got != "[payments tenant-a]" {
					t.Errorf("evictNamespaces = %s, want [payments tenant-a]", got)
				}
				if cfg["pollDuration"] != "30" || cfg["goldenFlavors"] != "firstBoot" {
					t.Errorf("pollDuration %#v, goldenFlavors %v; want \"30\", firstBoot", cfg["pollDuration"], cfg["goldenFlavors"])
				}
			},
		},
		{
			name:  "the trusted workload adds the kata-qemu RuntimeClass, Kata on ready nodes and the IMA policy",
			files: []string{"trusted-workload.yaml"},
			check: func(t *testing.T, a *applied) {
				rc, err := a.cs.NodeV1().RuntimeClasses().Get(context.Background(), "kata-qemu", metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get RuntimeClass kata-qemu: %v", err)
				}
				if rc.Handler != "kata-qemu" || rc.Scheduling == nil ||
					!maps.Equal(rc.Scheduling.NodeSelector, map[string]string{cluster.LabelReady: "true"}) ||
					len(rc.Scheduling.Tolerations) != 0 {
					t.Errorf("RuntimeClass kata-qemu: handler %q, scheduling %+v; want handler kata-qemu, nodeSelector %s=true and no tolerations",
						rc.Handler, rc.Scheduling, cluster.LabelReady)
				}
				kata := a.daemonSet(t, "kata-deploy")
				if !maps.Equal(kata.Spec.Template.Spec.NodeSelector, map[string]string{cluster.LabelReady: "true"}) {
					t.Errorf("kata-deploy nodeSelector = %v, want %s=true", kata.Spec.Template.Spec.NodeSelector, cluster.LabelReady)
				}
				if len(kata.Spec.Template.Spec.Tolerations) != 0 {
					t.Errorf("kata-deploy tolerates %v, want nothing (off untrusted nodes)", kata.Spec.Template.Spec.Tolerations)
				}
				policy := a.configMapData(t, "tc-trusted-workload-trusted-workload-ima-policy", "ima-policy")
				checkIMAPolicy(t, policy, "2929")
				a.podGetsRuntimeClassPlacement(t)
			},
		},
		{
			name:  "the least-privileged agent takes the TPM from a device plugin and is not privileged",
			files: []string{"agent-device-plugin.yaml"},
			check: func(t *testing.T, a *applied) {
				ds := a.daemonSet(t, "trust-agent")
				c := ds.Spec.Template.Spec.Containers[0]
				sc := c.SecurityContext
				if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("agent securityContext %+v: want privileged and allowPrivilegeEscalation false", sc)
				}
				if q, ok := c.Resources.Limits["squat.ai/tpm"]; !ok || q.Value() != 1 {
					t.Errorf("agent limits = %v, want squat.ai/tpm: 1", c.Resources.Limits)
				}
				for _, v := range ds.Spec.Template.Spec.Volumes {
					if v.HostPath != nil && strings.HasPrefix(v.HostPath.Path, "/dev/") {
						t.Errorf("agent mounts host device %s although the device plugin provides it", v.HostPath.Path)
					}
				}
				wantEnv(t, c, "TC_NATS_CREDS_FILE", "/var/run/secrets/trustedcompute.io/nats/$(NODE_NAME)")
				wantSecretVolume(t, ds.Spec.Template.Spec, "tc-agent-creds")
			},
		},
	}
	cs := clustertest.Clientset(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := "tc-" + strings.TrimSuffix(strings.Join(tt.files, "-"), ".yaml")
			if len(tt.files) == 0 {
				release = "tc-default"
			}
			ns := release + "-ns"
			objs := mustRender(t, umbrellaChart, release, ns, values(t, append([]string{"required.yaml"}, tt.files...)...))
			clustertest.Namespace(t, cs, ns)
			for _, other := range tt.namespaces {
				clustertest.Namespace(t, cs, other)
			}
			a := apply(t, cs, ns, objs, tt.namespaces...)
			checkCommon(t, a)
			tt.check(t, a)
		})
	}
}

// checkCommon holds for every rendering: the agent's placement and
// privileges, the manager's role, no default password.
func checkCommon(t *testing.T, a *applied) {
	t.Helper()
	ds := a.daemonSet(t, "trust-agent")
	spec := ds.Spec.Template.Spec
	if !maps.Equal(spec.NodeSelector, map[string]string{cluster.LabelEnabled: "true"}) {
		t.Errorf("agent nodeSelector = %v, want only %s=true", spec.NodeSelector, cluster.LabelEnabled)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == cluster.TaintUntrusted && tol.Effect == corev1.TaintEffectNoSchedule &&
			tol.Operator == corev1.TolerationOpExists
	}) {
		t.Errorf("agent tolerations %v: want %s:NoSchedule (Exists), to keep running on an untrusted node", spec.Tolerations, cluster.TaintUntrusted)
	}
	if spec.HostNetwork {
		t.Error("agent uses the host network by default")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("agent mounts a service account token; it never calls the Kubernetes API")
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if len(c.Ports) != 0 {
			t.Errorf("agent container %s has ports %v, want none (the agent dials out)", c.Name, c.Ports)
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("agent container %s: root file system is writable", c.Name)
		}
		if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil ||
			!slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(c.SecurityContext.Capabilities.Add) != 0 {
			t.Errorf("agent container %s capabilities %+v, want drop ALL and add nothing", c.Name, c.SecurityContext)
		}
		wantEnv(t, c, "TC_ROOT", "/host")
		wantEnv(t, c, "TC_NATS_CA_FILE", "/etc/trusted-compute/cms-root/cms-root.pem")
	}
	checkAgentProbes(t, spec.Containers[0])
	for _, svc := range a.ofKind("Service") {
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		if sel["app.kubernetes.io/name"] == "trust-agent" {
			t.Errorf("Service %s selects the agent, which never listens", svc.GetName())
		}
	}
	// Every host path the measurements need, read-only, at <root>/<path>.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for mountPath, hostPath := range map[string]string{
		"/host/sys":                      "/sys", // DMI (/sys/class/dmi/id) and block devices
		"/host/sys/kernel/security":      "/sys/kernel/security",
		"/host/sys/firmware/efi/efivars": "/sys/firmware/efi/efivars",
		"/host/proc":                     "/proc",
		"/host/etc/os-release":           "/etc/os-release",
	} {
		m, ok := mounts[mountPath]
		switch {
		case !ok:
			t.Errorf("agent does not mount %s", mountPath)
		case hostPaths[m.Name] != hostPath:
			t.Errorf("agent mounts host %q at %s, want %s", hostPaths[m.Name], mountPath, hostPath)
		case !m.ReadOnly:
			t.Errorf("agent mounts %s writable", mountPath)
		}
	}

	a.checkManagerRole(t)
	checkConfigKeys(t, a.managerConfig(t))
	for _, c := range slices.Concat(spec.Containers, a.statefulSet(t, "verifier").Spec.Template.Spec.Containers) {
		checkEnvKnown(t, c)
	}

	for _, s := range a.ofKind("Secret") {
		data, _, _ := unstructured.NestedStringMap(s.Object, "data")
		for k, v := range data {
			if strings.Contains(strings.ToLower(k), "password") && v == "" {
				t.Errorf("Secret %s has an empty %s", s.GetName(), k)
			}
		}
	}
}

// checkAgentProbes: the agent opens no port, so its probes run
// "trust-agent health" on the heartbeat file that "run -health-file" writes;
// readiness also wants the bus up.
func checkAgentProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	i := slices.Index(c.Args, "-health-file")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("agent args %v: want -health-file <path>", c.Args)
	}
	health := []string{"/usr/local/bin/trust-agent", "health", "-file", c.Args[i+1]}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := health
		if name == "readiness" {
			want = append(slices.Clone(health), "-ready")
		}
		if p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, want) {
			t.Errorf("agent %s probe %+v, want exec %v", name, p, want)
		}
	}
}

// checkManagerRole compares the manager's ClusterRole, as stored by the API
// server, with internal/cluster/rbac.yaml plus watch on nodes, less the pod
// eviction rights: the chart grants those only in the evict namespaces.
func (a *applied) checkManagerRole(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "internal", "cluster", "rbac.yaml"))
	if err != nil {
		t.Fatalf("read the cluster package's role: %v", err)
	}
	var base rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &base); err != nil {
		t.Fatalf("parse internal/cluster/rbac.yaml: %v", err)
	}
	want := ruleSet(base.Rules)
	want[`"".nodes:watch`] = true // the manager's node list watches nodes
	for _, evict := range evictRules {
		if !want[evict] {
			t.Errorf("internal/cluster/rbac.yaml no longer grants %s: the chart's eviction Roles are out of date", evict)
		}
		delete(want, evict)
	}
	name := a.release + "-attestation-manager"
	got := mustGet(t, "ClusterRole", a.cs.RbacV1().ClusterRoles().Get, name)
	if g := ruleSet(got.Rules); !maps.Equal(g, want) {
		t.Errorf("manager ClusterRole grants %v, want exactly %v", keys(g), keys(want))
	}
	for _, r := range got.Rules {
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 || slices.Contains(r.Verbs, "*") ||
			slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("manager ClusterRole rule %+v: want no wildcards, resourceNames or non-resource URLs", r)
		}
	}
	crb := mustGet(t, "ClusterRoleBinding", a.cs.RbacV1().ClusterRoleBindings().Get, name)
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: a.ns}
	if crb.RoleRef.Name != name || len(crb.Subjects) != 1 || crb.Subjects[0] != wantSubject {
		t.Errorf("ClusterRoleBinding %s: roleRef %s, subjects %v; want %s and %v", name, crb.RoleRef.Name, crb.Subjects, name, wantSubject)
	}
	dep := a.deployment(t, "attestation-manager")
	if dep.Spec.Template.Spec.ServiceAccountName != name {
		t.Errorf("manager runs as %q, want %q", dep.Spec.Template.Spec.ServiceAccountName, name)
	}
}

// checkConfigKeys fails for a key of the rendered manager config that the
// binary does not know (it refuses unknown keys): every key must appear in
// its defaults golden file, which lists them all.
func checkConfigKeys(t *testing.T, cfg map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "cmd", "attestation-manager", "testdata", "defaults.golden.yaml"))
	if err != nil {
		t.Fatalf("read the manager's config keys: %v", err)
	}
	var golden map[string]any
	if err := yaml.Unmarshal(data, &golden); err != nil {
		t.Fatalf("parse defaults.golden.yaml: %v", err)
	}
	known := map[string]bool{}
	flatten("", golden, known)
	got := map[string]bool{}
	flatten("", cfg, got)
	for k := range got {
		if !known[k] {
			t.Errorf("manager config key %s is not a key of cmd/attestation-manager (known: %v)", k, keys(known))
		}
	}
}

func flatten(prefix string, m map[string]any, into map[string]bool) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flatten(prefix+k+".", sub, into)
			continue
		}
		into[prefix+k] = true
	}
}

// checkEnvKnown fails for a TC_* variable that no binary reads.
func checkEnvKnown(t *testing.T, c corev1.Container) {
	t.Helper()
	var src strings.Builder
	for _, f := range []string{"cmd/verifier/config.go", "cmd/trust-agent/config.go", "cmd/attestation-manager/config.go"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		src.Write(b)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "TC_") && !strings.Contains(src.String(), `"`+e.Name+`"`) {
			t.Errorf("container %s sets %s, which no binary reads", c.Name, e.Name)
		}
	}
}

// evictRules are the rights Evict needs, granted only in the evict
// namespaces.
var evictRules = []string{`"".pods:list`, `"".pods/eviction:create`}

// managerCanEvict asks the API server whether the manager's service account
// may list pods and create evictions in ns.
func (a *applied) managerCanEvict(t *testing.T, ns string) bool {
	t.Helper()
	sa := a.release + "-attestation-manager"
	can := true
	for _, attr := range []authorizationv1.ResourceAttributes{
		{Namespace: ns, Verb: "list", Resource: "pods"},
		{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "eviction"},
	} {
		review, err := a.cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + a.ns + ":" + sa,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + a.ns, "system:authenticated"},
				ResourceAttributes: &attr,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("review %s %s in %s: %v", attr.Verb, attr.Resource, ns, err)
		}
		can = can && review.Status.Allowed
	}
	return can
}

// ruleSet flattens rules into "group.resource:verb" strings.
func ruleSet(rules []rbacv1.PolicyRule) map[string]bool {
	s := map[string]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					s[fmt.Sprintf("%q.%s:%s", g, res, v)] = true
				}
			}
		}
	}
	return s
}

func keys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// TestSubchartsInstallAlone renders each subchart on its own, with its
// defaults and only what it requires, and applies it.
func TestSubchartsInstallAlone(t *testing.T) {
	tests := []struct {
		chart    string
		set      map[string]any
		wantKind string
	}{
		{"verifier", map[string]any{"admin.existingSecret": "tc-admin"}, "StatefulSet"},
		{"trust-agent", map[string]any{"global.cmsRoot.existingConfigMap": "tc-cms-root"}, "DaemonSet"},
		{"attestation-manager", map[string]any{"global.cmsRoot.sha384": strings.Repeat("ab", 48),
			"verifier.credentials.existingSecret": "tc-manager-aas", "nats.credsSecret": "tc-manager-nats"}, "Deployment"},
		{"trusted-workload", map[string]any{}, "RuntimeClass"},
	}
	cs := clustertest.Clientset(t)
	for _, tt := range tests {
		t.Run("the "+tt.chart+" chart installs on its own", func(t *testing.T) {
			vals := map[string]any{}
			for path, v := range tt.set {
				set(vals, path, v)
			}
			ns := "alone-" + tt.chart
			objs := mustRender(t, filepath.Join(umbrellaChart, "charts", tt.chart), "solo", ns, vals)
			if !slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == tt.wantKind }) {
				t.Fatalf("no %s rendered", tt.wantKind)
			}
			clustertest.Namespace(t, cs, ns)
			apply(t, cs, ns, objs)
		})
	}
}

// TestRenderRefuses lists the values the charts refuse, each with the
// message an operator sees.
func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]any
		wantErr string
	}{
		{"no admin password and no existing Secret", map[string]any{"verifier.admin.password": ""},
			"verifier.admin.password (or verifier.admin.existingSecret) is required: the verifier has no default administrator password"},
		{"two verifier replicas on SQLite", map[string]any{"verifier.replicas": 2},
			"verifier.replicas > 1 needs database.type=postgres"},
		{"postgres without the URL Secret", map[string]any{"verifier.database.type": "postgres"},
			"verifier.database.postgres.existingSecret is required"},
		{"postgres without the key-encryption key Secret", map[string]any{"verifier.database.type": "postgres",
			"verifier.database.postgres.existingSecret": "db"}, "verifier.keyEncryption.existingSecret is required with database.type=postgres"},
		{"an external NATS without credentials", map[string]any{"verifier.nats.external.url": "tls://nats:4222"},
			"verifier.nats.external.credsSecret is required"},
		{"a manager without its AAS password Secret", map[string]any{"attestationManager.verifier.credentials.existingSecret": ""},
			"attestationManager.verifier.credentials.existingSecret is required"},
		{"a manager without its NATS credentials Secret", map[string]any{"attestationManager.nats.credsSecret": ""},
			"attestationManager.nats.credsSecret is required"},
		{"no CMS root at all", map[string]any{"global.cmsRoot.certificate": "", "global.cmsRoot.sha384": ""},
			"global.cmsRoot.certificate or global.cmsRoot.existingConfigMap is required by the trust agent"},
		{"EIM on without its token", map[string]any{"attestationManager.eim.enabled": true, "attestationManager.eim.address": "eim:443",
			"attestationManager.eim.ca.existingConfigMap": "ca"}, "attestationManager.eim.token.existingSecret is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := values(t, "required.yaml")
			for path, v := range tt.set {
				set(vals, path, v)
			}
			_, err := render(umbrellaChart, "tc", "tc", vals)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("render error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestAdminPasswordFromAnExistingSecret renders no password Secret and
// mounts the operator's.
func TestAdminPasswordFromAnExistingSecret(t *testing.T) {
	vals := values(t, "required.yaml")
	set(vals, "verifier.admin.password", "")
	set(vals, "verifier.admin.existingSecret", "my-admin")
	set(vals, "verifier.admin.existingSecretKey", "pw")
	objs := mustRender(t, umbrellaChart, "tc", "tc", vals)
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Errorf("rendered Secret %s, want none with an existing admin Secret", o.GetName())
		}
	}
	var sts appsv1.StatefulSet
	fromUnstructured(t, find(t, objs, "StatefulSet", "tc-verifier"), &sts)
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == "admin-password" {
			if v.Secret == nil || v.Secret.SecretName != "my-admin" || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "pw" {
				t.Errorf("admin-password volume %+v, want Secret my-admin key pw", v.VolumeSource)
			}
			return
		}
	}
	t.Error("no admin-password volume")
}

// TestExampleWorkloadRunsInKata renders the example confidential workload,
// applies it beside the kata-qemu RuntimeClass and checks that a pod of it
// is placed on ready nodes by the API server.
func TestExampleWorkloadRunsInKata(t *testing.T) {
	objs := mustRender(t, exampleChart, "demo", "demo-ns", map[string]any{})
	var dep appsv1.Deployment
	fromUnstructured(t, find(t, objs, "Deployment", "demo-confidential-app"), &dep)
	if rc := dep.Spec.Template.Spec.RuntimeClassName; rc == nil || *rc != "kata-qemu" {
		t.Fatalf("example runtimeClassName = %v, want kata-qemu", rc)
	}
	if len(dep.Spec.Template.Spec.Tolerations) != 0 {
		t.Errorf("example tolerates %v, want nothing", dep.Spec.Template.Spec.Tolerations)
	}

	cs := clustertest.Clientset(t)
	clustertest.Namespace(t, cs, "demo-ns")
	applyKataPlatform(t, cs, "demo-ns")
	a := apply(t, cs, "demo-ns", objs)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo-ns", Name: "demo-pod", Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
	got, err := a.cs.CoreV1().Pods("demo-ns").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a pod from the example's template: %v", err)
	}
	if got.Spec.NodeSelector[cluster.LabelReady] != "true" {
		t.Errorf("pod nodeSelector = %v, want %s=true merged from the RuntimeClass", got.Spec.NodeSelector, cluster.LabelReady)
	}
}

// TestTrustAgentRunsPrivilegedOnlyForTheTPMByDefault pins the default TPM
// access: a privileged container with the device mounted, as documented.
func TestTrustAgentRunsPrivilegedOnlyForTheTPMByDefault(t *testing.T) {
	objs := mustRender(t, umbrellaChart, "tc", "tc", values(t, "required.yaml"))
	var ds appsv1.DaemonSet
	fromUnstructured(t, find(t, objs, "DaemonSet", "tc-trust-agent"), &ds)
	c := ds.Spec.Template.Spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Errorf("agent securityContext %+v: want privileged (hostPath device access)", c.SecurityContext)
	}
	wantEnv(t, c, "TC_TPM", "device:/dev/tpmrm0")
	var dev *corev1.HostPathVolumeSource
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/dev/tpmrm0" {
			dev = v.HostPath
		}
	}
	if dev == nil || dev.Type == nil || *dev.Type != corev1.HostPathCharDev {
		t.Errorf("agent TPM volume %+v, want hostPath /dev/tpmrm0 of type CharDevice", dev)
	}
	if ds.Spec.Template.Spec.HostPID || ds.Spec.Template.Spec.HostIPC {
		t.Error("agent shares the host's PID or IPC namespace; it reads /proc/1 through the host's /proc mount")
	}
}

// checkIMAPolicy parses an IMA policy with the grammar of the kernel's
// Documentation/ABI/testing/ima_policy and checks that it measures the Kata
// artifacts by group.
func checkIMAPolicy(t *testing.T, policy, gid string) {
	t.Helper()
	actions := []string{"measure", "dont_measure", "appraise", "dont_appraise", "audit", "hash", "dont_hash"}
	conds := []string{"func", "mask", "fsmagic", "fsuuid", "uid", "euid", "gid", "egid", "fowner", "fgroup",
		"obj_user", "obj_role", "obj_type", "subj_user", "subj_role", "subj_type", "pcr", "template",
		"appraise_type", "appraise_flag", "appraise_algos", "keyrings", "label", "digest_type"}
	funcs := []string{"FILE_CHECK", "MMAP_CHECK", "MMAP_CHECK_REQPROT", "BPRM_CHECK", "CREDS_CHECK", "FIRMWARE_CHECK",
		"POLICY_CHECK", "KEXEC_KERNEL_CHECK", "KEXEC_INITRAMFS_CHECK", "MODULE_CHECK", "KEXEC_CMDLINE", "KEY_CHECK",
		"CRITICAL_DATA", "SETXATTR_CHECK"}
	masks := []string{"MAY_EXEC", "MAY_WRITE", "MAY_READ", "MAY_APPEND"}
	var measured []string
	for n, line := range strings.Split(policy, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if !slices.Contains(actions, f[0]) {
			t.Errorf("IMA policy line %d %q: unknown action %q", n+1, line, f[0])
			continue
		}
		kv := map[string]string{}
		for _, c := range f[1:] {
			if c == "permit_directio" {
				continue
			}
			k, v, ok := strings.Cut(c, "=")
			if !ok || !slices.Contains(conds, k) {
				t.Errorf("IMA policy line %d %q: %q is not an IMA condition (there are no path rules)", n+1, line, c)
				continue
			}
			kv[k] = v
		}
		if fn, ok := kv["func"]; ok && !slices.Contains(funcs, fn) {
			t.Errorf("IMA policy line %d: unknown func %q", n+1, fn)
		}
		if m, ok := kv["mask"]; ok && !slices.Contains(masks, strings.TrimPrefix(m, "^")) {
			t.Errorf("IMA policy line %d: unknown mask %q", n+1, m)
		}
		if f[0] == "measure" && kv["fgroup"] == gid {
			measured = append(measured, kv["func"])
		}
	}
	for _, fn := range []string{"BPRM_CHECK", "MMAP_CHECK", "FILE_CHECK"} {
		if !slices.Contains(measured, fn) {
			t.Errorf("IMA policy has no measure func=%s fgroup=%s rule (Kata runtime, guest kernel and VM image)", fn, gid)
		}
	}
}

// applied is what apply stored in the API server.
type applied struct {
	cs      kubernetes.Interface
	ns      string
	release string
	objs    []*unstructured.Unstructured
}

func (a *applied) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range a.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (a *applied) hasKind(kind string) bool { return len(a.ofKind(kind)) > 0 }

func (a *applied) has(kind, name string) bool {
	return slices.ContainsFunc(a.objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind && o.GetName() == name })
}

// mustGet reads the object name of kind through get (a typed client's
// Get), or fails the test.
func mustGet[T any](t *testing.T, kind string, get func(context.Context, string, metav1.GetOptions) (T, error), name string) T {
	t.Helper()
	o, err := get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s: %v", kind, name, err)
	}
	return o
}

func (a *applied) daemonSet(t *testing.T, component string) *appsv1.DaemonSet {
	t.Helper()
	return mustGet(t, "DaemonSet", a.cs.AppsV1().DaemonSets(a.ns).Get, a.release+"-"+component)
}

func (a *applied) statefulSet(t *testing.T, component string) *appsv1.StatefulSet {
	t.Helper()
	return mustGet(t, "StatefulSet", a.cs.AppsV1().StatefulSets(a.ns).Get, a.release+"-"+component)
}

// verifier is the verifier's StatefulSet and its container.
func (a *applied) verifier(t *testing.T) (*appsv1.StatefulSet, corev1.Container) {
	t.Helper()
	sts := a.statefulSet(t, "verifier")
	return sts, sts.Spec.Template.Spec.Containers[0]
}

func (a *applied) deployment(t *testing.T, component string) *appsv1.Deployment {
	t.Helper()
	return mustGet(t, "Deployment", a.cs.AppsV1().Deployments(a.ns).Get, a.release+"-"+component)
}

func (a *applied) configMapData(t *testing.T, name, key string) string {
	t.Helper()
	cm := mustGet(t, "ConfigMap", a.cs.CoreV1().ConfigMaps(a.ns).Get, name)
	v, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", name, key)
	}
	return v
}

// managerConfig is the manager's config.yaml as stored in the API server.
func (a *applied) managerConfig(t *testing.T) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(a.configMapData(t, a.release+"-attestation-manager", "config.yaml")), &cfg); err != nil {
		t.Fatalf("parse manager config: %v", err)
	}
	return cfg
}

func (a *applied) servicePort(t *testing.T, name string, port int32) {
	t.Helper()
	svc := mustGet(t, "Service", a.cs.CoreV1().Services(a.ns).Get, name)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port {
		t.Errorf("Service %s ports %v, want only %d", name, svc.Spec.Ports, port)
	}
}

// podGetsRuntimeClassPlacement creates a pod with runtimeClassName
// kata-qemu: the RuntimeClass admission plugin must merge the
// RuntimeClass's nodeSelector into it and refuse a conflicting one.
func (a *applied) podGetsRuntimeClassPlacement(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	kata := "kata-qemu"
	pod := clustertest.Pod(a.ns, "confidential").Build()
	pod.Spec.RuntimeClassName = &kata
	got, err := a.cs.CoreV1().Pods(a.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a kata-qemu pod: %v", err)
	}
	if got.Spec.NodeSelector[cluster.LabelReady] != "true" {
		t.Errorf("kata-qemu pod nodeSelector = %v, want %s=true merged by the RuntimeClass admission plugin", got.Spec.NodeSelector, cluster.LabelReady)
	}
	if got.Spec.Overhead.Memory().IsZero() {
		t.Errorf("kata-qemu pod overhead = %v, want the RuntimeClass's", got.Spec.Overhead)
	}
	conflicting := clustertest.Pod(a.ns, "confidential-elsewhere").Build()
	conflicting.Spec.RuntimeClassName = &kata
	conflicting.Spec.NodeSelector = map[string]string{cluster.LabelReady: "false"}
	_, err = a.cs.CoreV1().Pods(a.ns).Create(ctx, conflicting, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		t.Errorf("create a kata-qemu pod that selects %s=false: err %v, want it refused", cluster.LabelReady, err)
	}
}

// mustRender is render, failing t on an error.
func mustRender(t *testing.T, chartPath, name, namespace string, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(chartPath, name, namespace, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return objs
}

// render renders chartPath as release name in namespace with vals, the way
// "helm install --dry-run" does without a cluster, and returns the objects.
func render(chartPath, name, namespace string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	rel, err := install(chartPath, name, namespace, vals)
	if err != nil {
		return nil, err
	}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	var objs []*unstructured.Unstructured
	for _, k := range slices.Sorted(maps.Keys(manifests)) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(manifests[k]), &m); err != nil {
			return nil, fmt.Errorf("parse rendered %s: %w\n%s", k, err, manifests[k])
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// install runs "helm install --dry-run" of chartPath without a cluster,
// validating vals against the charts' values.schema.json.
func install(chartPath, name, namespace string, vals map[string]any) (*release.Release, error) {
	chrt, err := loader.Load(chartPath)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", chartPath, err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.ReleaseName = name
	inst.Namespace = namespace
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	return inst.Run(chrt, vals)
}

// applyRelease renders the umbrella chart as release in the fresh namespace
// ns with required.yaml and files, and applies it.
func applyRelease(t *testing.T, release, ns string, files ...string) *applied {
	t.Helper()
	cs := clustertest.Clientset(t)
	objs := mustRender(t, umbrellaChart, release, ns, values(t, append([]string{"required.yaml"}, files...)...))
	clustertest.Namespace(t, cs, ns)
	return apply(t, cs, ns, objs)
}

// apply applies objs with server-side apply, first as a dry run (all of
// them, so that nothing is stored if one is refused), then for real.
// Namespaced objects must already name ns, or one of others.
func apply(t *testing.T, cs *kubernetes.Clientset, ns string, objs []*unstructured.Unstructured, others ...string) *applied {
	t.Helper()
	cfg := clustertest.Start(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	ctx := context.Background()
	for _, dryRun := range []bool{true, false} {
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s %s: no such resource in the API server: %v", gvk, o.GetName(), err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == "namespace" {
				if o.GetNamespace() != ns && !slices.Contains(others, o.GetNamespace()) {
					t.Fatalf("%s %s is in namespace %q, want the release namespace %q or one of %v", gvk.Kind, o.GetName(), o.GetNamespace(), ns, others)
				}
				ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
			} else if o.GetNamespace() != "" {
				t.Errorf("cluster-scoped %s %s names namespace %q", gvk.Kind, o.GetName(), o.GetNamespace())
			}
			data, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatalf("encode %s %s: %v", gvk.Kind, o.GetName(), err)
			}
			opts := metav1.PatchOptions{FieldManager: fieldManager, Force: new(true)}
			if dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
				t.Fatalf("apply %s %s (dry run %v): %v\n%s", gvk.Kind, o.GetName(), dryRun, err, mustYAML(o))
			}
		}
	}
	release := ""
	for _, o := range objs {
		if r := o.GetLabels()["app.kubernetes.io/instance"]; r != "" {
			release = r
			break
		}
	}
	return &applied{cs: cs, ns: ns, release: release, objs: objs}
}

func mustYAML(o *unstructured.Unstructured) string {
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// values reads testdata files and merges them, later files winning.
func values(t *testing.T, files ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatalf("read values %s: %v", f, err)
		}
		mergeValues(out, v)
	}
	return out
}

func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// set sets a dotted path in vals, creating maps on the way.
func set(vals map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := vals
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var names []string
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(names)
	t.Fatalf("no %s %s among %v", kind, name, names)
	return nil
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, into, true); err != nil {
		t.Fatalf("convert %s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

func wantEnv(t *testing.T, c corev1.Container, name, value string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if e.Value != value {
				t.Errorf("container %s env %s = %q, want %q", c.Name, name, e.Value, value)
			}
			return
		}
	}
	t.Errorf("container %s has no env %s (want %q)", c.Name, name, value)
}

func wantEnvFromSecret(t *testing.T, c corev1.Container, name, secret, key string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if r := e.ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != secret || r.SecretKeyRef.Key != key {
				t.Errorf("container %s env %s = %+v, want from Secret %s key %s", c.Name, name, e, secret, key)
			}
			return
		}
	}
	t.Errorf("container %s has no env %s (want it from Secret %s)", c.Name, name, secret)
}

func noEnv(t *testing.T, c corev1.Container, names ...string) {
	t.Helper()
	for _, e := range c.Env {
		if slices.Contains(names, e.Name) {
			t.Errorf("container %s sets env %s=%q, want it unset", c.Name, e.Name, e.Value)
		}
	}
}

func wantSecretVolume(t *testing.T, spec corev1.PodSpec, secret string) {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return
		}
	}
	t.Errorf("no volume from Secret %s", secret)
}
