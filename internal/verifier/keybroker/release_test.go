package keybroker_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/keybroker"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// node is a swtpm with an EK certificate, as an enrolled edge node has.
type node struct {
	id  string
	tpm *tpm.TPM
	ek  *tpm.EK
}

func newNode(t *testing.T, id string) *node {
	t.Helper()
	sw := tpmtest.NewWithEKCert(t)
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	ek, err := tp.PreferredEK()
	if err != nil {
		t.Fatal(err)
	}
	if ek.Certificate == nil {
		t.Fatal("swtpm_setup made no ek certificate")
	}
	return &node{id: id, tpm: tp, ek: ek}
}

// fakeHosts is the host side of the store: hosts, groups, enrollments and
// signed reports (the "JWS" is the report id; fakeReports checks it).
type fakeHosts struct {
	mu          sync.Mutex
	hosts       map[string]store.Host
	groups      map[string]store.FlavorGroup
	disabled    map[string]time.Time
	enrollments map[string]store.AKEnrollment
	reports     map[string][]store.Report // newest first
}

func (f *fakeHosts) HostByID(_ context.Context, id string) (store.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[id]
	if !ok {
		return store.Host{}, fmt.Errorf("host %s: %w", id, store.ErrNotFound)
	}
	return h, nil
}

func (f *fakeHosts) FlavorGroupByID(_ context.Context, id string) (store.FlavorGroup, error) {
	g, ok := f.groups[id]
	if !ok {
		return store.FlavorGroup{}, store.ErrNotFound
	}
	return g, nil
}

func (f *fakeHosts) HostDisabled(_ context.Context, id string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.disabled[id], nil
}

func (f *fakeHosts) AKEnrollmentByHost(_ context.Context, id string) (store.AKEnrollment, error) {
	e, ok := f.enrollments[id]
	if !ok {
		return store.AKEnrollment{}, store.ErrNotFound
	}
	return e, nil
}

func (f *fakeHosts) EKRegistrationByDigest(context.Context, string) (store.EKRegistration, error) {
	return store.EKRegistration{}, store.ErrNotFound
}

func (f *fakeHosts) ListReports(_ context.Context, rf store.ReportFilter) ([]store.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.reports[rf.HostID]
	if rf.Limit > 0 && len(rs) > rf.Limit {
		rs = rs[:rf.Limit]
	}
	return slices.Clone(rs), nil
}

func (f *fakeHosts) ReportByID(_ context.Context, id string) (store.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rs := range f.reports {
		for _, r := range rs {
			if r.ID == id {
				return r, nil
			}
		}
	}
	return store.Report{}, store.ErrNotFound
}

// fakeReports stands for the signing identity check: it knows the reports
// "signed" by the verifier and refuses any other token.
type fakeReports struct {
	mu     sync.Mutex
	signed map[string]*report.Report
}

func (f *fakeReports) Verify(jws string, _ time.Time) (*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.signed[jws]
	if !ok {
		return nil, errors.New("x5c chain is not the verifier's signing identity")
	}
	return r, nil
}

// fakeAttester makes the next report of a host when asked (a fresh quote).
type fakeAttester struct {
	next  func(hostID string) *report.Report
	calls int
	env   *env
}

func (f *fakeAttester) CreateReport(_ context.Context, hostID string) (*report.Report, error) {
	f.calls++
	if f.next == nil {
		return nil, errors.New("agent unreachable")
	}
	r := f.next(hostID)
	f.env.addReport(r)
	return r, nil
}

// env is a broker with fakes around it and real TPMs on the node side.
type env struct {
	hosts     *fakeHosts
	reports   *fakeReports
	attest    *fakeAttester
	broker    *keybroker.Broker
	secrets   *store.Store
	decisions []string
	mu        sync.Mutex
}

