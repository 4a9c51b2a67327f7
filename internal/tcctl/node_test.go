package tcctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

var nodeSerial atomic.Int64

// nodeName is unique in the API server all tests of the binary share.
func nodeName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nodeSerial.Add(1)) }

// TestNodeCommandsReadAndAnnotateRealNodes runs node status and node
// onboard through a kubeconfig against a real kube-apiserver.
func TestNodeCommandsReadAndAnnotateRealNodes(t *testing.T) {
	cfg := clustertest.Start(t)
	cs := clustertest.NewClientset(t, cfg)
	kubeconfig := clustertest.Kubeconfig(t, cfg)
	verified, failed, off := nodeName("verified"), nodeName("failed"), nodeName("off")
	clustertest.Node(verified).Label(cluster.LabelEnabled, "true").Label(cluster.LabelStatus, string(cluster.StatusVerified)).
		Label(cluster.LabelReady, "true").Annotation(cluster.AnnotationHostID, "edge-1").Create(t, cs)
	clustertest.Node(failed).Label(cluster.LabelEnabled, "true").Label(cluster.LabelStatus, string(cluster.StatusAttestationFailed)).
		SystemUUID("6F1F7C1E-2D6B-4B8A-9C3E-5A4D3C2B1A01").Unschedulable().Create(t, cs)
	clustertest.Node(off).Create(t, cs)
	c := newCLI(t)

	t.Run("status lists the enabled nodes with their host id, status, ready and cordon", func(t *testing.T) {
		rows := tableRows(c.must(t, "node", "status", "--kubeconfig", kubeconfig))
		if !slices.Equal(rows[0][:5], []string{"NODE", "HOST ID", "STATUS", "READY", "CORDONED"}) {
			t.Errorf("header %q", rows[0])
		}
		byName := map[string][]string{}
		for _, r := range rows[1:] {
			byName[r[0]] = r
		}
		if got := byName[verified]; !slices.Equal(got[:5], []string{verified, "edge-1", "verified", "yes", "no"}) {
			t.Errorf("verified node row %q", got)
		}
		if got := byName[failed]; !slices.Equal(got[:5], []string{failed, "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01", "attestation-failed", "no", "yes"}) {
			t.Errorf("failed node row %q", got)
		}
		if _, ok := byName[off]; ok {
			t.Errorf("a node without %s=true is listed", cluster.LabelEnabled)
		}
	})
	t.Run("status of a named node that is not enabled says so", func(t *testing.T) {
		var got []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		}
		out := c.must(t, "node", "status", off, "-o", "json", "--kubeconfig", kubeconfig)
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Name != off || got[0].Enabled {
			t.Errorf("status %s: %+v (%v)\n%s", off, got, err, out)
		}
	})
	t.Run("onboard records a request the node cannot write and changes nothing else", func(t *testing.T) {
		ns := nodeName("tc")
		clustertest.Namespace(t, cs, ns)
		c.must(t, "node", "onboard", failed, "--kubeconfig", kubeconfig, "--namespace", ns)
		got, err := cluster.NewOnboardRequests(cs, ns, "").List(context.Background())
		if err != nil || got[failed] == "" {
			t.Errorf("onboard requests in %s = %v, %v; want one for %s", ns, got, err, failed)
		}
		n, err := cs.CoreV1().Nodes().Get(context.Background(), failed, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Annotations[cluster.AnnotationOnboard]; ok {
			t.Errorf("onboard annotated the Node, where the node itself could write: %v", n.Annotations)
		}
		if !n.Spec.Unschedulable || n.Labels[cluster.LabelStatus] != string(cluster.StatusAttestationFailed) {
			t.Error("onboard changed the cordon or the status: that is the manager's job")
		}
		rows := tableRows(c.must(t, "node", "status", failed, "--kubeconfig", kubeconfig, "-n", ns))
		if rows[1][5] != "yes" {
			t.Errorf("status after onboard: %q, want onboard requested", rows[1])
		}
	})
	t.Run("onboard refuses a node that is not enabled", func(t *testing.T) {
		_, _, err := c.run("node", "onboard", off, "--kubeconfig", kubeconfig)
		if err == nil || !strings.Contains(err.Error(), "not enabled") {
			t.Errorf("onboard %s: %v", off, err)
		}
	})
	t.Run("onboard of a missing node names it", func(t *testing.T) {
		_, _, err := c.run("node", "onboard", "no-such-node", "--kubeconfig", kubeconfig)
		if err == nil || !strings.Contains(err.Error(), "no-such-node") || !strings.Contains(err.Error(), "node not found") {
			t.Errorf("onboard of a missing node: %v", err)
		}
	})
	t.Run("a missing kubeconfig is a clear error", func(t *testing.T) {
		_, _, err := c.run("node", "status", "--kubeconfig", filepath.Join(t.TempDir(), "nope"))
		if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
			t.Errorf("missing kubeconfig: %v", err)
		}
	})
}

// TestNodeStatusShowsWhatANodeWroteAsText plays root on a failing node: with
// its own identity it writes its host-id and last-report annotations full
// of terminal controls, to clear its row and print one that says verified,
// ready and not cordoned, or to add a row. node status shows them as quoted
// text: no control byte reaches the terminal, one row a node, and the
// node's columns say what the manager decided.
func TestNodeStatusShowsWhatANodeWroteAsText(t *testing.T) {
	cfg := clustertest.Start(t)
	cs := clustertest.NewClientset(t, cfg)
	kubeconfig := clustertest.Kubeconfig(t, cfg)
	forger := nodeName("forger")
	clustertest.Node(forger).Label(cluster.LabelEnabled, "true").Label(cluster.LabelStatus, string(cluster.StatusAttestationFailed)).
		Annotation(cluster.AnnotationHostID, "edge-7").Unschedulable().Create(t, cs)
	fake := "   edge-7   verified   yes   no   no   r-1"
	forged := map[string]any{
		cluster.AnnotationHostID:     "edge-7\x1b[2K\r" + forger + fake,
		cluster.AnnotationLastReport: "r-1\n" + forger + fake + "\x1b]0;all nodes verified\a\u202e\x7f\u009b",
	}
	if err := clustertest.PatchNode(clustertest.AsNode(t, forger), forger, map[string]any{"metadata": map[string]any{"annotations": forged}}); err != nil {
		t.Fatalf("the node annotates itself: %v", err)
	}
	c := newCLI(t)
	for _, format := range []string{"table", "json", "yaml"} {
		out := c.must(t, "node", "status", forger, "-o", format, "--kubeconfig", kubeconfig)
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }); i >= 0 {
			t.Fatalf("-o %s: %q at %d reaches the terminal:\n%s", format, out[i:min(i+8, len(out))], i, out)
		}
		if format != "table" {
			// Escaped, not changed: the value reads back as the node wrote it.
			var got []struct {
				LastReport string `json:"last_report" yaml:"last_report"`
			}
			if err := yaml.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].LastReport != forged[cluster.AnnotationLastReport] {
				t.Errorf("-o %s reads back as %+v (%v), want the annotation as written:\n%s", format, got, err, out)
			}
			continue
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines for one node, want a header and one row:\n%s", len(lines), out)
		}
		for _, col := range []struct{ name, want string }{{"STATUS", "attestation-failed"}, {"READY", "no"}, {"CORDONED", "yes"}} {
			at := strings.Index(lines[0], col.name)
			if got, _, _ := strings.Cut(lines[1][at:], " "); got != col.want {
				t.Errorf("column %s shows %q, want %q:\n%s", col.name, got, col.want, out)
			}
		}
	}
}
