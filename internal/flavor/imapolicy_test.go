package flavor

import (
	"encoding/hex"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/imapolicy"
)

// compiledPolicy compiles a runtime policy allowing the given entries, with
// the boot_aggregate entry not checked (the test host's is not computed
// from its PCRs).
func compiledPolicy(t testing.TB, allowed ...appraise.IMAEntry) *imapolicy.Compiled {
	t.Helper()
	no := false
	p := &imapolicy.Policy{Meta: imapolicy.Meta{Version: 1}, Digests: map[string][]string{}, BootAggregate: &no}
	for _, e := range allowed {
		p.Digests[e.Path] = append(p.Digests[e.Path], e.FileHashAlg+":"+hex.EncodeToString(e.FileHash))
	}
	c, err := imapolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestImaPolicyMatches(t *testing.T) {
	ca := newPKI(t, "ima policy")
	host := defaultHost()
	golden := ca.signAll(t, goldenFlavors(t, host, "g"))
	var noIMA []SignedFlavor
	for _, sf := range golden {
		if sf.Flavor.Meta.Description.FlavorPart != PartIMA {
			noIMA = append(noIMA, sf)
		}
	}
	withoutIMAPolicy := automatic()
	withoutIMAPolicy.MatchPolicies = nil
	for _, p := range automatic().MatchPolicies {
		if p.FlavorPart != PartIMA {
			withoutIMAPolicy.MatchPolicies = append(withoutIMAPolicy.MatchPolicies, p)
		}
	}
	kata := imaEntry("/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
	cron := imaEntry("/usr/sbin/cron-job", "a job")
	changedKubelet := imaEntry("/usr/bin/kubelet", "kubelet v2")
	allowAll := append(append([]appraise.IMAEntry{}, host.ima...), kata)

	for _, tc := range []struct {
		name      string
		group     Group
		flavors   []SignedFlavor
		extra     []appraise.IMAEntry
		policy    *imapolicy.Compiled
		unreplay  bool
		wantTrust bool
		wantFault string
		wantFile  string
	}{
		{name: "without a policy a file measured after the golden log fails the node", group: automatic(), flavors: golden,
			extra: []appraise.IMAEntry{kata}, wantFault: FaultImaContainsUnexpectedEntries},
		{name: "with a policy a new file within the policy keeps the node trusted", group: automatic(), flavors: golden,
			extra: []appraise.IMAEntry{kata}, policy: compiledPolicy(t, allowAll...), wantTrust: true},
		{name: "with a policy a file outside it fails the node and is named", group: automatic(), flavors: golden,
			extra: []appraise.IMAEntry{kata, cron}, policy: compiledPolicy(t, allowAll...),
			wantFault: imapolicy.ImaPolicyFileNotAllowed, wantFile: cron.Path},
		{name: "with a policy a changed digest fails the node and is named", group: automatic(), flavors: golden,
			extra: []appraise.IMAEntry{changedKubelet}, policy: compiledPolicy(t, allowAll...),
			wantFault: imapolicy.ImaPolicyDigestMismatch, wantFile: changedKubelet.Path},
		{name: "a policy applies when the group has no IMA match policy", group: withoutIMAPolicy, flavors: noIMA,
			extra: []appraise.IMAEntry{cron}, policy: compiledPolicy(t, allowAll...),
			wantFault: imapolicy.ImaPolicyFileNotAllowed, wantFile: cron.Path},
		{name: "a policy applies when the host has no IMA flavor", group: automatic(), flavors: noIMA,
			policy: compiledPolicy(t, allowAll...), wantTrust: true},
		{name: "an IMA log that did not replay is never trusted with a policy", group: automatic(), flavors: golden,
			policy: compiledPolicy(t, allowAll...), unreplay: true, wantFault: FaultImaEventLogMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := host
			h.ima = append(append([]appraise.IMAEntry{}, host.ima...), tc.extra...)
			facts := h.facts()
			facts.IMAPolicy = tc.policy
			if tc.unreplay {
				facts.IMAReplayed, facts.IMAEntries = false, nil
			}
			ti, err := Evaluate(tc.group, tc.flavors, facts, ca.roots, now)
			if err != nil {
				t.Fatal(err)
			}
			if ti.Overall != tc.wantTrust || ti.FlavorsTrust[PartIMA].Trust != tc.wantTrust {
				t.Fatalf("overall %v, IMA part %+v; want trust %v", ti.Overall, ti.FlavorsTrust[PartIMA], tc.wantTrust)
			}
			if tc.wantFault == "" {
				return
			}
			rule := RuleImaPolicyMatches
			if tc.policy == nil {
				rule = RuleImaEventLogEquals
			}
			faults := findFaults(ti, PartIMA, rule, tc.wantFault)
			if len(faults) != 1 {
				t.Fatalf("%s faults of %s: %+v, want one; part %+v", tc.wantFault, rule, faults, ti.FlavorsTrust[PartIMA])
			}
			if faults[0].File != tc.wantFile {
				t.Errorf("the fault names %q, want %q", faults[0].File, tc.wantFile)
			}
			if tc.policy != nil && tc.wantFile != "" && !strings.HasPrefix(faults[0].Actual, "sha256:") {
				t.Errorf("the fault's measured digest is %q, want sha256:<hex>", faults[0].Actual)
			}
		})
	}
}

// A steady report appraises only the entries after the kept progress; the
// faults the progress carries stay, so a file outside the policy keeps
// failing the node in every later report of the boot.
func TestImaPolicyProgressCarriesEarlierFaults(t *testing.T) {
	ca := newPKI(t, "ima policy progress")
	host := defaultHost()
	golden := ca.signAll(t, goldenFlavors(t, host, "g"))
	policy := compiledPolicy(t, host.ima...)
	bad := imaEntry("/usr/sbin/dropper", "malware")

	first := host
	first.ima = append(append([]appraise.IMAEntry{}, host.ima...), bad)
	facts := first.facts()
	facts.IMAPolicy = policy
	facts.AppraiseIMAPolicy()
	kept := facts.IMAPolicyProgress
	if kept.Entries != len(first.ima) || len(kept.Faults()) != 1 {
		t.Fatalf("progress after the first report = %+v, want %d entries and one fault", kept, len(first.ima))
	}

	later := first
	later.ima = append(append([]appraise.IMAEntry{}, first.ima...), host.ima[1])
	facts = later.facts()
	facts.IMAPolicy = policy
	facts.IMAPolicyProgress = kept
	ti, err := Evaluate(automatic(), golden, facts, ca.roots, now)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Overall || len(findFaults(ti, PartIMA, RuleImaPolicyMatches, imapolicy.ImaPolicyFileNotAllowed)) != 1 {
		t.Fatalf("a later report of the boot: overall %v, IMA part %+v; want the dropper's fault kept", ti.Overall, ti.FlavorsTrust[PartIMA])
	}

	// A progress of another policy is not trusted: everything is appraised again.
	other := compiledPolicy(t, first.ima...)
	facts.IMAPolicy = other
	if ti, _ := Evaluate(automatic(), golden, facts, ca.roots, now); !ti.Overall {
		t.Errorf("with a policy allowing every file, a progress of another policy still failed the node: %+v", ti.FlavorsTrust[PartIMA])
	}
}
