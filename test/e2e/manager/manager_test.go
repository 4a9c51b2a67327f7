// Package manager_test runs the attestation manager end to end against real
// parts: a whole verifier in process (SQLite, embedded NATS, CMS, AAS, HVS), a
// trust agent on swtpm whose TPM went through a real OVMF measured boot, a
// real kube-apiserver + etcd (envtest), and a real gRPC Edge Infrastructure
// Manager that records the status updates.
package manager_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/eim/attestmgrv1"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

const (
	adminPassword = verifiertest.AdminPassword
	hostID        = "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a10"
)

// worlds counts test worlds: each gets its own Node name on the shared API server.
var worlds atomic.Int32

var discard = slog.New(slog.DiscardHandler)

// eimServer records the calls of the attestation manager.
type eimServer struct {
	attestmgrv1.UnimplementedAttestationStatusMgrServiceServer
	mu    sync.Mutex
	calls []*attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest
	auth  []string
}

func (s *eimServer) UpdateInstanceAttestationStatusByHostGuid( //nolint:revive // the name is the generated gRPC method
	ctx context.Context, in *attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest) (*attestmgrv1.UpdateInstanceAttestationStatusByHostGuidResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, in)
	s.auth = append(s.auth, strings.Join(md.Get("authorization"), ","))
	return &attestmgrv1.UpdateInstanceAttestationStatusByHostGuidResponse{}, nil
}

func (s *eimServer) last() (*attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return nil, ""
	}
	return s.calls[len(s.calls)-1], s.auth[len(s.auth)-1]
}

// node is the edge node: swtpm with an EK certificate, measured boot, a root
// file system on LUKS, and a running trust agent.
type node struct {
	name   string
	sw     *tpmtest.Swtpm
	tpm    *agent.NodeTPM
	root   *sandbox.Root
	banks  []string
	cancel context.CancelFunc
	done   chan struct{}
}

// boot replays the firmware log into a freshly started TPM and starts the agent.
func (n *node) boot(t *testing.T, natsURL string, creds []byte, roots *x509.CertPool, bootLog []byte) {
	t.Helper()
	raw, err := tpm.Open(n.sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if n.tpm, err = agent.NewNodeTPM(raw, tpm.AKOptions{}); err != nil {
		t.Fatal(err)
	}
	if n.banks, err = sandbox.ReplayEventLog(n.tpm, bootLog); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if n.root, err = sandbox.NewRoot(dir, hostID, n.name, bootLog); err != nil {
		t.Fatal(err)
	}
	luks := filepath.Join("..", "..", "..", "internal", "measure", "testdata", "root-luks-lvm")
	for _, sub := range []string{"proc/self", "sys/dev", "sys/class/block"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(sub)), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(luks, sub), filepath.Join(dir, filepath.Dir(sub))).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v %s", sub, err, out)
		}
	}
	if err := n.root.MeasureFiles(n.tpm, n.banks, map[string]string{"/usr/bin/kata-runtime": "kata"}); err != nil {
		t.Fatal(err)
	}
	// systemd-cryptsetup measured the fixture's root volume into PCR 15
	// (crypttab tpm2-measure-pcr=yes): disk encryption is measured.
	if err := n.root.MeasureVolumeKey(n.tpm, n.banks, "luks-5f4b3c2a-1e0d-4c8b-9a7f-6e5d4c3b2a19", "5f4b3c2a-1e0d-4c8b-9a7f-6e5d4c3b2a19", []byte("volume key")); err != nil {
		t.Fatal(err)
	}
	// The agent names its Node as the chart's does (the Downward API), and
	// the manager requires it: the name travels in the host facts the
	// quote binds, through the verifier's signed report.
	a, err := agent.New(agent.Config{HostID: hostID, NodeName: n.name}, n.tpm, measure.New(dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := natsbus.Connect(ctx, natsURL, creds, roots, "agent", discard)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		_ = a.Run(ctx, natsbus.Adapt(nc))
		nc.Close()
		_ = raw.Close()
	}()
}

