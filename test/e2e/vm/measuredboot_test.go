package vm_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/test/e2e/vm"
)

var update = flag.Bool("update", false, "write the event logs of the boots to testdata/")

// machineUUID is the VM's SMBIOS system UUID (QEMU -uuid), and so its host id.
const machineUUID = "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01"

// Kernel command lines of the two signed images. ima_template=ima-ng: the
// Debian kernel's default ima-sig template prints unsigned entries with an
// empty signature field (a trailing space), which internal/appraise refuses
// as IMAUnparsable.
const (
	cmdline1 = "console=ttyS0 quiet ima_template=ima-ng"
	cmdline2 = "console=ttyS0 quiet ima_template=ima-ng tc.e2e=cmdline2"
)

// Bounds per boot. Without KVM a boot to the agent takes 30 s on an idle
// machine and over 2 min at a load average of 20.
const (
	bootTimeout   = 6 * time.Minute
	answerTimeout = 3 * time.Minute
)

// machine is one VM identity (TPM state, UEFI variables, SMBIOS UUID)
// booted again and again with different images and firmware settings.
type machine struct {
	dir      string // short: holds the unix socket
	tpmState string
	h        *harness
}

func (m *machine) boot(t *testing.T, name, uki string, secureBoot bool, vars string) *vm.VM {
	t.Helper()
	v := vm.Boot(t, vm.Options{
		UKI: uki, SecureBoot: secureBoot, Vars: filepath.Join(m.dir, vars),
		TPMState: m.tpmState, UUID: machineUUID, Bus: strings.TrimPrefix(m.h.v.NATSURL(), "tls://"),
		Dir: filepath.Join(m.dir, name), Timeout: bootTimeout + answerTimeout,
	})
	t.Cleanup(v.Stop)
	return v
}

// waitAgent waits until the agent in v dialled the bus and answers HVS: a
// report that is not a connection failure. It returns that report.
func (m *machine) waitAgent(t *testing.T, v *vm.VM, name string) *report.Report {
	t.Helper()
	if err := v.WaitDial(bootTimeout); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%s: agent dialled the bus %s after QEMU started", name, v.TimeToDial().Round(time.Second))
	deadline := time.Now().Add(answerTimeout)
	for {
		rep := m.h.report(t, machineUUID)
		if rep.HostStatus == report.StatusConnected {
			t.Logf("%s: first answered report %s after QEMU started", name, time.Since(v.Started).Round(time.Second))
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the agent does not answer: host status %s, faults %+v", name, rep.HostStatus, rep.Faults)
		}
		time.Sleep(2 * time.Second)
	}
}

// enroll enrolls the VM's AK once its agent answers.
func (m *machine) enroll(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(answerTimeout)
	for {
		status, body := m.h.do(t, "POST", "/hvs/v2/aik-enrollments", "application/json", []byte(`{"host_id":"`+machineUUID+`"}`))
		if status == http.StatusCreated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("enrollment: %d %s", status, body)
		}
		time.Sleep(2 * time.Second) // the agent's subscription may not be up yet
	}
}

func (m *machine) rebaseline(t *testing.T) {
	t.Helper()
	m.h.mustDo(t, http.StatusCreated, "POST", "/hvs/v2/hosts/"+machineUUID+"/rebaseline", []byte(`{}`))
}

func keepEventLog(t *testing.T, v *vm.VM, name string) {
	t.Helper()
	log, err := v.EventLog()
	if err != nil {
		t.Errorf("%s: event log from the console: %v", name, err)
		return
	}
	if !*update {
		return
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".bin"), log, 0o644); err != nil {
		t.Error(err)
	}
}

