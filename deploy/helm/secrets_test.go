package helm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster/clustertest"
)

const agentSecretsDir = "/run/trusted-compute/secrets"

// secretsWorkload renders the example workload with released secrets on.
func secretsWorkload(t *testing.T, names ...any) (appsv1.Deployment, error) {
	t.Helper()
	vals := map[string]any{"releasedSecrets": map[string]any{"enabled": true, "names": names}}
	objs, err := render(exampleChart, "demo", "demo-ns", vals)
	if err != nil {
		return appsv1.Deployment{}, err
	}
	var dep appsv1.Deployment
	fromUnstructured(t, find(t, objs, "Deployment", "demo-confidential-app"), &dep)
	return dep, nil
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func mount(c corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// TestTheTrustAgentKeepsReleasedSecretsInANodeTmpfsDirectory checks the
// agent's side: with names it asks for them and keeps them in the node's
// /run (a tmpfs), without names it mounts nothing of the kind.
func TestTheTrustAgentKeepsReleasedSecretsInANodeTmpfsDirectory(t *testing.T) {
	vals := values(t, "required.yaml")
	set(vals, "trustAgent.secrets.names", []any{"volume-key", "image-key"})
	objs := mustRender(t, umbrellaChart, "tc", "tc-secrets", vals)
	agent := find(t, objs, "DaemonSet", "tc-trust-agent")
	var ds appsv1.DaemonSet
	fromUnstructured(t, agent, &ds)
	cs := clustertest.Clientset(t)
	clustertest.Namespace(t, cs, "tc-secrets")
	apply(t, cs, "tc-secrets", []*unstructured.Unstructured{agent})
	c := ds.Spec.Template.Spec.Containers[0]
	wantEnv(t, c, "TC_SECRETS", "volume-key,image-key")
	wantEnv(t, c, "TC_SECRETS_DIR", agentSecretsDir)
	checkEnvKnown(t, c)
	v, m := volume(ds.Spec.Template.Spec, "released-secrets"), mount(c, "released-secrets")
	if v == nil || v.HostPath == nil || v.HostPath.Path != agentSecretsDir || m == nil || m.MountPath != agentSecretsDir || m.ReadOnly {
		t.Errorf("agent's released-secrets volume %+v mounted %+v, want hostPath %s mounted writable at %s", v, m, agentSecretsDir, agentSecretsDir)
	}

	objs = mustRender(t, umbrellaChart, "tc", "tc", values(t, "required.yaml"))
	fromUnstructured(t, find(t, objs, "DaemonSet", "tc-trust-agent"), &ds)
	noEnv(t, ds.Spec.Template.Spec.Containers[0], "TC_SECRETS", "TC_SECRETS_DIR")
	if volume(ds.Spec.Template.Spec, "released-secrets") != nil {
		t.Error("an agent without secrets mounts the node's secrets directory")
	}
}

// TestAWorkloadReadsReleasedSecretsFromItsOwnTmpfs checks the workload's
// side: the app mounts only a memory-backed emptyDir, read-only; a sidecar
// fills it from the agent's directory, which only the sidecar mounts,
// read-only; the API server accepts the pod.
func TestAWorkloadReadsReleasedSecretsFromItsOwnTmpfs(t *testing.T) {
	dep, err := secretsWorkload(t, "volume-key")
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	spec := dep.Spec.Template.Spec
	tmpfs := volume(spec, "released-secrets")
	if tmpfs == nil || tmpfs.EmptyDir == nil || tmpfs.EmptyDir.Medium != corev1.StorageMediumMemory || tmpfs.EmptyDir.SizeLimit == nil {
		t.Fatalf("released-secrets volume %+v, want an emptyDir of medium Memory with a size limit", tmpfs)
	}
	node := volume(spec, "node-secrets")
	if node == nil || node.HostPath == nil || node.HostPath.Path != agentSecretsDir {
		t.Fatalf("node-secrets volume %+v, want hostPath %s (the trust agent's secrets.hostPath)", node, agentSecretsDir)
	}
	app := spec.Containers[0]
	if m := mount(app, "released-secrets"); m == nil || !m.ReadOnly || m.MountPath != "/run/secrets/trusted-compute" {
		t.Errorf("app mounts the tmpfs as %+v, want read-only at /run/secrets/trusted-compute", m)
	}
	if mount(app, "node-secrets") != nil {
		t.Error("the app mounts the node's directory")
	}
	if len(spec.InitContainers) != 1 {
		t.Fatalf("%d init containers, want the sync sidecar", len(spec.InitContainers))
	}
	side := spec.InitContainers[0]
	if side.RestartPolicy == nil || *side.RestartPolicy != corev1.ContainerRestartPolicyAlways || side.StartupProbe == nil {
		t.Errorf("sidecar restartPolicy %v, startupProbe %v: want a sidecar the app waits for", side.RestartPolicy, side.StartupProbe)
	}
	if m := mount(side, "node-secrets"); m == nil || !m.ReadOnly {
		t.Errorf("sidecar mounts the node's directory as %+v, want read-only", m)
	}
	if sc := side.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("sidecar securityContext %+v, want no capability and no escalation", sc)
	}
	wantEnv(t, side, "NAMES", "volume-key")

	cs := clustertest.Clientset(t)
	clustertest.Namespace(t, cs, "secrets-ns")
	applyKataPlatform(t, cs, "secrets-ns")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "secrets-ns", Name: "demo-secrets"}, Spec: spec}
	if _, err := cs.CoreV1().Pods("secrets-ns").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refuses a pod of the workload: %v", err)
	}
}

