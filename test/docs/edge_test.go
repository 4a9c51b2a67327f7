package docs_test

import (
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// edgeNode is Node edge-1 as its kubelet sees it: a swtpm with EK
// certificates from swtpm's local CA as its TPM (/dev/tpmrm0), and below
// root the files the trust agent reads (sandbox.NewRoot: DMI facts with
// edgeUUID, the firmware event log, which is replayed into the TPM as a
// measured boot, an empty IMA log, the Secure Boot variable, a root file
// system on dm-crypt whose volume key systemd-cryptsetup measured into PCR
// 15 and its measure log). The guide installs the agent's credentials below
// root too (/etc/trusted-compute).
func edgeNode(t *testing.T, root string) *node {
	t.Helper()
	sw := tpmtest.NewWithEKCert(t)
	r, err := sandbox.NewRoot(root, edgeUUID, "edge-1", sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WritePlatform(true); err != nil {
		t.Fatal(err)
	}
	// Outside "/" the agent reads the host's mount table as /proc/1/mountinfo.
	mi, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/1/mountinfo"), mi, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "swtpm:unix:" + sw.ServerSock
	firmware, err := tpm.OpenContext(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	banks, err := sandbox.ReplayEventLog(firmware, sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatalf("measured boot: %v", err)
	}
	// systemd-cryptsetup unlocks the root volume with tpm2-measure-pcr=yes
	// (the manager's default diskEncryption: measured).
	if err := r.MeasurePlatformRootVolume(firmware, banks); err != nil {
		t.Fatalf("measure the root volume key: %v", err)
	}
	if err := firmware.Close(); err != nil {
		t.Fatal(err)
	}
	return &node{root: root, devices: map[string]string{"/dev/tpmrm0": spec}}
}

// writeEKCABundle writes the EK CA bundle the reader brings: for edge-1's
// swtpm, the certificates of swtpm's local CA.
func writeEKCABundle(t *testing.T, file string) {
	t.Helper()
	tpmtest.EnsureLocalCA(t)
	var bundle []byte
	for _, f := range []string{tpmtest.LocalCACert, tpmtest.LocalCARootCert} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("swtpm local CA: %v", err)
		}
		bundle = append(bundle, b...)
	}
	if err := os.WriteFile(file, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkout makes work a checkout of the repository at root for the
// guide's commands: each top-level entry of root is linked into it, and
// what the guide writes lands in work.
func checkout(t *testing.T, root, work string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