// Golden flavors: the attestation manager's goldenFlavors policy decides
// when a host's flavors are remade from its own evidence. With everyBoot
// (the seed's default) every reboot is followed by a rebaseline, so a
// different signed image (scenario 4) is accepted as the new golden state and
// only Secure Boot itself (PCR 7, the signer) still protects the node; with
// firstBoot the first boot's flavors stay and the OS part fails on the
// changed PCR until an operator rebaselines. The attestation manager runs
// everyBoot for scenarios 1-2 (it makes the first baseline and re-baselines
// after the reboot) and firstBoot from scenario 3 on (scenario 4 fails in OS
// and is cordoned). Scenario 4 also plays everyBoot at the HVS level: the
// report after POST /hosts/{id}/rebaseline is the everyBoot verdict.
//
// TestMeasuredBootOfTheAgentVM boots the trust agent in a QEMU VM whose OVMF
// firmware measures a signed unified kernel image into a swtpm, and has an
// in-process verifier enroll it and judge its real event logs: the same
// machine is booted five times (Secure Boot on, rebooted, Secure Boot off,
// another signed image, an unsigned image). The agent's bus connection runs
// over the VM's second serial port; there is no guest network. After each
// boot the attestation manager (manager_test.go) judges the VM's Node in a
// real kube-apiserver: Verified (not ready: no full-disk encryption), Verified
// after a re-baseline, Secure Boot Disabled, Attestation Failed in OS, and
// for the unsigned image never Verified (Attestation Failed on an
// unreachable agent), cordoned and tainted from scenario 3 on.
func TestMeasuredBootOfTheAgentVM(t *testing.T) {
	vm.Require(t)
	start := time.Now()
	work, err := os.MkdirTemp("", "tc-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	h := startVerifier(t)
	// The attestation manager starts with the seed's golden flavor policy,
	// everyBoot: it makes the first baseline and re-baselines after a reboot.
	k := startManager(t, h, work)
	k.restart(t, manager.EveryBoot)

	files, initBin := agentFiles(t, h, work)
	ukis := map[string]vm.Image{
		"signed.efi":   {Init: initBin, Files: files, Cmdline: cmdline1},
		"signed2.efi":  {Init: initBin, Files: files, Cmdline: cmdline2},
		"unsigned.efi": {Init: initBin, Files: files, Cmdline: cmdline1, Unsigned: true},
	}
	for name, img := range ukis {
		vm.BuildUKI(t, img, filepath.Join(work, name))
	}
	t.Logf("verifier, binaries and images ready after %s", time.Since(start).Round(time.Second))
	m := &machine{dir: work, tpmState: filepath.Join(work, "tpm"), h: h}
	uki := func(name string) string { return filepath.Join(work, name) }

	var first *report.Report
	ok := t.Run("a Secure Boot VM enrolls and its first baseline is trusted", func(t *testing.T) {
		v := m.boot(t, "boot1", uki("signed.efi"), true, "vars-on.fd")
		if err := v.WaitDial(bootTimeout); err != nil {
			t.Fatal(err)
		}
		t.Logf("boot1: agent dialled the bus %s after QEMU started", v.TimeToDial().Round(time.Second))
		m.enroll(t)
		t.Logf("boot1: enrolled (swtpm EK certificate, credential activation) %s after QEMU started", time.Since(v.Started).Round(time.Second))
		// The manager registers the host of the enabled Node, finds no
		// flavors of it, baselines PLATFORM, OS and IMA and attests.
		n := k.attest(t)
		mustVerified(t, n)
		if got := k.rebaselines(); got != 1 {
			t.Errorf("the manager re-baselined %d times, want once (the first baseline)", got)
		}
		if note := k.eventFor(t, cluster.ReasonVerified, n.Annotations[cluster.AnnotationLastReport]); note != "" {
			t.Logf("boot1: node %s verified by the manager (%s) %s after QEMU started", vmNodeName, note, time.Since(v.Started).Round(time.Second))
		}
		first = h.report(t, machineUUID)
		if !first.Trusted() {
			t.Fatalf("the first report of a freshly baselined VM is not trusted: %s", describe(first))
		}
		if !first.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
			t.Errorf("secure_boot_enabled is false after a Secure Boot boot: %s", describe(first))
		}
		if got := first.HostInfo.HardwareUUID; !strings.EqualFold(got, machineUUID) {
			t.Errorf("hardware_uuid %q, want the SMBIOS UUID %s", got, machineUUID)
		}
		t.Logf("boot1: trusted report %s after QEMU started", time.Since(v.Started).Round(time.Second))
		keepEventLog(t, v, "sb-on")
	})
	if !ok {
		return
	}

	ok = t.Run("a reboot of the same VM is noticed, rebaselined and trusted", func(t *testing.T) {
		since := time.Now().UTC()
		v := m.boot(t, "boot2", uki("signed.efi"), true, "vars-on.fd")
		m.waitAgent(t, v, "boot2")
		// The agent's boot event makes HVS attest at once, so the report
		// that saw the reset count change may be that one, not ours.
		reps := m.reportsSince(t, since)
		rebooted := false
		for _, r := range reps {
			if r.Rebooted && r.ResetCount != first.ResetCount {
				rebooted = true
			}
		}
		if !rebooted {
			t.Errorf("no report since the reboot has rebooted=true and a reset count other than %d: %d reports", first.ResetCount, len(reps))
		}
		rep := h.report(t, machineUUID)
		if rep.ResetCount == first.ResetCount {
			t.Errorf("reset count %d did not change across the reboot", rep.ResetCount)
		}
		if !rep.Trusted() {
			t.Errorf("the same image, booted again, is not trusted: %s", describe(rep))
		}
		// everyBoot: the manager sees the new reset count in its fresh
		// quote, re-baselines and the node stays Verified.
		before := k.rebaselines()
		n := k.attest(t)
		mustVerified(t, n)
		if got := k.rebaselines(); got != before+1 {
			t.Errorf("the manager re-baselined %d times after the reboot, want once", got-before)
		}
		if r := lastReport(t, h, n); r.ResetCount == first.ResetCount || !r.Trusted() {
			t.Errorf("the manager's report after the reboot: %s, want trusted with a reset count other than %d", describe(r), first.ResetCount)
		}
		if rep := h.report(t, machineUUID); !rep.Trusted() {
			t.Errorf("not trusted after the manager's rebaseline: %s", describe(rep))
		}
		t.Logf("boot2: verified by the manager after its rebaseline %s after QEMU started", time.Since(v.Started).Round(time.Second))
		keepEventLog(t, v, "sb-on-reboot")
	})
	if !ok {
		return
	}

	// From here the manager runs with goldenFlavors firstBoot (an operator's
	// setting; a restart loses nothing that matters): the first boot's
	// flavors stay. With everyBoot it would re-baseline after boot 3 (the
	// verdict would still be Secure Boot Disabled, PCR 7 is read first) and
	// after boot 4, accepting the other signed image: that is shown at the
	// verifier level in scenario 4 and by the manager in test/e2e/manager
	// (TestGoldenFlavorPolicies).
	k.restart(t, manager.FirstBoot)

	t.Run("Secure Boot off is reported and fails the PLATFORM flavor", func(t *testing.T) {
		v := m.boot(t, "boot3", uki("signed.efi"), false, "vars-off.fd")
		m.waitAgent(t, v, "boot3")
		rep := h.report(t, machineUUID)
		if rep.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
			t.Errorf("secure_boot_enabled is true with Secure Boot off: %s", describe(rep))
		}
		if rep.Trusted() || !slices.Contains(rep.FailedParts(), "PLATFORM") {
			t.Errorf("want PLATFORM untrusted against the Secure Boot flavors: %s", describe(rep))
		}
		if !hasPCRFault(rep, "PLATFORM", 7) {
			t.Errorf("no PLATFORM fault names PCR 7: %s", describe(rep))
		}
		t.Logf("boot3: %s; failed parts %v, %s after QEMU started", faultSummary(rep), rep.FailedParts(), time.Since(v.Started).Round(time.Second))
		// The manager: Secure Boot Disabled, cordoned and tainted.
		n := k.attest(t)
		mustCordoned(t, n, cluster.StatusSecureBootDisabled, cluster.ReasonSecureBootDisabled)
		if r := lastReport(t, h, n); r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
			t.Errorf("the manager acted on a report with Secure Boot on: %s", describe(r))
		}
		if note := k.eventFor(t, cluster.ReasonSecureBootDisabled, n.Annotations[cluster.AnnotationLastReport]); note != "" {
			t.Logf("boot3: node %s cordoned: %s", vmNodeName, note)
		}
		keepEventLog(t, v, "sb-off")
	})

	t.Run("another signed image fails the OS flavor until rebaselined", func(t *testing.T) {
		v := m.boot(t, "boot4", uki("signed2.efi"), true, "vars-on.fd")
		m.waitAgent(t, v, "boot4")
		// firstBoot golden policy: the flavors of the first boot stay.
		rep := h.report(t, machineUUID)
		if rep.Trusted() || !slices.Contains(rep.FailedParts(), "OS") {
			t.Errorf("want OS untrusted after a kernel command line change: %s", describe(rep))
		}
		if !hasPCRFault(rep, "OS", 9) {
			t.Errorf("no OS fault names PCR 9 (command line and initrd): %s", describe(rep))
		}
		if slices.Contains(rep.FailedParts(), "PLATFORM") {
			t.Errorf("PLATFORM untrusted although firmware and signer are the same: %s", describe(rep))
		}
		if !rep.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
			t.Errorf("secure_boot_enabled is false: %s", describe(rep))
		}
		t.Logf("boot4: %s; failed parts %v", faultSummary(rep), rep.FailedParts())
		// The manager (firstBoot) does not re-baseline: Attestation Failed
		// in OS, on a report whose OS fault names PCR 9, cordoned.
		before := k.rebaselines()
		n := k.attest(t)
		mustCordoned(t, n, cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
		if got := k.rebaselines(); got != before {
			t.Errorf("the firstBoot manager re-baselined %d times", got-before)
		}
		if r := lastReport(t, h, n); !hasPCRFault(r, "OS", 9) || slices.Contains(r.FailedParts(), "PLATFORM") {
			t.Errorf("the manager's report: %s, want an OS fault naming PCR 9 and PLATFORM trusted", describe(r))
		}
		if note := k.eventFor(t, cluster.ReasonAttestationFailed, n.Annotations[cluster.AnnotationLastReport]); note != "" {
			if !strings.Contains(note, "OS") {
				t.Errorf("the failure Event does not name OS: %q", note)
			}
			t.Logf("boot4: node %s cordoned: %s", vmNodeName, note)
		}
		// everyBoot golden policy: a rebaseline accepts whatever booted
		// (done here by hand at the verifier level; the node stays cordoned
		// until an operator re-onboards it).
		m.rebaseline(t)
		if rep := h.report(t, machineUUID); !rep.Trusted() {
			t.Errorf("not trusted after a rebaseline: %s", describe(rep))
		}
		t.Logf("boot4: trusted after rebaseline %s after QEMU started", time.Since(v.Started).Round(time.Second))
		keepEventLog(t, v, "sb-on-cmdline2")
	})

	t.Run("an unsigned image never runs the agent and the VM is unreachable", func(t *testing.T) {
		v := m.boot(t, "boot5", uki("unsigned.efi"), true, "vars-on.fd")
		// OVMF refuses the image (EFI_SECURITY_VIOLATION, "Access Denied"),
		// then its shell (also unsigned), and stops at "No bootable option".
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		defer cancel()
		if err := v.WaitConsole(ctx, "No bootable option or device was found"); err != nil {
			t.Fatalf("boot5: the firmware did not give up: %v", err)
		}
		if err := v.WaitConsole(ctx, "Access Denied"); err != nil {
			t.Errorf("boot5: the firmware did not deny the unsigned image: %v", err)
		}
		t.Logf("boot5: the firmware refused the image %s after QEMU started", time.Since(v.Started).Round(time.Second))
		if err := v.WaitDial(5 * time.Second); err == nil {
			t.Fatal("the agent of an unsigned image dialled the bus")
		}
		rep := h.report(t, machineUUID)
		if rep.Trusted() {
			t.Fatalf("a VM whose agent never ran is trusted: %s", describe(rep))
		}
		if rep.HostStatus != report.StatusConnectionFailure && rep.HostStatus != report.StatusConnectionTimeout {
			t.Errorf("host status %s, want %s or %s", rep.HostStatus, report.StatusConnectionFailure, report.StatusConnectionTimeout)
		}
		t.Logf("boot5: %s, %s; %s after QEMU started", rep.HostStatus, faultSummary(rep), time.Since(v.Started).Round(time.Second))
		// The manager: the verifier answers, the agent does not, so this is
		// no VerifierUnreachable (Pending) but a report that is not
		// trusted: Attestation Failed, never Verified, still cordoned.
		n := k.attest(t)
		if n.Labels[cluster.LabelStatus] == string(cluster.StatusVerified) {
			t.Fatalf("the node of a VM whose agent never ran is verified: labels %v", n.Labels)
		}
		mustCordoned(t, n, cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
		if r := lastReport(t, h, n); r.HostStatus != report.StatusConnectionFailure && r.HostStatus != report.StatusConnectionTimeout {
			t.Errorf("the manager acted on a report with host status %s, want %s or %s", r.HostStatus, report.StatusConnectionFailure, report.StatusConnectionTimeout)
		}
		if note := k.eventFor(t, cluster.ReasonAttestationFailed, n.Annotations[cluster.AnnotationLastReport]); note != "" {
			t.Logf("boot5: node %s: %s; condition %+v", vmNodeName, note, cluster.TrustCondition(n))
		}
	})
	t.Logf("whole test: %s", time.Since(start).Round(time.Second))
}

