package hvs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"

	"trustedcompute.io/tc/internal/clock"
)

// Hand-written fakes for the unit tests. The node side is real code (the
// trust agent, the measured boot replayed from a real OVMF log, the IMA log
// written as the kernel would) on a software TPM whose quotes are signed by
// a software ECDSA AK: fast, and every pipeline decision is exercised on
// real evidence. The integration test runs the same on swtpm over NATS.

var discard = testLog()

func testLog() *slog.Logger {
	if os.Getenv("TC_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// softTPM is the fleet simulator's software TPM with SHA256 and SHA384
// banks. It implements agent.TPM and sandbox.Extender, and can tell two
// lies an agent could: keyBanks, when set, are the PCR banks KeyInfo names
// instead of the active ones; omitBank is a bank Quote leaves out.
type softTPM struct {
	*softtpm.TPM
	mu       sync.Mutex
	keyBanks []string
	omitBank string
}

// ekCA issues the EK certificates of every soft TPM of the tests.
var ekCA = sync.OnceValues(func() (*softtpm.EKCA, error) { return softtpm.NewEKCA(time.Now()) })

func newSoftTPM(t testing.TB) *softTPM {
	t.Helper()
	ca, err := ekCA()
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := softtpm.New(ca, softtpm.Options{Banks: []string{evidence.BankSHA256, evidence.BankSHA384}})
	if err != nil {
		t.Fatal(err)
	}
	return &softTPM{TPM: tpm}
}

func (s *softTPM) Quote(nonce []byte, pcrs []int, banks []string) (*evidence.QuoteResponse, error) {
	s.mu.Lock()
	omit := s.omitBank
	s.mu.Unlock()
	return s.TPM.Quote(nonce, pcrs, slices.DeleteFunc(slices.Clone(banks), func(b string) bool { return b == omit }))
}

func (s *softTPM) KeyInfo() (evidence.AKInfo, error) {
	info, err := s.TPM.KeyInfo()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyBanks != nil {
		info.PCRBanks = slices.Clone(s.keyBanks)
	}
	return info, err
}

// bootFiles are the files every node's IMA log measures after boot.
var bootFiles = map[string]string{"/usr/bin/kata-runtime": "kata", "/usr/lib/systemd/systemd": "init"}

// node is a simulated edge node: a software TPM through a real measured
// boot, a file system root and the real trust agent.
type node struct {
	measuredBoot
	id    string
	tpm   *softTPM
	agent *agent.Agent
	uuid  string
	dir   string
}

func newNode(t testing.TB, id string) *node {
	t.Helper()
	sum := sha256.Sum256([]byte(id))
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	n := &node{id: id, tpm: newSoftTPM(t), uuid: uuid, dir: t.TempDir()}
	n.boot(t, sandbox.BootLogSecureBootOn)
	return n
}

// boot replays a measured boot, measures the boot files and starts the agent.
func (n *node) boot(t testing.TB, log []byte) {
	t.Helper()
	n.measuredBoot = bootMeasured(t, n.tpm, n.dir, n.uuid, n.id, log)
	a, err := agent.New(agent.Config{HostID: n.id}, n.tpm, measure.New(n.root.Dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	n.agent = a
}

// measuredBoot is what a node's measured boot leaves: its TPM, the PCR
// banks the firmware log measured into and the file system root whose IMA
// log records the files measured since. The fake's nodes and the
// integration test's swtpm nodes share it.
type measuredBoot struct {
	pcrs  sandbox.Extender
	root  *sandbox.Root
	banks []string
}

// bootMeasured replays the firmware log into tpm, makes the node's file
// system root in dir and measures the boot files.
func bootMeasured(t testing.TB, tpm sandbox.Extender, dir, uuid, id string, log []byte) measuredBoot {
	t.Helper()
	banks, err := sandbox.ReplayEventLog(tpm, log)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.NewRoot(dir, uuid, "edge-"+id, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.MeasureFiles(tpm, banks, bootFiles); err != nil {
		t.Fatal(err)
	}
	return measuredBoot{pcrs: tpm, root: root, banks: banks}
}

// reboot resets the TPM and boots again, with the given firmware log
// (default the first boot's).
func (n *node) reboot(t testing.TB, log ...[]byte) {
	t.Helper()
	n.tpm.Reset()
	if len(log) == 0 {
		log = [][]byte{sandbox.BootLogSecureBootOn}
	}
	n.boot(t, log[0])
}

// bootLogCmdline2 is a Secure Boot log of the same firmware with another
// kernel command line: PCR 9 differs (see internal/appraise/testdata/ovmf).
func bootLogCmdline2(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../appraise/testdata/ovmf/sb-on-cmdline2.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extend extends a PCR of every bank with a digest nobody expects.
func (m *measuredBoot) extend(t testing.TB, pcr int) {
	t.Helper()
	if err := sandbox.ExtendUnlogged(m.pcrs, m.banks, pcr); err != nil {
		t.Fatal(err)
	}
}

// measureFile measures a file into PCR 10 and the IMA log.
func (m *measuredBoot) measureFile(t testing.TB, path, content string) {
	t.Helper()
	if err := m.root.MeasureFiles(m.pcrs, m.banks, map[string]string{path: content}); err != nil {
		t.Fatal(err)
	}
}

// fakeAgent serves quotes from nodes, and can be made to fail, block or
// tamper with its answers.
type fakeAgent struct {
	mu     sync.Mutex
	nodes  map[string]*node
	err    error
	tamper func(req *evidence.QuoteRequest, resp *evidence.QuoteResponse)
	// entered, when set, receives a value when a quote starts, and the
	// quote waits for release.
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
	reqs    []evidence.QuoteRequest
	// timed, when set, adds the time the node takes to answer to elapsed
	// (nanoseconds), for the benchmarks; exclude, when set, runs the
	// node's side of the answer (benchfloor.Meter.Exclude).
	timed   bool
	elapsed atomic.Int64
	exclude func(func())
}

func newFakeAgent(nodes ...*node) *fakeAgent {
	f := &fakeAgent{nodes: map[string]*node{}}
	for _, n := range nodes {
		f.nodes[n.id] = n
	}
	return f
}

func (f *fakeAgent) Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n, err, tamper, entered, release, timed, exclude := f.nodes[hostID], f.err, f.tamper, f.entered, f.release, f.timed, f.exclude
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
		<-release
	}
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("no node %q", hostID)
	}
	if exclude == nil {
		exclude = func(fn func()) { fn() }
	}
	var resp *evidence.QuoteResponse
	exclude(func() {
		start := time.Now()
		resp, err = n.agent.Evidence(ctx, req)
		if timed {
			f.elapsed.Add(int64(time.Since(start)))
		}
	})
	if err != nil {
		// As agentclient reports an error the agent answered with.
		return nil, &agentclient.AgentError{HostID: hostID, Request: bus.QuoteRequest, Code: evidence.CodeInternal, Message: err.Error()}
	}
	if tamper != nil {
		tamper(&req, resp)
	}
	return resp, nil
}

func (f *fakeAgent) set(fn func(f *fakeAgent)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeAgent) lastRequest() evidence.QuoteRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

// fakeEnroller enrolls a node's AK on Enroll (unless refuse is set) and
// answers VerifyAK from what it enrolled.
type fakeEnroller struct {
	mu       sync.Mutex
	agent    *fakeAgent
	enrolled map[string]evidence.AKInfo
	refuse   error
}

func newFakeEnroller(a *fakeAgent) *fakeEnroller {
	return &fakeEnroller{agent: a, enrolled: map[string]evidence.AKInfo{}}
}

func (e *fakeEnroller) Enroll(_ context.Context, hostID string) (store.AKEnrollment, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != nil {
		return store.AKEnrollment{}, e.refuse
	}
	e.agent.mu.Lock()
	n := e.agent.nodes[hostID]
	e.agent.mu.Unlock()
	if n == nil {
		return store.AKEnrollment{}, fmt.Errorf("ak info of host %q: no agent", hostID)
	}
	info, _ := n.tpm.KeyInfo()
	e.enrolled[hostID] = info
	return store.AKEnrollment{HostID: hostID, AKPublic: info.AKPublic, AKName: info.AKName, PCRBanks: info.PCRBanks}, nil
}

func (e *fakeEnroller) VerifyAK(_ context.Context, hostID string) ([]byte, []string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	info, ok := e.enrolled[hostID]
	if !ok {
		return nil, nil, &enroll.AKError{HostID: hostID, Reason: enroll.AKNotEnrolled, Err: store.ErrNotFound}
	}
	return info.AKPublic, info.PCRBanks, nil
}

// fakePublisher records what is published.
type fakePublisher struct {
	mu   sync.Mutex
	msgs map[string][]string
}

func (p *fakePublisher) Publish(subject string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.msgs == nil {
		p.msgs = map[string][]string{}
	}
	p.msgs[subject] = append(p.msgs[subject], string(data))
	return nil
}

func (p *fakePublisher) published(subject string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs[subject])
}

// failingSigner refuses to sign reports.
type failingSigner struct{}

func (failingSigner) SignedJSON(*report.Report) (string, []byte, error) {
	return "", nil, errors.New("hsm unavailable")
}
func (failingSigner) EAR(*report.Report, string, time.Time) (string, error) {
	return "", errors.New("hsm unavailable")
}

// newClock is the shared fake clock, set to now.
func newClock() *clock.Fake { return clock.NewFake(time.Now().UTC().Truncate(time.Microsecond)) }

// fakeCA issues the verifier's signing certificate from a root and a
// verifier signing CA made for the test, on the test's clock; the
// integration test runs the real CMS.
type fakeCA struct {
	key      *ecdsa.PrivateKey
	cert     *x509.Certificate
	interKey *ecdsa.PrivateKey
	inter    *x509.Certificate
	now      func() time.Time
}

func newFakeCA(t testing.TB) *fakeCA {
	t.Helper()
	newCA := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{signerid.Organization}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
		if parent == nil {
			parent, parentKey = tmpl, k
		} else {
			tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{signerid.OIDExtKeyUsageDocumentSigning}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	root, rootKey := newCA("fake CMS root", nil, nil)
	inter, interKey := newCA(signerid.CACommonName, root, rootKey)
	return &fakeCA{key: rootKey, cert: root, interKey: interKey, inter: inter, now: time.Now}
}

func (c *fakeCA) IssueVerifierSigning(pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: signerid.LeafCommonName},
		NotBefore: c.now().Add(-time.Hour), NotAfter: c.now().Add(ttl), KeyUsage: x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{signerid.OIDExtKeyUsageDocumentSigning}, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, pub, c.interKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, c.inter, c.cert}, nil
}

func (c *fakeCA) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// env is a Service on a real SQLite store, with fakes for the agents,
// enrollment, the CA and publishing.
type env struct {
	svc   *Service
	st    *store.Store
	agent *fakeAgent
	enr   *fakeEnroller
	pub   *fakePublisher
	clock *clock.Fake
}

type envOption func(cfg *Config, deps *Deps)

func newEnv(t testing.TB, nodes []*node, opts ...envOption) *env {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newEnvOn(t, st, nodes, opts...)
}

func newEnvOn(t testing.TB, st *store.Store, nodes []*node, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	var err error
	e := &env{st: st, agent: newFakeAgent(nodes...), pub: &fakePublisher{}, clock: newClock()}
	e.enr = newFakeEnroller(e.agent)
	cfg := Config{Now: e.clock.Now}
	ca := newFakeCA(t)
	ca.now = e.clock.Now
	deps := Deps{Store: st, Agent: e.agent, Enroller: e.enr, CA: ca, Publisher: e.pub}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	if e.svc, err = New(ctx, cfg, deps, discard); err != nil {
		t.Fatal(err)
	}
	return e
}

// register stores the node as a host in group automatic and enrolls it.
func (e *env) register(t testing.TB, n *node) {
	t.Helper()
	ctx := context.Background()
	g, err := e.st.FlavorGroupByName(ctx, "automatic")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateHost(ctx, store.Host{ID: n.id, Name: "edge-" + n.id, ConnectionString: "nats://" + n.id,
		FlavorGroupIDs: []string{g.ID}, Status: report.StatusUnknown}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.enr.Enroll(ctx, n.id); err != nil {
		t.Fatal(err)
	}
}

// baseline registers the node and makes its PLATFORM, OS and IMA flavors.
// newBaselinedEnv is an environment with one node, edge-1, whose flavors
// are taken from its boot (baseline).
func newBaselinedEnv(t testing.TB) (*env, *node) {
	t.Helper()
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	return e, n
}

func (e *env) baseline(t testing.TB, n *node) []string {
	t.Helper()
	e.register(t, n)
	fs, err := e.svc.FlavorsFromHost(context.Background(), n.id, DefaultRebaselineParts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fieldOf(fs, func(f flavor.SignedFlavor) string { return f.Flavor.Meta.ID })
}

// fieldOf is field of each of xs, in their order.
func fieldOf[T any](xs []T, field func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, field(x))
	}
	return out
}

func (e *env) roots() *x509.CertPool { return e.svc.roots }

func uuidString() string { return uuid.NewString() }
