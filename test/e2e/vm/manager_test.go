package vm_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/syncbuf"
	"trustedcompute.io/tc/internal/verifier/report"
)

// The attestation manager judges the VM too, as in test/e2e/manager: a real
// kube-apiserver + etcd (envtest, binaries from hack/kube-tools.sh or
// KUBEBUILDER_ASSETS) holds the VM's Node, and the manager, driven by a fake
// clock through Tick, registers the host, keeps its golden flavors and
// labels, cordons and taints the Node.
func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

// vmNodeName is the Kubernetes Node of the VM; its system UUID is the VM's
// SMBIOS UUID, so the manager attests host machineUUID.
const vmNodeName = "tc-vm"

// kube is the control plane, the VM's Node and the attestation manager.
type kube struct {
	cs    kubernetes.Interface
	clock *clock.Fake // the manager's schedule
	deps  manager.Deps
	mgr   *manager.Manager
	log   *syncbuf.Buffer // the manager's log, to see what it decided to do
}

// startManager creates the VM's enabled Node and a manager that talks to the
// verifier of h with its REST client, as the admin.
func startManager(t *testing.T, h *harness, dir string) *kube {
	t.Helper()
	cs := clustertest.Clientset(t)
	clustertest.Node(vmNodeName).Label(cluster.LabelEnabled, "true").SystemUUID(machineUUID).Create(t, cs)
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), vmNodeName, metav1.DeleteOptions{}) })
	pw := writeFile(t, dir, "admin-password", []byte(adminPassword), 0o600)
	hc, err := hvsclient.New(h.v.Base, h.v.Roots, hvsclient.Credentials{Username: "admin", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	k := &kube{cs: cs, clock: clock.NewFake(time.Now()), log: &syncbuf.Buffer{}}
	var out io.Writer = k.log
	if os.Getenv("TC_E2E_VERBOSE") != "" {
		out = io.MultiWriter(k.log, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k.deps = manager.Deps{
		Verifier: manager.HVSVerifier{Client: hc, Log: logger},
		Nodes:    manager.KubeNodes{Nodes: cluster.New(cs, cluster.Options{Logger: slog.New(slog.DiscardHandler)}), Clientset: cs},
		Clock:    k.clock, Logger: logger,
	}
	return k
}

// restart starts a new manager process with golden flavor policy golden; it
// keeps no state that matters across a restart (see internal/manager).
func (k *kube) restart(t *testing.T, golden manager.GoldenFlavors) {
	t.Helper()
	m, err := manager.New(manager.Config{PollDuration: time.Hour, Jitter: -1, GoldenFlavors: golden, RefreshInterval: time.Second}, k.deps)
	if err != nil {
		t.Fatal(err)
	}
	k.mgr = m
}

// attest runs one manager round after the node's schedule came due and
// returns the Node as it is then.
func (k *kube) attest(t *testing.T) *corev1.Node {
	t.Helper()
	k.clock.Advance(2 * time.Hour)
	k.mgr.Tick(context.Background())
	n, err := k.cs.CoreV1().Nodes().Get(context.Background(), vmNodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rebaselines counts the manager's re-baselines so far.
func (k *kube) rebaselines() int { return strings.Count(k.log.String(), "golden flavors re-baselined") }

// events lists the notes of the Node's Events with reason.
// lastReport is the report the manager last acted on, named by the Node.
func lastReport(t *testing.T, h *harness, n *corev1.Node) *report.Report {
	t.Helper()
	id := n.Annotations[cluster.AnnotationLastReport]
	if id == "" {
		t.Fatalf("node %s names no report (annotations %v)", n.Name, n.Annotations)
	}
	var rep report.Report
	if err := json.Unmarshal(h.mustDo(t, http.StatusOK, "GET", "/hvs/v2/reports/"+id, nil), &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// mustVerified checks a Verified Node that is not Trusted Compute ready:
// the VM's root file system is its initramfs, not on full-disk encryption,
// so trustedcompute.io/ready stays absent although Secure Boot is on.
func mustVerified(t *testing.T, n *corev1.Node) {
	t.Helper()
	if n.Labels[cluster.LabelStatus] != string(cluster.StatusVerified) {
		t.Fatalf("status label %q, want verified (labels %v, condition %+v)", n.Labels[cluster.LabelStatus], n.Labels, cluster.TrustCondition(n))
	}
	if v, ok := n.Labels[cluster.LabelReady]; ok {
		t.Errorf("ready label %q on a VM without full-disk encryption, want none", v)
	}
	c := cluster.TrustCondition(n)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != cluster.ReasonVerified {
		t.Fatalf("condition %+v, want TrustedAttestation=True Verified", c)
	}
	if !strings.Contains(c.Message, "full-disk encryption absent") {
		t.Errorf("condition message %q does not say why the node is not ready", c.Message)
	}
	if n.Spec.Unschedulable || cluster.InfoOf(n).Tainted {
		t.Errorf("verified node cordoned or tainted: unschedulable=%v taints=%v", n.Spec.Unschedulable, n.Spec.Taints)
	}
}

// mustCordoned checks a failed Node: status, cordon, taint, condition.
func mustCordoned(t *testing.T, n *corev1.Node, status cluster.Status, reason string) {
	t.Helper()
	if !n.Spec.Unschedulable || !cluster.InfoOf(n).Tainted {
		t.Errorf("node not cordoned and tainted: unschedulable=%v taints=%v", n.Spec.Unschedulable, n.Spec.Taints)
	}
	if n.Labels[cluster.LabelStatus] != string(status) || n.Labels[cluster.LabelReady] == "true" {
		t.Errorf("labels %v, want status=%s and no ready", n.Labels, status)
	}
	if c := cluster.TrustCondition(n); c == nil || c.Status != corev1.ConditionFalse || c.Reason != reason {
		t.Errorf("condition %+v, want TrustedAttestation=False %s", c, reason)
	}
}

// eventFor returns the note of an Event with reason about report id.
func (k *kube) eventFor(t *testing.T, reason, id string) string {
	t.Helper()
	notes := clustertest.EventNotes(t, k.cs, vmNodeName, reason)
	for _, note := range notes {
		if strings.Contains(note, id) {
			return note
		}
	}
	t.Errorf("no %s Event names report %s: %q", reason, id, notes)
	return ""
}