func (n *node) stop() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
		n.cancel = nil
	}
}

type world struct {
	v        *verifier.Verifier
	vt       *verifiertest.Verifier
	roots    *x509.CertPool
	base     string
	cs       kubernetes.Interface
	eim      *eimServer
	clock    *clock.Fake
	mgr      *manager.Manager
	mgrDeps  manager.Deps
	mgrCfg   manager.Config
	node     *node
	nodeName string
	ns       string // the manager's namespace: onboard requests
	creds    []byte
}

func newWorld(t *testing.T, golden manager.GoldenFlavors) *world {
	t.Helper()
	w := &world{clock: clock.NewFake(time.Now()), eim: &eimServer{}, nodeName: fmt.Sprintf("edge-%d", worlds.Add(1))}
	sw := tpmtest.NewWithEKCert(t)
	ekRoots := tpmtest.LocalCAPool(t)
	cs := clustertest.Clientset(t)
	w.cs = cs
	w.ns = w.nodeName + "-tc"
	clustertest.Namespace(t, cs, w.ns)

	// The verifier.
	dataDir := t.TempDir()
	vt := verifiertest.Start(t, dataDir, func(c *verifier.Config) {
		c.Enrollment = verifierEnrollment(ekRoots)
		// The manager's clock jumps hours ahead to make its schedule due;
		// reports must outlive those jumps.
		c.HVS = hvs.Config{ReportValidity: 1000 * time.Hour}
	})
	v := vt.Verifier
	w.v, w.vt, w.base, w.roots = v, vt, vt.Base, vt.Roots

	// The EIM, with a certificate from the same CMS for simplicity.
	cert, err := v.CA().ServerCertificate("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}})))
	attestmgrv1.RegisterAttestationStatusMgrServiceServer(gs, w.eim)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	tokenFile := filepath.Join(t.TempDir(), "eim-token")
	if err := os.WriteFile(tokenFile, []byte("eim-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := eim.NewClient(eim.Config{Address: ln.Addr().String(), CAFile: filepath.Join(dataDir, "cms-root.pem"), TokenFile: tokenFile, ServerName: "localhost"}, discard)
	if err != nil {
		t.Fatal(err)
	}
	notifier := eim.NewNotifier(client, discard)
	nctx, ncancel := context.WithCancel(context.Background())
	go func() { _ = notifier.Run(nctx) }()
	t.Cleanup(ncancel)

	// The node: an enabled Kubernetes Node and its agent.
	clustertest.Node(w.nodeName).Label(cluster.LabelEnabled, "true").SystemUUID(hostID).Create(t, cs)
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), w.nodeName, metav1.DeleteOptions{}) })
	w.creds, err = v.Authority().AgentCredentials(hostID, bus.GrammarTwoPrefixes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w.node = &node{sw: sw, name: w.nodeName}
	w.node.boot(t, v.NATSURL(), w.creds, w.roots, sandbox.BootLogSecureBootOn)
	t.Cleanup(w.node.stop)

	// The manager, with the real REST client, the real Kubernetes adapter and the EIM.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(adminPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	hc, err := hvsclient.New(w.base, w.roots, hvsclient.Credentials{Username: "admin", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	w.mgrCfg = manager.Config{PollDuration: time.Hour, Jitter: -1, GoldenFlavors: golden, RefreshInterval: time.Second, NodeBinding: manager.NodeBindingRequired}
	w.mgrDeps = manager.Deps{
		Verifier: manager.HVSVerifier{Client: hc, Log: discard},
		Nodes: manager.KubeNodes{Nodes: cluster.New(cs, cluster.Options{Logger: discard}), Clientset: cs,
			Requests: cluster.NewOnboardRequests(cs, w.ns, "")},
		Status: notifier, Clock: w.clock, Logger: testLogger(),
	}
	w.restartManager(t)
	return w
}

