package verifier_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/eventually"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/report"
)

// TestASecretIsGoneFromATamperedNode runs the key broker over the real
// stack: a trust agent on a swtpm with an EK certificate, enrolled and
// Verified, gets a secret over the embedded bus and its TPM unwraps it; a
// rotation reaches it at the next renewal; then the node is tampered with
// (a file outside the golden IMA flavor runs), its report turns untrusted,
// the agent drops the secret well within the lease, and further releases
// are refused.
func TestASecretIsGoneFromATamperedNode(t *testing.T) {
	n := startNode(t, "edge-1")
	h, admin, a, nt, banks, root, nc, ctx := n.h, n.admin, n.agent, n.tpm, n.banks, n.root, n.nc, n.ctx

	const ctJSON = "application/json"
	h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/aik-enrollments", admin, []byte(`{"host_id":"edge-1"}`))
	n.register(t)
	// The swtpm node boots without Secure Boot or disk encryption; the
	// policy relaxes both (their refusals are tested in package keybroker)
	// and binds the secret to the PCRs its platform flavor holds as
	// constants (0, 4 and 7: the others have no golden value to attest).
	policy := restapi.SecretPolicy{HostIDs: []string{"edge-1"}, AllowSecureBootOff: true, AllowUnmeasuredDiskEncryption: true,
		BindPCRs: true, PCRs: []int{0, 4, 7}, MaxEvidenceAgeSeconds: 30}
	body, _ := json.Marshal(restapi.SecretRequest{Name: "volume-key", Value: []byte("volume key v1"), Policy: policy})
	status, created := h.do(t, "POST", "/hvs/v2/secrets", admin, ctJSON, body)
	if status != http.StatusCreated {
		t.Fatalf("create secret: %d %s", status, created)
	}
	var secret restapi.Secret
	if err := json.Unmarshal(created, &secret); err != nil {
		t.Fatal(err)
	}

	keeper, err := a.NewSecrets(agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Second, Roots: h.v.Roots}, nt)
	if err != nil {
		t.Fatal(err)
	}
	if err := keeper.Attach(ctx, natsbus.Adapt(nc), n.grammar); err != nil {
		t.Fatal(err)
	}
	go func() { _ = keeper.Run(ctx) }()
	eventually.True(t, 30*time.Second, "the node holds version 1", func() bool {
		v, ok := keeper.Get("volume-key")
		return ok && string(v) == "volume key v1"
	})

	body, _ = json.Marshal(restapi.SecretUpdate{Value: []byte("volume key v2")})
	if status, b := h.do(t, "PUT", "/hvs/v2/secrets/"+secret.ID, admin, ctJSON, body); status != http.StatusOK {
		t.Fatalf("rotate: %d %s", status, b)
	}
	eventually.True(t, 40*time.Second, "the rotated version replaces the old at the next renewal", func() bool {
		v, ok := keeper.Get("volume-key")
		return ok && string(v) == "volume key v2"
	})

	// Tamper: a file measured into PCR 10 and the IMA log that the golden
	// IMA flavor lacks; the next report is untrusted.
	if err := root.MeasureFiles(nt, banks, map[string]string{"/usr/bin/evil": "evil"}); err != nil {
		t.Fatal(err)
	}
	tampered := time.Now()
	status, b := h.do(t, "POST", "/hvs/v2/reports", admin, ctJSON, []byte(`{"host_id":"edge-1"}`))
	var rep report.Report
	if err := json.Unmarshal(b, &rep); status != http.StatusCreated || err != nil || rep.Trusted() {
		t.Fatalf("report after the tamper: %d %s", status, b)
	}
	eventually.True(t, 10*time.Second, "the node drops the secret after the tamper", func() bool {
		_, ok := keeper.Get("volume-key")
		return !ok
	})
	if took := time.Since(tampered); took > 30*time.Second {
		t.Errorf("the secret stayed %s after the tamper, longer than the lease", took)
	}
	eventually.True(t, 15*time.Second, "further releases are refused and counted", func() bool {
		status, m := h.do(t, "GET", "/metrics", admin, "", nil)
		return status == http.StatusOK &&
			strings.Contains(string(m), `tc_keybroker_decisions_total{outcome="refused",reason="not_verified"}`) &&
			strings.Contains(string(m), `tc_keybroker_decisions_total{outcome="revoked",reason="revoked"} 1`) &&
			strings.Contains(string(m), `tc_keybroker_decisions_total{outcome="released",reason=""}`)
	})
	if _, ok := keeper.Get("volume-key"); ok {
		t.Fatal("a refused node holds the secret again")
	}
}

