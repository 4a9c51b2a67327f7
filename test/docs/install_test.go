package docs_test

import (
	"bufio"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/graceful"
	"trustedcompute.io/tc/internal/testca"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

// installPage is the install guide. Its ```sh blocks run in order in one
// bash session (set -euo pipefail; a variable set by one block, such as
// PIN, is there in the next) from a working directory that is a checkout
// of the repository (its top-level entries linked), with go, the real
// kubectl and helm (hack/kube-tools.sh) and the product's tcctl on PATH,
// and a KUBECONFIG for a real kube-apiserver (envtest).
//
// The test plays the rest of a cluster (see kubelet): the reader's
// registry, to which the guide pushes the images (go-containerregistry's
// in-memory registry on the loopback); Nodes control-1 and edge-1; the
// StatefulSet, Deployment and DaemonSet controllers; and the kubelet, which
// runs the pods from the pushed images: the verifier, the attestation
// manager (with its ServiceAccount's token, so under the chart's RBAC), and
// on edge-1 the trust agent with a swtpm (EK certificates from swtpm's
// local CA) as its TPM and a node root with the platform's files; it
// serves logs and port forwarding. After the blocks the test checks that
// the manager attested edge-1 on the API server as step 7 says.
// What the reader must bring is mapped as in TestDocumentedCommandsRun:
// the registry's name is the test registry's address, the node's
// /etc/trusted-compute is edge-1's root, the TPM vendors' EK CA bundle is
// swtpm's local CA, and the port-forward's local port 8443 a free port.
const installPage = "docs/install.md"

// installSkips are the blocks of the install guide that do not run, each
// found by a string it contains, with the reason. A skip that matches no
// block fails the test, so the list stays true.
var installSkips = []struct{ contains, why string }{}

// ekCABundle is the file of the TPM vendors' EK CA certificates the guide
// has the reader bring.
const ekCABundle = "tpm-ek-cas.pem"

// edgeUUID is the SMBIOS system UUID of the test's Node edge-1.
const edgeUUID = "4c4c4544-0042-3510-8052-b4c04f595a31"

func TestInstallGuideRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver and the verifier and runs kubectl and helm")
	}
	for _, tool := range []string{"bash", "openssl", "base64", "shred", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it: hack/deps.sh test)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tools := kubeCLIs(t, root)
	t.Setenv("KUBEBUILDER_ASSETS", tools)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	goBuild(t, root, bin, "./cmd/tcctl")
	// The API server must trust the kubelet before it starts (and nothing
	// after this point may need the system's roots).
	ca := testca.New(t, "kubelet CA")
	caFile := filepath.Join(tmp, "kubelet-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", caFile)
	cfg := clustertest.Start(t)
	cs := clustertest.NewClientset(t, cfg)
	kubeconfig := clustertest.Kubeconfig(t, cfg)
	reg := startRegistry(t, filepath.Join(tmp, "images"))
	k := &kubelet{
		t: t, cs: cs, api: cfg, images: reg, setNode: "control-1", dir: filepath.Join(tmp, "pods"),
		nodes: map[string]*node{}, containers: map[string]*container{}, failed: map[string]bool{},
		failures: make(chan string, 8),
	}
	k.serve(ca.ServerCert(t))
	edgeRoot := filepath.Join(tmp, "node")
	edge := edgeNode(t, edgeRoot)
	for _, n := range []struct {
		name, uuid string
		node       *node
	}{
		{"control-1", "4c4c4544-0000-1000-8000-000000000001", &node{root: filepath.Join(tmp, "control-1")}},
		{"edge-1", edgeUUID, edge},
	} {
		if err := k.addNode(t.Context(), n.name, n.uuid, n.node); err != nil {
			t.Fatal(err)
		}
	}

	work, home := filepath.Join(tmp, "work"), filepath.Join(tmp, "home")
	for _, d := range []string{work, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	checkout(t, root, work)
	writeEKCABundle(t, filepath.Join(work, ekCABundle))
	pf := freePort(t)
	paths := strings.NewReplacer(
		"registry.example.net", reg.host,
		"/etc/trusted-compute", filepath.Join(edgeRoot, "etc/trusted-compute"),
		"8443:8443", pf+":8443",
		"https://127.0.0.1:8443", "https://127.0.0.1:"+pf,
	)
	sh := startShell(t, work, append([]string{
		"HOME=" + home,
		"PATH=" + bin + ":" + tools + ":" + os.Getenv("PATH"),
		"KUBECONFIG=" + kubeconfig,
		"TMPDIR=" + tmp,
		"LANG=C.UTF-8",
	}, goEnv(t)...))
	sh.abort = k.failures
	var ran, skipped []string
	outputs := map[string]string{} // the output of the blocks that ran, by a command they hold
	used := make([]bool, len(installSkips))
blocks:
	for _, b := range shBlocks(t, filepath.Join(root, installPage)) {
		b.where = strings.TrimPrefix(b.where, root+"/")
		for i, s := range installSkips {
			if strings.Contains(b.text, s.contains) {
				used[i] = true
				skipped = append(skipped, b.where+": "+s.why)
				continue blocks
			}
		}
		start := time.Now()
		// The image step compiles the four release binaries: minutes on a
		// cold build cache (about 7.5 CPU minutes), seconds on a warm one.
		out, err := sh.run(paths.Replace(b.text), 20*time.Minute)
		if err != nil {
			t.Fatalf("%s: the block fails: %v\n%s\n--- output ---\n%s\n--- pods ---\n%s", b.where, err, b.text, out, k.podLogs())
		}
		t.Logf("%s (%.1f s):\n%s", b.where, time.Since(start).Seconds(), out)
		ran = append(ran, b.where)
		for _, c := range []string{"go run ./hack/image", "tcctl host enroll", "kubectl get events --field-selector involvedObject.name=edge-1"} {
			if strings.Contains(b.text, c) {
				outputs[c] = out
			}
		}
	}
	for i, s := range installSkips {
		if !used[i] {
			t.Errorf("the skip for blocks with %q matches no block of %s: remove it", s.contains, installPage)
		}
	}
	t.Logf("ran %d blocks of %s: %s", len(ran), installPage, strings.Join(ran, " "))
	for _, s := range skipped {
		t.Logf("not run: %s", s)
	}
	pin, err := sh.run(`printf '%s\n' "$PIN"`, time.Minute)
	if err != nil {
		t.Fatalf("read PIN: %v", err)
	}
	checkInstalled(t, cs, reg.host, strings.TrimSpace(pin), filepath.Join(edgeRoot, "etc/trusted-compute/agent.creds"))
	checkAttested(t, cs, outputs["kubectl get events --field-selector involvedObject.name=edge-1"])
	checkImages(t, reg, outputs["go run ./hack/image"])
	if out := outputs["tcctl host enroll"]; !strings.Contains(out, edgeUUID) || !strings.Contains(out, "AK NAME") {
		t.Errorf("tcctl host enroll printed no enrollment of %s:\n%s", edgeUUID, out)
	}
}

