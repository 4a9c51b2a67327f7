package vm_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/test/e2e/vm"
)

// TestARuntimePolicyOnTheRealKernelIMALog boots the trust agent in a QEMU
// VM (OVMF, Secure Boot, swtpm) and has the verifier appraise the real
// kernel's IMA log against a runtime policy made of the VM's known-good log
// (its IMA flavor: the boot_aggregate entry and, under Secure Boot, the
// kernel modules the arch policy measures, such as efivarfs.ko): the
// boot_aggregate is checked against the quoted PCRs 0-9 and each file
// against its digest. The policy keeps the VM trusted; an update without a
// measured file fails it, naming the file.
func TestARuntimePolicyOnTheRealKernelIMALog(t *testing.T) {
	vm.Require(t)
	work, err := os.MkdirTemp("", "tc-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	h := startVerifier(t)
	files, initBin := agentFiles(t, h, work)
	vm.BuildUKI(t, vm.Image{Init: initBin, Files: files, Cmdline: cmdline1}, filepath.Join(work, "signed.efi"))
	m := &machine{dir: work, tpmState: filepath.Join(work, "tpm"), h: h}
	v := m.boot(t, "boot1", filepath.Join(work, "signed.efi"), true, "vars-on.fd")
	if err := v.WaitDial(bootTimeout); err != nil {
		t.Fatal(err)
	}
	m.enroll(t)
	h.mustDo(t, http.StatusCreated, "POST", "/hvs/v2/hosts",
		[]byte(`{"host_name":"tc-vm","connection_string":"nats://`+machineUUID+`","flavorgroup_names":["automatic"]}`))
	m.rebaseline(t)
	if rep := h.report(t, machineUUID); !rep.Trusted() {
		t.Fatalf("the baselined VM is not trusted: %s", describe(rep))
	}

	// The operator makes the policy from the known-good VM's IMA log, as
	// its IMA flavor holds it.
	var flavors flavor.SignedFlavorCollection
	if err := json.Unmarshal(h.mustDo(t, http.StatusOK, "GET", "/hvs/v2/flavors?hostId="+machineUUID+"&flavorParts=IMA", nil), &flavors); err != nil {
		t.Fatal(err)
	}
	var measured []flavor.IMAMeasurement
	for _, sf := range flavors.SignedFlavors {
		if l := sf.Flavor.IMALogs; l != nil {
			measured = append(measured, l.ImaMeasurements...)
		}
	}
	t.Logf("the real kernel's IMA log measured %d entries: %+v", len(measured), measured)
	policy := func(except string) []byte {
		yes := true
		p := &imapolicy.Policy{Meta: imapolicy.Meta{Version: imapolicy.CurrentMetaVersion}, Digests: map[string][]string{}, BootAggregate: &yes}
		for _, e := range measured {
			if e.File != "boot_aggregate" && e.File != except {
				p.Digests[e.File] = append(p.Digests[e.File], e.Measurement)
			}
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	request := func(doc []byte) []byte {
		b, err := json.Marshal(restapi.IMAPolicyRequest{Name: "vm", Policy: doc})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h.mustDo(t, http.StatusCreated, "POST", "/hvs/v2/ima-policies", request(policy("")))
	h.mustDo(t, http.StatusOK, "POST", "/hvs/v2/ima-policies/vm/assign", []byte(`{"host_ids":["`+machineUUID+`"]}`))

	t.Run("the real log and its boot aggregate are within the policy made of it", func(t *testing.T) {
		if rep := h.report(t, machineUUID); !rep.Trusted() {
			t.Fatalf("not trusted against the policy: %s", describe(rep))
		}
	})
	t.Run("a measured file the policy lacks fails IMA and is named", func(t *testing.T) {
		last := ""
		for _, e := range measured {
			if e.File != "boot_aggregate" {
				last = e.File
			}
		}
		if last == "" {
			t.Fatal("the real kernel measured no file")
		}
		h.mustDo(t, http.StatusOK, "PUT", "/hvs/v2/ima-policies/vm", request(policy(last)))
		rep := h.report(t, machineUUID)
		if rep.Trusted() {
			t.Fatalf("trusted against a policy without %s", last)
		}
		found := false
		for _, rule := range rep.TrustInformation.FlavorsTrust["IMA"].Rules {
			for _, f := range rule.Faults {
				if f.Name == imapolicy.ImaPolicyFileNotAllowed && f.File == last {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no %s fault names %s: %s", imapolicy.ImaPolicyFileNotAllowed, last, describe(rep))
		}
	})
}
