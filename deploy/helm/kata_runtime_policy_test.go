package helm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/imapolicy"
)

// kataArtifacts are files of kata-deploy's artifacts (kata-static.tar.xz,
// which the image holds under /opt/kata-artifacts) that the trusted-workload
// chart's kernel IMA policy measures on a node: the runtime and hypervisor
// run, the guest kernel, VM image and configuration read.
var kataArtifacts = []struct {
	path string
	exec bool
}{
	{"/opt/kata/bin/containerd-shim-kata-v2", true},
	{"/opt/kata/bin/qemu-system-x86_64", true},
	{"/opt/kata/libexec/virtiofsd", true},
	{"/opt/kata/share/kata-containers/vmlinux-6.12.28-153-confidential", false},
	{"/opt/kata/share/kata-containers/kata-containers-confidential.img", false},
	{"/opt/kata/share/kata-containers/kata-containers-initrd-confidential.img", false},
	{"/opt/kata/share/ovmf/OVMF.fd", false},
	{"/opt/kata/share/defaults/kata-containers/configuration-qemu-snp.toml", false},
}

// TestTheKataRuntimePolicyCoversTheKataAndTrustedVMFiles runs the example
// that makes the runtime policy of the trusted-workload chart's Kata
// artifacts (deploy/helm/examples/kata-runtime-policy/generate.sh) with the
// real tcctl on an artifacts tree laid out as kata-deploy's, merged with a
// node image policy, and appraises the IMA entries a Kata VM start makes
// against it: every one is allowed, and a changed guest kernel is not.
func TestTheKataRuntimePolicyCoversTheKataAndTrustedVMFiles(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	tcctl := filepath.Join(dir, "tcctl")
	if out, err := exec.Command("go", "build", "-o", tcctl, "trustedcompute.io/tc/cmd/tcctl").CombinedOutput(); err != nil {
		t.Fatalf("build tcctl: %v\n%s", err, out)
	}
	artifacts := filepath.Join(dir, "kata-artifacts")
	var entries []appraise.IMAEntry
	for _, f := range kataArtifacts {
		content := []byte("content of " + f.path)
		mode := os.FileMode(0o644)
		if f.exec {
			mode = 0o755
		}
		p := filepath.Join(artifacts, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		entries = append(entries, appraise.IMAEntry{PCR: 10, TemplateHash: sum[:20], Template: "ima-ng", FileHashAlg: "sha256", FileHash: sum[:], Path: f.path})
	}
	kubelet := sha256.Sum256([]byte("kubelet"))
	base := filepath.Join(dir, "node-image.json")
	if err := os.WriteFile(base, []byte(`{"meta":{"version":1},"digests":{"/usr/bin/kubelet":["sha256:`+hex.EncodeToString(kubelet[:])+`"]},"boot_aggregate":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "kata-nodes.json")
	cmd := exec.Command("bash", "examples/kata-runtime-policy/generate.sh", "--artifacts", artifacts, "--base", base, "-o", out)
	cmd.Env = append(os.Environ(), "TCCTL="+tcctl)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := imapolicy.Parse(b)
	if err != nil {
		t.Fatalf("the generated policy does not parse: %v", err)
	}
	c, err := imapolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, appraise.IMAEntry{PCR: 10, TemplateHash: kubelet[:20], Template: "ima-ng", FileHashAlg: "sha256", FileHash: kubelet[:], Path: "/usr/bin/kubelet"})
	if faults := c.Appraise(entries, nil); len(faults) > 0 {
		t.Fatalf("a Kata VM start is not within the policy: %+v", faults)
	}
	changed := entries[3]
	changed.FileHash = make([]byte, sha256.Size)
	faults := c.Appraise([]appraise.IMAEntry{changed}, nil)
	if len(faults) != 1 || faults[0].Name != imapolicy.ImaPolicyDigestMismatch || !strings.Contains(faults[0].Description, "vmlinux") {
		t.Fatalf("a changed guest kernel: faults %+v, want one digest mismatch naming it", faults)
	}
}