// checkInstalled checks what the guide's blocks must have left behind.
func checkInstalled(t *testing.T, cs kubernetes.Interface, registryHost, pin, agentCreds string) {
	t.Helper()
	ctx, ns := t.Context(), "trusted-compute"
	if len(pin) != 96 {
		t.Errorf("PIN is %q, want the 96 hex digits of a SHA-384 digest", pin)
	}
	if cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "tc-cms-root", metav1.GetOptions{}); err != nil {
		t.Errorf("the CMS root ConfigMap: %v", err)
	} else if blk, _ := pem.Decode([]byte(cm.Data["cms-root.pem"])); blk == nil {
		t.Errorf("ConfigMap tc-cms-root has no PEM certificate in cms-root.pem: %q", cm.Data["cms-root.pem"])
	} else if sum := sha512.Sum384(blk.Bytes); hex.EncodeToString(sum[:]) != pin {
		t.Errorf("ConfigMap tc-cms-root holds a root with SHA-384 %x, the pin is %s", sum, pin)
	}
	if sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "tc-verifier", metav1.GetOptions{}); err != nil {
		t.Errorf("the verifier's StatefulSet: %v", err)
	} else if img := sts.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, registryHost+"/trusted-compute/verifier:") {
		t.Errorf("the verifier's image is %s, not from site.yaml's registry", img)
	}
	if ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "tc-trust-agent", metav1.GetOptions{}); err != nil {
		t.Errorf("the trust agent's DaemonSet: %v", err)
	} else if sel := ds.Spec.Template.Spec.NodeSelector["trustedcompute.io/enabled"]; sel != "true" {
		t.Errorf("the trust agent runs on nodes selected by %v, want trustedcompute.io/enabled=true", ds.Spec.Template.Spec.NodeSelector)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "tc-attestation-manager", metav1.GetOptions{}); err != nil {
		t.Errorf("the attestation manager's Deployment: %v", err)
	}
	if rc, err := cs.NodeV1().RuntimeClasses().Get(ctx, "kata-qemu", metav1.GetOptions{}); err != nil {
		t.Errorf("the RuntimeClass: %v", err)
	} else if rc.Handler != "kata-qemu" || rc.Scheduling == nil ||
		rc.Scheduling.NodeSelector["node-restriction.kubernetes.io/trustedcompute-ready"] != "true" {
		t.Errorf("RuntimeClass kata-qemu: handler %q, scheduling %+v", rc.Handler, rc.Scheduling)
	}
	natsCreds := func(what string, b []byte) {
		if !strings.HasPrefix(string(b), "-----BEGIN NATS USER JWT-----") {
			t.Errorf("%s is not a NATS credentials file:\n%s", what, b)
		}
	}
	if s, err := cs.CoreV1().Secrets(ns).Get(ctx, "tc-manager-nats", metav1.GetOptions{}); err != nil {
		t.Errorf("the manager's NATS Secret: %v", err)
	} else {
		natsCreds("Secret tc-manager-nats key creds", s.Data["creds"])
	}
	if s, err := cs.CoreV1().Secrets(ns).Get(ctx, "tc-manager-aas", metav1.GetOptions{}); err != nil || len(s.Data["password"]) < 24 {
		t.Errorf("the manager's AAS Secret: %v (password of %d bytes)", err, len(s.Data["password"]))
	}
	if b, err := os.ReadFile(agentCreds); err != nil {
		t.Errorf("the agent's credentials on the node: %v", err)
	} else {
		natsCreds(agentCreds, b)
	}
	if n, err := cs.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{}); err != nil || n.Labels["trustedcompute.io/enabled"] != "true" {
		t.Errorf("node edge-1 is not labelled trustedcompute.io/enabled=true: %v", err)
	}
}

