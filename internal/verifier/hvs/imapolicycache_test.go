package hvs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"maps"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// withFiles returns bootFiles and files.
func withFiles(files map[string]string) map[string]string {
	out := maps.Clone(bootFiles)
	maps.Copy(out, files)
	return out
}

var (
	kataFile = map[string]string{"/opt/kata/bin/qemu-system-x86_64": "qemu 9.1"}
	cronFile = map[string]string{"/usr/sbin/cron-job": "a job"}
)

// createPolicy creates a policy allowing files and assigns it.
func createPolicy(t *testing.T, e *env, name string, files map[string]string, a store.IMAPolicyAssignments) store.IMAPolicy {
	t.Helper()
	ctx := context.Background()
	p, err := e.svc.CreateIMAPolicy(ctx, name, "", []byte(policyDoc(files)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AssignIMAPolicy(ctx, p.ID, a); err != nil {
		t.Fatal(err)
	}
	return p
}

func automaticGroup(t *testing.T, e *env) string {
	t.Helper()
	g, err := e.st.FlavorGroupByName(context.Background(), flavor.GroupAutomatic)
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// wantIMAPolicyFault checks that the report fails IMA alone with a fault of
// that name whose description names the text.
func wantIMAPolicyFault(t *testing.T, r *report.Report, name, text string) {
	t.Helper()
	wantUntrusted(t, r, []string{string(flavor.PartIMA)}, "IMA:"+name)
	if f := findFault(r, name); f == nil || !strings.Contains(f.Description, text) {
		t.Errorf("fault %s = %+v, want it to name %q", name, f, text)
	}
}

func TestAHostWithARuntimePolicy(t *testing.T) {
	tests := []struct {
		name string
		test func(t *testing.T, e *env, n *node)
	}{
		{"without a policy a new file fails the node, as before", func(t *testing.T, e *env, n *node) {
			n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
			wantUntrusted(t, mustReport(t, e, n.id), []string{"IMA"}, "IMA:"+flavor.FaultImaContainsUnexpectedEntries)
		}},
		{"a new file within the host's policy keeps it trusted", func(t *testing.T, e *env, n *node) {
			createPolicy(t, e, "kata", withFiles(kataFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			wantTrusted(t, mustReport(t, e, n.id))
			n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
			wantTrusted(t, mustReport(t, e, n.id))
		}},
		{"a file outside the policy fails the node and the fault names it", func(t *testing.T, e *env, n *node) {
			createPolicy(t, e, "kata", withFiles(kataFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
			wantTrusted(t, mustReport(t, e, n.id))
			n.measureFile(t, "/usr/sbin/cron-job", "a job")
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
			// The next report of the boot still fails: the appraisal kept
			// from the last report carries the fault.
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
		}},
		{"a group's policy applies and the host's own wins over it", func(t *testing.T, e *env, n *node) {
			createPolicy(t, e, "fleet", withFiles(kataFile), store.IMAPolicyAssignments{GroupIDs: []string{automaticGroup(t, e)}})
			n.measureFile(t, "/usr/sbin/cron-job", "a job")
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
			createPolicy(t, e, "this-host", withFiles(cronFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			wantTrusted(t, mustReport(t, e, n.id))
		}},
		{"after an update the next report uses the new version", func(t *testing.T, e *env, n *node) {
			p := createPolicy(t, e, "kata", withFiles(kataFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			n.measureFile(t, "/usr/sbin/cron-job", "a job")
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
			if _, err := e.svc.UpdateIMAPolicy(context.Background(), p.ID, nil, []byte(policyDoc(withFiles(cronFile)))); err != nil {
				t.Fatal(err)
			}
			wantTrusted(t, mustReport(t, e, n.id))
			if _, err := e.svc.UpdateIMAPolicy(context.Background(), p.Name, nil, []byte(policyDoc(bootFiles))); err != nil {
				t.Fatal(err)
			}
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
		}},
		{"after unassigning the policy the golden log applies again", func(t *testing.T, e *env, n *node) {
			p := createPolicy(t, e, "kata", withFiles(kataFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
			wantTrusted(t, mustReport(t, e, n.id))
			if _, err := e.st.UnassignIMAPolicy(context.Background(), p.ID, store.IMAPolicyAssignments{HostIDs: []string{n.id}}); err != nil {
				t.Fatal(err)
			}
			wantUntrusted(t, mustReport(t, e, n.id), []string{"IMA"}, "IMA:"+flavor.FaultImaContainsUnexpectedEntries)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, "edge-1")
			e := newEnv(t, []*node{n})
			e.baseline(t, n)
			tt.test(t, e, n)
		})
	}
}

// TestAPolicyWhoseSignatureDoesNotVerifyIsNeverUsed plays an attacker who
// can write the database but not sign as the verifier: each forged version
// would allow the file the node measured, and each leaves the IMA part
// untrusted with an ImaPolicyUntrusted fault.
func TestAPolicyWhoseSignatureDoesNotVerifyIsNeverUsed(t *testing.T) {
	permissive := []byte(policyDoc(withFiles(cronFile)))
	canonical, err := parseIMAPolicy(permissive)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		forge func(t *testing.T, e *env, p store.IMAPolicy) store.IMAPolicyVersion
		want  string
	}{
		{"a new document under the signature of the first version", func(t *testing.T, e *env, p store.IMAPolicy) store.IMAPolicyVersion {
			v1, err := e.st.IMAPolicyVersion(context.Background(), p.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			return store.IMAPolicyVersion{PolicyID: p.ID, Version: 2, Document: canonical, Signature: v1.Signature}
		}, "another policy, version or document"},
		{"a document signed by a key the verifier does not trust", func(t *testing.T, e *env, p store.IMAPolicy) store.IMAPolicyVersion {
			other := newFakeCA(t)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			chain, err := other.IssueVerifierSigning(&key.PublicKey, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := report.NewSigner(key, chain)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.SignIMAPolicy([]byte(`{"id":"` + p.ID + `","name":"kata","version":2,"digest":"` + documentDigest(canonical) + `"}`))
			if err != nil {
				t.Fatal(err)
			}
			return store.IMAPolicyVersion{PolicyID: p.ID, Version: 2, Document: canonical, Signature: sig}
		}, "not trusted"},
		{"a document without a signature", func(t *testing.T, e *env, p store.IMAPolicy) store.IMAPolicyVersion {
			return store.IMAPolicyVersion{PolicyID: p.ID, Version: 2, Document: canonical}
		}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, "edge-1")
			e := newEnv(t, []*node{n})
			e.baseline(t, n)
			p := createPolicy(t, e, "kata", bootFiles, store.IMAPolicyAssignments{HostIDs: []string{n.id}})
			n.measureFile(t, "/usr/sbin/cron-job", "a job")
			wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
			if err := e.st.AddIMAPolicyVersion(context.Background(), tt.forge(t, e, p), nil); err != nil {
				t.Fatal(err)
			}
			r := mustReport(t, e, n.id)
			wantIMAPolicyFault(t, r, FaultImaPolicyUntrusted, tt.want)
			if f := findFault(r, FaultImaPolicyUntrusted); f != nil && !strings.Contains(f.Description, `"kata" version 2`) {
				t.Errorf("the fault %q does not name the policy and version", f.Description)
			}
		})
	}
}

func TestOneCompiledPolicyServesEveryHostThatUsesIt(t *testing.T) {
	a, b := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{a, b})
	e.baseline(t, a)
	e.baseline(t, b)
	createPolicy(t, e, "fleet", withFiles(kataFile), store.IMAPolicyAssignments{GroupIDs: []string{automaticGroup(t, e)}})
	for _, n := range []*node{a, b} {
		n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
		wantTrusted(t, mustReport(t, e, n.id))
	}
	if n := e.svc.imaPolicies.len(); n != 1 {
		t.Fatalf("%d compiled policies cached, want 1 shared by both hosts", n)
	}
	refs := map[string]*imapolicy.Compiled{}
	for _, n := range []*node{a, b} {
		hp, err := e.st.HostIMAPolicies(context.Background(), n.id)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := hp.For(automaticGroup(t, e))
		c, err := e.svc.imaPolicy(context.Background(), ref, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		refs[n.id] = c
	}
	if refs[a.id] != refs[b.id] {
		t.Error("the hosts use two copies of one policy")
	}
}

func TestACompiledPolicyIsAppraisedOnlyOverTheNewEntriesOfABoot(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	createPolicy(t, e, "kata", withFiles(kataFile), store.IMAPolicyAssignments{HostIDs: []string{n.id}})
	progress := func() imapolicy.Progress {
		t.Helper()
		p := e.svc.imaPrefixes.byHost[n.id]
		if p == nil || len(p.policies) != 1 {
			t.Fatalf("the boot's IMA prefix keeps no policy appraisal: %+v", p)
		}
		for _, pr := range p.policies {
			if pr.Entries != len(p.entries) {
				t.Fatalf("the appraisal covers %d entries of %d", pr.Entries, len(p.entries))
			}
			return pr
		}
		return imapolicy.Progress{}
	}
	wantTrusted(t, mustReport(t, e, n.id))
	first := progress()
	n.measureFile(t, "/opt/kata/bin/qemu-system-x86_64", "qemu 9.1")
	wantTrusted(t, mustReport(t, e, n.id))
	if got := progress(); got.Entries != first.Entries+1 || e.agent.lastRequest().IMAOffset != first.Entries {
		t.Errorf("after one new file: appraised %d entries (was %d), the read started at %d", got.Entries, first.Entries, e.agent.lastRequest().IMAOffset)
	}
	// After a reboot the log starts over: the last boot's appraisal is
	// not reused, and the file measured in the last boot is gone.
	n.reboot(t)
	n.measureFile(t, "/usr/sbin/cron-job", "a job")
	wantIMAPolicyFault(t, mustReport(t, e, n.id), imapolicy.ImaPolicyFileNotAllowed, "/usr/sbin/cron-job")
	if got := progress(); got.Entries != len(bootFiles)+1 {
		t.Errorf("after a reboot the appraisal covers %d entries, want the new boot's %d", got.Entries, len(bootFiles)+1)
	}
}

func TestThePolicyCacheIsBoundedByTheCompiledSize(t *testing.T) {
	compile := func(files map[string]string) *imapolicy.Compiled {
		p, err := imapolicy.Parse([]byte(policyDoc(files)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := imapolicy.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := compile(kataFile), compile(cronFile)
	c := newIMAPolicyCache(a.SizeBytes() + b.SizeBytes() - 1)
	now := time.Now()
	c.put([32]byte{1}, &cachedPolicy{compiled: a, until: now.Add(time.Hour)})
	c.put([32]byte{2}, &cachedPolicy{compiled: b, until: now.Add(time.Hour)})
	if c.len() != 1 || c.bytes > c.maxBytes {
		t.Fatalf("%d policies of %d bytes cached, bound %d", c.len(), c.bytes, c.maxBytes)
	}
	if _, ok := c.get(make([]byte, 32), now); ok {
		t.Error("a digest never put is found")
	}
	key := [32]byte{2}
	if got, ok := c.get(key[:], now); !ok || got != b {
		t.Error("the policy put last is not the one kept")
	}
	if _, ok := c.get(key[:], now.Add(2*time.Hour)); ok {
		t.Error("a policy is used past its maximum age")
	}
}