// node is a trust agent on a swtpm with an EK certificate, measured and
// connected to a running verifier's embedded bus (not yet enrolled).
type node struct {
	h      *harness
	admin  string
	hostID string
	agent  *agent.Agent
	tpm    *agent.NodeTPM
	banks  []string
	root   *sandbox.Root
	nc     *nats.Conn
	ctx    context.Context
	// grammar is that of the agent's bus credentials.
	grammar bus.AgentGrammar
}

// startNode runs a verifier and the agent of hostID on a swtpm with an EK
// certificate, with bus credentials of two prefixes; both stop when the
// test ends.
func startNode(t *testing.T, hostID string) *node {
	t.Helper()
	ekRoots := tpmtest.LocalCAPool(t)
	return startNodeOn(t, hostID, tpmtest.NewWithEKCert(t), bus.GrammarTwoPrefixes, func(c *verifier.Config) { c.Enrollment.EKRoots = ekRoots })
}

// startNodeOn runs a verifier configured by opts and the agent of hostID
// on sw, with bus credentials of grammar g; both stop when the test ends.
func startNodeOn(t *testing.T, hostID string, sw *tpmtest.Swtpm, g bus.AgentGrammar, opts ...func(*verifier.Config)) *node {
	t.Helper()
	h := startVerifier(t, t.TempDir(), opts...)
	admin := h.login(t, "admin", adminPassword)
	creds := issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"`+hostID+`","bus-grammar":"`+strconv.Itoa(int(g))+`"}}`)
	if parsed, err := bus.ParseCredentials(creds); err != nil || parsed.AgentGrammar() != g {
		t.Fatalf("AAS issued credentials of grammar %v, %v; want %v", parsed.AgentGrammar(), err, g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.DiscardHandler)
	nt, banks, root := measuredNode(t, sw, "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01", hostID)
	if err := root.MeasureFiles(nt, banks, map[string]string{"/usr/bin/kata-runtime": "kata"}); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{HostID: hostID}, nt, measure.New(root.Dir), logger)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsbus.Connect(ctx, h.v.NATSURL(), creds, h.v.Roots, "agent", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	go func() { _ = a.Run(ctx, natsbus.Adapt(nc)) }()
	return &node{h: h, admin: admin, hostID: hostID, agent: a, tpm: nt, banks: banks, root: root, nc: nc, ctx: ctx, grammar: g}
}

// register registers the node's host and takes its platform, OS and IMA
// flavors from it.
func (n *node) register(t *testing.T) {
	t.Helper()
	host := `{"host_name":"` + n.hostID + `","connection_string":"nats://` + n.hostID + `"}`
	if status, body := n.h.do(t, "POST", "/hvs/v2/hosts", n.admin, "application/json", []byte(host)); status != http.StatusCreated {
		t.Fatalf("register host: %d %s", status, body)
	}
	flavors := `{"host_id":"` + n.hostID + `","partial_flavor_types":["PLATFORM","OS","IMA"]}`
	if status, body := n.h.do(t, "POST", "/hvs/v2/flavors", n.admin, "application/json", []byte(flavors)); status != http.StatusCreated {
		t.Fatalf("flavors from the host: %d %s", status, body)
	}
}