// checkAttested checks that the attestation manager, run by the kubelet
// with its ServiceAccount's token (so with the chart's RBAC), attested
// edge-1 on the real API server as the guide's step 7 promises, that the
// watch block showed it, and that it acted on the guide's onboard request
// and cleared it.
func checkAttested(t *testing.T, cs kubernetes.Interface, watched string) {
	t.Helper()
	ctx, ns := t.Context(), "trusted-compute"
	var (
		n    *corev1.Node
		reqs map[string]string
		err  error
	)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		n, err = cs.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("node edge-1: %v", err)
		}
		if reqs, err = cluster.NewOnboardRequests(cs, ns, "").List(ctx); err != nil {
			t.Fatalf("onboard requests: %v", err)
		}
		if (n.Labels[cluster.LabelStatus] == string(cluster.StatusVerified) && reqs["edge-1"] == "") || time.Now().After(deadline) {
			break
		}
	}
	if got := n.Labels[cluster.LabelStatus]; got != string(cluster.StatusVerified) {
		t.Errorf("edge-1 has %s=%q, want %s", cluster.LabelStatus, got, cluster.StatusVerified)
	}
	if got := n.Labels[cluster.LabelReady]; got != "true" {
		t.Errorf("edge-1 (Secure Boot on, root on dm-crypt) has %s=%q, want true", cluster.LabelReady, got)
	}
	if c := cluster.TrustCondition(n); c == nil || c.Status != corev1.ConditionTrue || c.Reason != cluster.ReasonVerified {
		t.Errorf("edge-1's condition %s is %+v, want True, reason %s", cluster.ConditionTrustedAttestation, c, cluster.ReasonVerified)
	}
	if n.Annotations[cluster.AnnotationLastReport] == "" {
		t.Errorf("edge-1 has no annotation %s", cluster.AnnotationLastReport)
	}
	if n.Spec.Unschedulable || slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == cluster.TaintUntrusted }) {
		t.Errorf("verified edge-1 is cordoned or tainted: unschedulable %v, taints %v", n.Spec.Unschedulable, n.Spec.Taints)
	}
	if reqs["edge-1"] != "" {
		t.Errorf("the manager left the guide's onboard request for edge-1: %q", reqs["edge-1"])
	}
	for _, reason := range []string{cluster.ReasonVerified, cluster.ReasonOnboarded} {
		if len(clustertest.EventNotes(t, cs, "edge-1", reason)) == 0 {
			t.Errorf("no %s Event about edge-1: %v", reason, clustertest.NodeEvents(t, cs, "edge-1"))
		}
	}
	// The watch block's node line carries both labels as columns, and the
	// events list the Verified Event.
	if !regexp.MustCompile(`(?m)^edge-1\s.*\sverified\s+true\s*$`).MatchString(watched) || !strings.Contains(watched, cluster.ReasonVerified) {
		t.Errorf("the watch block does not show edge-1 verified and ready with a Verified Event:\n%s", watched)
	}
}