func newEnv(t *testing.T, nodes ...*node) *env {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{
		hosts: &fakeHosts{hosts: map[string]store.Host{}, groups: map[string]store.FlavorGroup{"g1": {ID: "g1", Name: "edge"}},
			disabled: map[string]time.Time{}, enrollments: map[string]store.AKEnrollment{}, reports: map[string][]store.Report{}},
		reports: &fakeReports{signed: map[string]*report.Report{}},
		secrets: st,
	}
	e.attest = &fakeAttester{env: e}
	for _, n := range nodes {
		cert, err := x509.ParseCertificate(n.ek.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		e.hosts.hosts[n.id] = store.Host{ID: n.id, FlavorGroupIDs: []string{"g1"}}
		e.hosts.enrollments[n.id] = store.AKEnrollment{HostID: n.id, EKCertificate: n.ek.Certificate, EKPublicSHA256: hex.EncodeToString(sum[:])}
	}
	e.broker = keybroker.New(keybroker.Config{Now: func() time.Time { return now }, Observe: func(outcome, reason string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.decisions = append(e.decisions, outcome+":"+reason)
	}}, keybroker.Deps{Secrets: st, Hosts: e.hosts, Attest: e.attest, Reports: e.reports}, slog.New(slog.DiscardHandler))
	return e
}

func (e *env) addReport(r *report.Report) {
	e.hosts.mu.Lock()
	e.hosts.reports[r.HostID] = append([]store.Report{{ID: r.ID, HostID: r.HostID, CreatedAt: r.Created, JWS: "jws-" + r.ID}}, e.hosts.reports[r.HostID]...)
	e.hosts.mu.Unlock()
	e.reports.mu.Lock()
	e.reports.signed["jws-"+r.ID] = r
	e.reports.mu.Unlock()
}

func (e *env) createSecret(t *testing.T, name, value string, p restapi.SecretPolicy) {
	t.Helper()
	if _, err := e.broker.Create(t.Context(), restapi.SecretRequest{Name: name, Value: []byte(value), Policy: p}); err != nil {
		t.Fatal(err)
	}
}

// verified is a trusted report of the node made age ago, Secure Boot on,
// disk encryption measured, whose platform part matched the node's current
// SHA-256 PCRs 0 to 7 as constants (what a Verified report of it says).
func verified(t *testing.T, n *node, id string, age time.Duration) *report.Report {
	t.Helper()
	pcrs, err := n.tpm.ReadPCRs("sha256", []int{0, 1, 2, 3, 4, 5, 6, 7})
	if err != nil {
		t.Fatal(err)
	}
	var rules []flavor.RuleResult
	for i := range 8 {
		rules = append(rules, flavor.RuleResult{Trusted: true, Rule: flavor.Rule{Name: flavor.RulePcrMatchesConstant,
			ExpectedPCR: &flavor.ExpectedPCR{PCR: flavor.PCR{Index: i, Bank: "SHA256"}, Measurement: hex.EncodeToString(pcrs[i])}}})
	}
	r := &report.Report{ID: id, HostID: n.id, Created: now.Add(-age), Expiration: now.Add(time.Hour),
		TrustInformation: flavor.TrustInformation{Overall: true, FlavorsTrust: map[flavor.Part]flavor.PartTrust{
			flavor.PartPlatform: {Trust: true, Rules: rules}}}}
	r.HostInfo.SecureBoot = report.SecureBoot{FromPCR7: true, Verified: true}
	r.HostInfo.DiskEncryptionStatus = appraise.DiskEncryptionMeasured
	return r
}

func reason(err error) string {
	if err == nil {
		return ""
	}
	return keybroker.ReasonOf(err)
}

// TestAReleaseUnwrapsOnlyOnTheNodeItWasSealedTo plays an attacker who
// captures node A's release (on the wire, or copied off node A) and feeds it
// to node B's TPM: B's TPM cannot import it.
func TestAReleaseUnwrapsOnlyOnTheNodeItWasSealedTo(t *testing.T) {
	a, b := newNode(t, "node-a"), newNode(t, "node-b")
	e := newEnv(t, a, b)
	e.createSecret(t, "volume-key", "the volume key of node a", restapi.SecretPolicy{HostIDs: []string{"node-a", "node-b"}})
	e.addReport(verified(t, a, "ra", time.Minute))

	rel, err := e.broker.Release(t.Context(), "node-a", "volume-key")
	if err != nil {
		t.Fatalf("release to a Verified node refused: %v", err)
	}
	if strings.Contains(string(rel.Ciphertext), "volume key") || strings.Contains(string(rel.Duplicate), "volume key") {
		t.Fatal("the release carries the value in clear")
	}
	got, err := agent.OpenSealed(a.tpm, "node-a", *rel)
	if err != nil || string(got) != "the volume key of node a" {
		t.Fatalf("node a unwraps %q, %v", got, err)
	}
	if got, err := agent.OpenSealed(b.tpm, "node-b", *rel); err == nil {
		t.Fatalf("node b's TPM unwrapped node a's release: %q", got)
	}
	if got, err := agent.OpenSealed(b.tpm, "node-a", *rel); err == nil {
		t.Fatalf("node b's TPM unwrapped node a's release claiming to be node a: %q", got)
	}
}

// TestAPCRBoundReleaseDoesNotUnwrapAfterAPCRChanges plays a node whose
// measured state changes after the release (a different boot path, Secure
// Boot turned off): the TPM refuses to unseal once PCR 7 differs.
func TestAPCRBoundReleaseDoesNotUnwrapAfterAPCRChanges(t *testing.T) {
	a := newNode(t, "node-a")
	e := newEnv(t, a)
	e.createSecret(t, "image-key", "image decryption key", restapi.SecretPolicy{HostIDs: []string{"node-a"}, BindPCRs: true})
	e.addReport(verified(t, a, "ra", time.Minute))

	rel, err := e.broker.Release(t.Context(), "node-a", "image-key")
	if err != nil {
		t.Fatalf("release refused: %v", err)
	}
	if !slices.Equal(rel.PCRs, []int{0, 1, 2, 3, 4, 5, 6, 7}) || len(rel.PCRDigest) != 32 {
		t.Fatalf("release bound to pcrs %v digest %x", rel.PCRs, rel.PCRDigest)
	}
	if got, err := agent.OpenSealed(a.tpm, "node-a", *rel); err != nil || string(got) != "image decryption key" {
		t.Fatalf("in the sealed state: %q, %v", got, err)
	}
	sum := sha256.Sum256([]byte("secure boot disabled"))
	if err := a.tpm.Extend(7, "sha256", sum[:]); err != nil {
		t.Fatal(err)
	}
	if got, err := agent.OpenSealed(a.tpm, "node-a", *rel); err == nil {
		t.Fatalf("unwrapped after PCR 7 changed: %q", got)
	}
}

// TestReleasesAreRefused plays the hosts the broker must refuse, each
// against a real release path (store, policy, sealing) with a real TPM.
func TestReleasesAreRefused(t *testing.T) {
	a := newNode(t, "node-a")
	tests := []struct {
		name       string
		policy     restapi.SecretPolicy
		setup      func(t *testing.T, e *env)
		secret     string
		wantReason string
	}{
		{name: "a host whose latest verdict is not Verified is refused", wantReason: keybroker.ReasonNotVerified,
			setup: func(t *testing.T, e *env) {
				r := verified(t, a, "r1", time.Minute)
				r.TrustInformation.Overall = false
				r.TrustInformation.FlavorsTrust[flavor.PartPlatform] = flavor.PartTrust{Trust: false}
				e.addReport(r)
			}},
		{name: "a host with secure boot off is refused", wantReason: keybroker.ReasonSecureBootOff,
			setup: func(t *testing.T, e *env) {
				r := verified(t, a, "r1", time.Minute)
				r.HostInfo.SecureBoot.FromPCR7 = false
				e.addReport(r)
			}},
		{name: "stale evidence is refused when a fresh attestation fails", wantReason: keybroker.ReasonAttestationFailed,
			setup: func(t *testing.T, e *env) { e.addReport(verified(t, a, "r1", time.Hour)) }},
		{name: "stale evidence is refused when the fresh report is untrusted", wantReason: keybroker.ReasonNotVerified,
			setup: func(t *testing.T, e *env) {
				e.addReport(verified(t, a, "r1", time.Hour))
				e.attest.next = func(string) *report.Report {
					r := verified(t, a, "r2", 0)
					r.Faults = []appraise.Fault{{Name: appraise.FaultEvidenceMissing}}
					return r
				}
			}},
		{name: "a disabled host is refused", wantReason: keybroker.ReasonHostDisabled,
			setup: func(t *testing.T, e *env) {
				e.addReport(verified(t, a, "r1", time.Minute))
				e.hosts.disabled["node-a"] = now
			}},
		{name: "a deleted host is refused", wantReason: keybroker.ReasonHostUnknown,
			setup: func(t *testing.T, e *env) {
				e.addReport(verified(t, a, "r1", time.Minute))
				delete(e.hosts.hosts, "node-a")
			}},
		{name: "a host the policy does not name is refused", wantReason: keybroker.ReasonHostNotAllowed,
			policy: restapi.SecretPolicy{HostIDs: []string{"node-b"}},
			setup:  func(t *testing.T, e *env) { e.addReport(verified(t, a, "r1", time.Minute)) }},
		{name: "a report that is not signed by the verifier is refused", wantReason: keybroker.ReasonReportSignature,
			setup: func(t *testing.T, e *env) {
				e.addReport(verified(t, a, "r1", time.Minute))
				delete(e.reports.signed, "jws-r1")
			}},
		{name: "an unknown secret is refused", secret: "no-such-secret", wantReason: keybroker.ReasonSecretUnknown,
			setup: func(t *testing.T, e *env) { e.addReport(verified(t, a, "r1", time.Minute)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, a)
			p := tt.policy
			if p.HostIDs == nil {
				p.FlavorGroupNames = []string{"edge"}
			}
			e.createSecret(t, "volume-key", "v", p)
			tt.setup(t, e)
			name := "volume-key"
			if tt.secret != "" {
				name = tt.secret
			}
			rel, err := e.broker.Release(t.Context(), "node-a", name)
			if got := reason(err); got != tt.wantReason {
				t.Fatalf("release: %v (reason %q), want refused for %s", err, got, tt.wantReason)
			}
			if rel != nil {
				t.Error("a refusal carried a release")
			}
			if want := []string{keybroker.OutcomeRefused + ":" + tt.wantReason}; !slices.Equal(e.decisions, want) {
				t.Errorf("decisions counted %v, want %v", e.decisions, want)
			}
		})
	}
}

// TestStaleEvidenceIsAttestedAfresh checks that the broker does not release
// on a report older than half the policy's evidence age but attests anew.
func TestStaleEvidenceIsAttestedAfresh(t *testing.T) {
	a := newNode(t, "node-a")
	e := newEnv(t, a)
	e.createSecret(t, "volume-key", "v", restapi.SecretPolicy{HostIDs: []string{"node-a"}, MaxEvidenceAgeSeconds: 600})
	e.addReport(verified(t, a, "old", 6*time.Minute))
	e.attest.next = func(string) *report.Report { return verified(t, a, "fresh", 0) }
	rel, err := e.broker.Release(t.Context(), "node-a", "volume-key")
	if err != nil {
		t.Fatal(err)
	}
	if e.attest.calls != 1 {
		t.Errorf("%d fresh attestations, want 1", e.attest.calls)
	}
	if want := now.Add(10 * time.Minute); !rel.ExpiresAt.Equal(want) {
		t.Errorf("lease ends %v, want %v (the fresh report plus the evidence age)", rel.ExpiresAt, want)
	}
}

// A report vouches for the TPM its quote came from. Once the host is
// enrolled again (its TPM replaced, or another one put in its place), a
// trusted report made before that enrollment must not release a secret
// sealed to the newly enrolled EK, however fresh it is.
func TestAReportMadeBeforeTheHostsEnrollmentReleasesNothing(t *testing.T) {
	a := newNode(t, "node-a")
	e := newEnv(t, a)
	e.createSecret(t, "volume-key", "v", restapi.SecretPolicy{HostIDs: []string{"node-a"}, MaxEvidenceAgeSeconds: 600})
	enr := e.hosts.enrollments["node-a"]
	enr.CreatedAt = now.Add(-time.Minute)
	e.hosts.enrollments["node-a"] = enr
	e.addReport(verified(t, a, "before-enrollment", 3*time.Minute))

	t.Run("a fresh report dated before the enrollment is refused", func(t *testing.T) {
		e.attest.next = func(string) *report.Report { return verified(t, a, "also-before", 2*time.Minute) }
		if _, err := e.broker.Release(t.Context(), "node-a", "volume-key"); reason(err) != "evidence_stale" {
			t.Fatalf("Release err = %v, want evidence_stale", err)
		}
	})
	t.Run("the host is attested afresh rather than the report of before reused", func(t *testing.T) {
		calls := e.attest.calls
		e.attest.next = func(string) *report.Report { return verified(t, a, "fresh", 0) }
		if _, err := e.broker.Release(t.Context(), "node-a", "volume-key"); err != nil {
			t.Fatal(err)
		}
		if e.attest.calls != calls+1 {
			t.Errorf("%d fresh attestations, want 1", e.attest.calls-calls)
		}
	})
}