func TestAWorkloadWithReleasedSecretsMustNameThem(t *testing.T) {
	if _, err := secretsWorkload(t); err == nil || !strings.Contains(err.Error(), "releasedSecrets.names is required") {
		t.Fatalf("render with no names: %v, want refused", err)
	}
}

// TestTheSidecarFollowsTheAgentsDirectory runs the sidecar's script with
// the system's sh: a released secret is copied (0440), a rotated one
// replaced, a dropped one deleted from the pod's tmpfs.
func TestTheSidecarFollowsTheAgentsDirectory(t *testing.T) {
	dep, err := secretsWorkload(t, "volume-key", "image-key")
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	side := dep.Spec.Template.Spec.InitContainers[0]
	src, dst := t.TempDir(), t.TempDir()
	cmd := exec.CommandContext(t.Context(), side.Command[0], side.Command[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SRC=" + src, "DST=" + dst, "NAMES=volume-key image-key", "INTERVAL=0.1"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	content := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dst, name))
		return string(b)
	}
	release := func(name, value string) {
		t.Helper()
		tmp := filepath.Join(src, name+".tmp")
		if err := os.WriteFile(tmp, []byte(value), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}

	release("volume-key", "v1")
	eventually("the released secret is copied", func() bool { return content("volume-key") == "v1" })
	if fi, err := os.Stat(filepath.Join(dst, "volume-key")); err != nil || fi.Mode().Perm() != 0o440 {
		t.Errorf("copy %v %v, want mode 0440", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "image-key")); !os.IsNotExist(err) {
		t.Errorf("a secret not released yet is in the pod's tmpfs: %v", err)
	}
	release("volume-key", "v2")
	eventually("the rotated secret replaces the copy", func() bool { return content("volume-key") == "v2" })
	if err := os.Remove(filepath.Join(src, "volume-key")); err != nil {
		t.Fatal(err)
	}
	eventually("the dropped secret is deleted", func() bool {
		_, err := os.Stat(filepath.Join(dst, "volume-key"))
		return os.IsNotExist(err)
	})
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("left in the pod's tmpfs: %v", entries)
	}
}

// applyKataPlatform applies what the umbrella chart installs for trusted
// workloads alone (the kata-qemu RuntimeClass, Kata, the IMA policy) in ns.
func applyKataPlatform(t *testing.T, cs *kubernetes.Clientset, ns string) {
	t.Helper()
	vals := values(t, "required.yaml", "trusted-workload.yaml")
	set(vals, "verifier.enabled", false)
	set(vals, "trustAgent.enabled", false)
	set(vals, "attestationManager.enabled", false)
	platform, err := render(umbrellaChart, "tc-example", ns, vals)
	if err != nil {
		t.Fatalf("render the trusted workload: %v", err)
	}
	apply(t, cs, ns, platform)
}