// kubeCLIs returns the directory holding kubectl and helm: KUBEBUILDER_ASSETS
// or what hack/kube-tools.sh prints. Without them the test skips, or fails
// in CI (CI=true) and when TC_TEST_REQUIRE names kube.
func kubeCLIs(t *testing.T, root string) string {
	t.Helper()
	dir, why := os.Getenv("KUBEBUILDER_ASSETS"), ""
	if dir == "" {
		out, err := exec.Command(filepath.Join(root, "hack/kube-tools.sh")).Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir = lines[len(lines)-1]
		if err != nil {
			why = fmt.Sprintf("hack/kube-tools.sh: %v", err)
		}
	}
	for _, tool := range []string{"kubectl", "helm"} {
		if fi, err := os.Stat(filepath.Join(dir, tool)); why == "" && (err != nil || fi.Mode()&0o111 == 0) {
			why = fmt.Sprintf("no %s in %s (hack/kube-tools.sh kubectl helm builds it; make test does)", tool, dir)
		}
	}
	switch {
	case why == "":
		return dir
	case os.Getenv("CI") == "true" || clustertest.Required():
		t.Fatalf("kubectl and helm are required in CI: %s", why)
	default:
		t.Skipf("kubectl and helm are missing (in CI this fails): %s", why)
	}
	return ""
}

// shell is one bash session that runs blocks one after the other.
type shell struct {
	t      *testing.T
	abort  <-chan string // a reason to stop waiting for a block
	dir    string
	stdin  *os.File
	lines  chan string
	exited chan struct{}
	n      int
}

func startShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-euo", "pipefail")
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = inR.Close()
	_ = outW.Close()
	s := &shell{t: t, dir: t.TempDir(), stdin: inW, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		_ = outR.Close()
	}()
	go func() { _ = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = inW.Close()
		// The group: bash and what it left in the background.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		graceful.Stop(cmd.Process, s.exited, 10*time.Second)
	})
	return s
}

// run sources script in the session and returns its output; an error when
// the session ended (a command failed) or the block took too long.
func (s *shell) run(script string, timeout time.Duration) (string, error) {
	s.n++
	file := filepath.Join(s.dir, fmt.Sprintf("block-%d.sh", s.n))
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		return "", err
	}
	marker := fmt.Sprintf("__block_%d_done__", s.n)
	if _, err := fmt.Fprintf(s.stdin, "source %q </dev/null\necho; echo %s\n", file, marker); err != nil {
		return "", fmt.Errorf("the session ended: %w", err)
	}
	var out strings.Builder
	deadline := time.After(timeout)
	for {
		select {
		case l := <-s.lines:
			if l == marker {
				return strings.TrimSuffix(out.String(), "\n\n") + "\n", nil
			}
			out.WriteString(l + "\n")
		case <-s.exited:
			time.Sleep(100 * time.Millisecond) // the last lines
			for len(s.lines) > 0 {
				out.WriteString(<-s.lines + "\n")
			}
			return out.String(), fmt.Errorf("a command failed and ended the session")
		case <-deadline:
			return out.String(), fmt.Errorf("not done after %v", timeout)
		case why := <-s.abort:
			return out.String(), fmt.Errorf("the cluster cannot do what the block waits for: %s", why)
		}
	}
}

// TestTheShellSessionKeepsStateAndStopsAtAFailure plays the session on its
// own: a variable set by one block is there in the next, and a failing
// command fails its block.
func TestTheShellSessionKeepsStateAndStopsAtAFailure(t *testing.T) {
	sh := startShell(t, t.TempDir(), []string{"PATH=" + os.Getenv("PATH")})
	if out, err := sh.run("PIN=abc\necho set\n", time.Minute); err != nil || out != "set\n" {
		t.Fatalf("first block: %q, %v", out, err)
	}
	if out, err := sh.run(`printf '%s\n' "$PIN"`, time.Minute); err != nil || out != "abc\n" {
		t.Fatalf("the next block sees PIN as %q (%v), want abc", out, err)
	}
	if out, err := sh.run("echo before\nfalse\necho after\n", time.Minute); err == nil || strings.Contains(out, "after") {
		t.Fatalf("a failing command: %q, %v; want an error and nothing after it", out, err)
	}
}