// reportsSince lists the machine's reports created since t0.
func (m *machine) reportsSince(t *testing.T, t0 time.Time) []report.Report {
	t.Helper()
	q := url.Values{"hostId": {machineUUID}, "fromDate": {t0.Format(time.RFC3339Nano)}}
	body := m.h.mustDo(t, http.StatusOK, "GET", "/hvs/v2/reports?"+q.Encode(), nil)
	var list struct {
		Reports []report.Report `json:"reports"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	return list.Reports
}

// hasPCRFault reports whether a rule of part has a fault naming PCR pcr.
func hasPCRFault(r *report.Report, part string, pcr int) bool {
	for _, f := range partFaults(r)[part] {
		if f.PCRIndex != nil && *f.PCRIndex == pcr {
			return true
		}
	}
	return false
}

func faultSummary(r *report.Report) string {
	var out []string
	for _, f := range r.Faults {
		out = append(out, f.Name)
	}
	for part, fs := range partFaults(r) {
		for _, f := range fs {
			s := part + ":" + f.Name
			if f.PCRIndex != nil {
				s += fmt.Sprintf("(PCR %d %s)", *f.PCRIndex, f.PCRBank)
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return "faults " + strings.Join(slices.Compact(out), ", ")
}

// agentFiles builds the trust agent's initramfs files for host machineUUID
// (its bus credentials, the CMS root, its configuration and the agent,
// with the paths they have in the VM) and its init.
func agentFiles(t *testing.T, h *harness, work string) (files map[string]string, initBin string) {
	t.Helper()
	status, creds := h.do(t, "POST", "/aas/v1/credentials", "application/json",
		[]byte(`{"type":"TA","parameters":{"host-id":"`+machineUUID+`"}}`))
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("agent credentials: status %d", status) // the body holds a secret
	}
	natsURL, err := url.Parse(h.v.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	files = map[string]string{
		"/etc/trusted-compute/agent.creds":  writeFile(t, work, "agent.creds", creds, 0o600),
		"/etc/trusted-compute/cms-root.pem": writeFile(t, work, "cms-root.pem", h.rootPEM, 0o644),
		"/etc/trusted-compute/agent.yaml": writeFile(t, work, "agent.yaml", []byte(fmt.Sprintf(`tpm: device
nats:
  url: %s
  creds_file: /etc/trusted-compute/agent.creds
  ca_file: /etc/trusted-compute/cms-root.pem
  serial_device: /dev/ttyS1
`, natsURL.String())), 0o644),
	}
	bin := filepath.Join(work, "bin")
	files["/bin/trust-agent"] = vm.GoBuild(t, bin, "cmd/trust-agent")
	return files, vm.GoBuild(t, bin, "hack/vmboot/agentinit")
}

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// describe is a short account of a report for failure messages.
func describe(r *report.Report) string {
	b, _ := json.Marshal(struct {
		Status string                      `json:"host_status"`
		Faults []appraise.Fault            `json:"faults,omitempty"`
		Parts  map[string][]appraise.Fault `json:"part_faults,omitempty"`
		Failed []string                    `json:"failed_parts,omitempty"`
		Reboot bool                        `json:"rebooted"`
		RC     uint32                      `json:"reset_count"`
	}{r.HostStatus, r.Faults, partFaults(r), r.FailedParts(), r.Rebooted, r.ResetCount})
	return string(b)
}

func partFaults(r *report.Report) map[string][]appraise.Fault {
	out := map[string][]appraise.Fault{}
	for p, pt := range r.TrustInformation.FlavorsTrust {
		for _, rr := range pt.Rules {
			out[string(p)] = append(out[string(p)], rr.Faults...)
		}
	}
	return out
}