func verifierEnrollment(roots *x509.CertPool) enroll.Config {
	return enroll.Config{EKRoots: roots, EKIntermediates: roots}
}

func (w *world) restartManager(t *testing.T) {
	t.Helper()
	m, err := manager.New(w.mgrCfg, w.mgrDeps)
	if err != nil {
		t.Fatal(err)
	}
	w.mgr = m
}

func (w *world) stopVerifier() { w.vt.Stop() }

// attest runs one manager round after the node's schedule came due.
func (w *world) attest(t *testing.T) *corev1.Node {
	t.Helper()
	w.clock.Advance(2 * time.Hour)
	w.mgr.Tick(context.Background())
	n, err := w.cs.CoreV1().Nodes().Get(context.Background(), w.nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func condition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == cluster.ConditionTrustedAttestation {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func tainted(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == cluster.TaintUntrusted && t.Effect == corev1.TaintEffectNoSchedule {
			return true
		}
	}
	return false
}

func (w *world) events(t *testing.T, reason string) []string {
	t.Helper()
	return clustertest.EventNotes(t, w.cs, w.nodeName, reason)
}

func (w *world) waitEIM(t *testing.T, want attestmgrv1.AttestationStatus) *attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, auth := w.eim.last(); c != nil && c.GetAttestationStatus() == want {
			if auth != "Bearer eim-test-token" {
				t.Fatalf("EIM call authorization %q", auth)
			}
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, _ := w.eim.last()
	t.Fatalf("EIM never got %v (last call %v)", want, c)
	return nil
}

func mustVerified(t *testing.T, n *corev1.Node, ready bool) {
	t.Helper()
	if n.Labels[cluster.LabelStatus] != "verified" {
		t.Fatalf("status label %q, want verified (labels %v)", n.Labels[cluster.LabelStatus], n.Labels)
	}
	if got := n.Labels[cluster.LabelReady] == "true"; got != ready {
		t.Fatalf("ready label %v, want %v", n.Labels[cluster.LabelReady], ready)
	}
	if c := condition(n); c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("condition %+v, want TrustedAttestation=True", c)
	}
}

func mustCordoned(t *testing.T, n *corev1.Node, status string) {
	t.Helper()
	if !n.Spec.Unschedulable || !tainted(n) {
		t.Fatalf("node not cordoned and tainted: unschedulable=%v taints=%v", n.Spec.Unschedulable, n.Spec.Taints)
	}
	if n.Labels[cluster.LabelStatus] != status || n.Labels[cluster.LabelReady] == "true" {
		t.Fatalf("labels %v, want status=%s and no ready", n.Labels, status)
	}
	if c := condition(n); c == nil || c.Status != corev1.ConditionFalse {
		t.Fatalf("condition %+v, want TrustedAttestation=False", c)
	}
}

// TestManagerEndToEnd walks one node through the whole life the issue lists.
func TestManagerEndToEnd(t *testing.T) {
	w := newWorld(t, manager.EveryBoot)

	// Enabled → registered → baselined → Verified and ready (Secure Boot from
	// the quoted PCR 7 events, root on LUKS).
	n := w.attest(t)
	mustVerified(t, n, true)
	if c := w.waitEIM(t, attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED); c.GetHostGuid() != hostID {
		t.Fatalf("EIM host guid %q", c.GetHostGuid())
	}

	// Root on another Node claims this host's id with that Node's own
	// identity. The verifier's host record binds the id to the first Node:
	// the claim is refused and reported, and this node keeps its verdict.
	thief := w.nodeName + "-thief"
	clustertest.Node(thief).Label(cluster.LabelEnabled, "true").Create(t, w.cs)
	asThief := clustertest.NewClientset(t, clustertest.User(t, "system:node:"+thief, "system:nodes"))
	claim := []byte(`{"metadata":{"annotations":{"` + cluster.AnnotationHostID + `":"` + hostID + `"}}}`)
	if _, err := asThief.CoreV1().Nodes().Patch(context.Background(), thief, types.StrategicMergePatchType, claim, metav1.PatchOptions{}); err != nil {
		t.Fatalf("the node annotates itself: %v", err)
	}
	n = w.attest(t)
	mustVerified(t, n, true)
	tn, err := w.cs.CoreV1().Nodes().Get(context.Background(), thief, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tn.Labels[cluster.LabelStatus] != string(cluster.StatusUnknown) || tn.Labels[cluster.LabelReady] != "" ||
		len(tn.Status.Conditions) != 1 || tn.Status.Conditions[0].Reason != cluster.ReasonHostClaimRefused {
		t.Fatalf("claiming node labels %v conditions %+v: want status unknown, no ready, reason %s",
			tn.Labels, tn.Status.Conditions, cluster.ReasonHostClaimRefused)
	}
	if !slices.ContainsFunc(clustertest.EventNotes(t, w.cs, thief, cluster.ReasonHostClaimRefused), func(note string) bool {
		return strings.Contains(note, w.nodeName)
	}) {
		t.Fatal("no HostClaimRefused event on the claiming node naming the node the host is bound to")
	}
	if err := w.cs.CoreV1().Nodes().Delete(context.Background(), thief, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Tamper: a new executable is measured by IMA → Attestation Failed in IMA.
	if err := w.node.root.MeasureFiles(w.node.tpm, w.node.banks, map[string]string{"/usr/bin/evil": "evil"}); err != nil {
		t.Fatal(err)
	}
	n = w.attest(t)
	mustCordoned(t, n, "attestation-failed")
	failed := w.events(t, cluster.ReasonAttestationFailed)
	if len(failed) != 1 || !strings.Contains(failed[0], "IMA") {
		t.Fatalf("failure events %q, want one naming IMA", failed)
	}
	if c := w.waitEIM(t, attestmgrv1.AttestationStatus_ATTESTATION_STATUS_FAILED); !strings.Contains(c.GetAttestationStatusDetail(), "IMA") {
		t.Fatalf("EIM detail %q", c.GetAttestationStatusDetail())
	}

	// The manager restarts mid-way: the same failure is not acted on twice,
	// and nothing uncordons by itself.
	w.restartManager(t)
	n = w.attest(t)
	mustCordoned(t, n, "attestation-failed")
	if got := w.events(t, cluster.ReasonAttestationFailed); len(got) != 1 {
		t.Fatalf("%d failure events after a restart, want 1", len(got))
	}

	// The node reboots clean and passes again: it stays failed and cordoned,
	// nothing clears a failure by itself.
	w.node.stop()
	w.node.sw.Restart()
	w.node.boot(t, w.v.NATSURL(), w.creds, w.roots, sandbox.BootLogSecureBootOn)
	n = w.attest(t)
	mustCordoned(t, n, "attestation-failed")

	// Root on the node asks for re-onboarding with the node's own identity:
	// the annotation it may write is ignored, the request it may not write.
	asNode := clustertest.NewClientset(t, clustertest.User(t, "system:node:"+w.nodeName, "system:nodes"))
	patch := []byte(`{"metadata":{"annotations":{"` + cluster.AnnotationOnboard + `":"true"}}}`)
	if _, err := asNode.CoreV1().Nodes().Patch(context.Background(), w.nodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.NewOnboardRequests(asNode, w.ns, "").Request(context.Background(), w.nodeName, time.Now()); !apierrors.IsForbidden(err) {
		t.Fatalf("the node writes its onboard request: %v, want forbidden", err)
	}
	n = w.attest(t)
	mustCordoned(t, n, "attestation-failed")

	// The operator re-onboards after the fix: re-baseline, attest, uncordon.
	if err := cluster.NewOnboardRequests(w.cs, w.ns, "tcctl").Request(context.Background(), w.nodeName, time.Now()); err != nil {
		t.Fatal(err)
	}
	n = w.attest(t)
	if n.Spec.Unschedulable || tainted(n) {
		t.Fatalf("not uncordoned after onboarding: unschedulable=%v taints=%v", n.Spec.Unschedulable, n.Spec.Taints)
	}
	mustVerified(t, n, true)
	if len(w.events(t, cluster.ReasonOnboarded)) == 0 {
		t.Fatal("no Onboarded event")
	}

	// Reboot: the TPM resets, firmware measures again; the new reset count
	// in the signed quote triggers a re-baseline and the node stays Verified.
	w.node.stop()
	w.node.sw.Restart()
	w.node.boot(t, w.v.NATSURL(), w.creds, w.roots, sandbox.BootLogSecureBootOn)
	n = w.attest(t)
	mustVerified(t, n, true)

	// Reboot with Secure Boot off: Secure Boot Disabled, checked before trust, cordoned.
	w.node.stop()
	w.node.sw.Restart()
	w.node.boot(t, w.v.NATSURL(), w.creds, w.roots, sandbox.BootLogSecureBootOff)
	n = w.attest(t)
	mustCordoned(t, n, "secure-boot-disabled")
	if len(w.events(t, cluster.ReasonSecureBootDisabled)) != 1 {
		t.Fatal("no Secure Boot Disabled event")
	}

	// The verifier goes away: no false Verified, an event says why.
	w.stopVerifier()
	n = w.attest(t)
	if !n.Spec.Unschedulable || !tainted(n) || n.Labels[cluster.LabelStatus] != "secure-boot-disabled" {
		t.Fatalf("an unreachable verifier changed the node: unschedulable=%v labels=%v", n.Spec.Unschedulable, n.Labels)
	}
	if c := condition(n); c == nil || c.Status != corev1.ConditionUnknown || c.Reason != cluster.ReasonVerifierUnreachable {
		t.Fatalf("condition %+v, want Unknown because the verifier is unreachable", c)
	}
	if len(w.events(t, cluster.ReasonVerifierUnreachable)) == 0 {
		t.Fatal("no event says the verifier is unreachable")
	}

	// Operability: health and the nodes by status on /metrics.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	_ = probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = manager.ServeOps(ctx, addr, manager.NewMetrics(w.mgr), func() error { return nil }, discard)
	}()
	var body []byte
	for i := 0; i < 50; i++ {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(body), `tc_manager_nodes{status="secure-boot-disabled"} 1`) {
		t.Fatalf("metrics lack the node's status:\n%s", body)
	}
}

// testLogger logs the manager's decisions when TC_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("TC_TEST_LOG") == "" {
		return discard
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestGoldenFlavorPolicies boots a different signed kernel command line (PCR
// 9 changes): with firstBoot the node fails in OS and is cordoned; with
// everyBoot, the seed's rule, the new measurements become golden and the node
// stays Verified. That is the trade-off docs/attestation-manager.md describes.
func TestGoldenFlavorPolicies(t *testing.T) {
	otherKernel, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "appraise", "testdata", "ovmf", "sb-on-cmdline2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		policy   manager.GoldenFlavors
		verified bool
	}{
		{manager.FirstBoot, false},
		{manager.EveryBoot, true},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			w := newWorld(t, tt.policy)
			mustVerified(t, w.attest(t), true)
			w.node.stop()
			w.node.sw.Restart()
			w.node.boot(t, w.v.NATSURL(), w.creds, w.roots, otherKernel)
			n := w.attest(t)
			if tt.verified {
				mustVerified(t, n, true)
				return
			}
			mustCordoned(t, n, "attestation-failed")
			if ev := w.events(t, cluster.ReasonAttestationFailed); len(ev) != 1 || !strings.Contains(ev[0], "OS") {
				t.Fatalf("failure events %q, want one naming OS", ev)
			}
		})
	}
}
