package hvs

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// The attack on the verified-flavor cache: once a host's flavors are
// cached, whoever can write the database rewrites the IMA flavor under
// its ID and signature to list a file the node now measures. The report
// must verify the new bytes, and fail them.
func TestAStoredFlavorRewrittenUnderItsIDIsVerifiedAgain(t *testing.T) {
	e, n := newBaselinedEnv(t)
	wantTrusted(t, mustReport(t, e, n.id))
	wantTrusted(t, mustReport(t, e, n.id)) // the flavors come from the cache

	fs, err := e.st.ListFlavors(t.Context(), store.FlavorFilter{HostID: n.id, Parts: []string{string(flavor.PartIMA)}})
	if err != nil || len(fs) != 1 {
		t.Fatalf("IMA flavors of the host: %d, %v", len(fs), err)
	}
	row := fs[0]
	var sf flavor.SignedFlavor
	if err := json.Unmarshal(row.Signed, &sf); err != nil {
		t.Fatal(err)
	}
	sf.Flavor.IMALogs.ImaMeasurements = append(sf.Flavor.IMALogs.ImaMeasurements,
		flavor.IMAMeasurement{File: "/usr/bin/evil", Measurement: sf.Flavor.IMALogs.ImaMeasurements[0].Measurement})
	if row.Signed, err = json.Marshal(sf); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteFlavor(t.Context(), row.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateFlavor(t.Context(), row); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, mustReport(t, e, n.id), []string{"IMA"}, "IMA:"+flavor.FaultFlavorSignatureInvalid)
}

// The IMA entries of a boot are kept in memory so that a report reads
// only the new lines; they are used only for the boot, offset and PCR 10
// value the host's row names, and never to skip the replay of what the
// quote covers.
func TestTheKeptIMAPrefixIsUsedOnlyWhereTheHostRowNamesIt(t *testing.T) {
	tests := []struct {
		name string
		// act runs after two trusted reports of one boot, and returns the
		// environment the next report is made in.
		act     func(t *testing.T, e *env, n *node) *env
		trusted bool
		fault   string
		offsets []int // of the quotes of the next report
	}{
		{"a steady report reads only the new lines",
			func(t *testing.T, e *env, n *node) *env { n.measureFile(t, "/usr/bin/kata-runtime", "kata"); return e },
			true, "", []int{len(bootFiles)}},
		{"a measurement the agent hides from the new lines fails the replay and the whole log shows it",
			func(t *testing.T, e *env, n *node) *env {
				n.measureFile(t, "/usr/bin/evil", "x")
				e.agent.set(func(f *fakeAgent) {
					f.tamper = func(req *evidence.QuoteRequest, r *evidence.QuoteResponse) {
						if req.IMAOffset > 0 {
							r.IMALog = ""
						}
					}
				})
				return e
			},
			false, "IMA:" + flavor.FaultImaContainsUnexpectedEntries, []int{len(bootFiles), 0}},
		{"a verifier that does not hold the prefix reads the whole log",
			func(t *testing.T, e *env, n *node) *env {
				return newEnvWith(t, e, n)
			},
			true, "", []int{0}},
		{"a state another replica moved on reads the whole log",
			func(t *testing.T, e *env, n *node) *env {
				h, err := e.st.HostByID(t.Context(), n.id)
				if err != nil {
					t.Fatal(err)
				}
				b := h.Boot
				b.State = []byte(`{"ima_offset":1,"ima_pcr10":{"SHA384":"` + base64.StdEncoding.EncodeToString(make([]byte, 48)) + `"}}`)
				if err := e.st.SetHostBoot(t.Context(), n.id, b); err != nil {
					t.Fatal(err)
				}
				return e
			},
			true, "", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, n := newBaselinedEnv(t)
			wantTrusted(t, mustReport(t, e, n.id))
			wantTrusted(t, mustReport(t, e, n.id))
			if got := e.agent.lastRequest().IMAOffset; got != len(bootFiles) {
				t.Fatalf("the second report of the boot read IMA from %d, want %d", got, len(bootFiles))
			}
			e = tt.act(t, e, n)
			before := len(e.agent.requests())
			r := mustReport(t, e, n.id)
			var offsets []int
			for _, req := range e.agent.requests()[before:] {
				offsets = append(offsets, req.IMAOffset)
			}
			if !slices.Equal(offsets, tt.offsets) {
				t.Errorf("the report's quotes read IMA from %v, want %v", offsets, tt.offsets)
			}
			if tt.trusted {
				wantTrusted(t, r)
			} else {
				wantUntrusted(t, r, nil, tt.fault)
			}
		})
	}
}

// newEnvWith is a second Service on e's store and agents: a restarted or
// another verifier replica.
func newEnvWith(t *testing.T, e *env, n *node) *env {
	t.Helper()
	e2 := newEnvOn(t, e.st, []*node{n}, func(_ *Config, deps *Deps) { deps.CA = e.svc.ca })
	e2.enr.enrolled = e.enr.enrolled
	return e2
}

func (f *fakeAgent) requests() []evidence.QuoteRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// Enrolled AKs are kept parsed by their public area. The attack: after
// both hosts' reports warmed the memory, host 1's enrollment names host
// 2's AK (a re-enrollment, or a rewritten row), while host 1's agent
// still quotes with its old key. The old key's quote must be refused; a
// memory keyed by host would verify it.
func TestAKeptParsedAKVouchesOnlyForItsOwnPublicArea(t *testing.T) {
	n1, n2 := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{n1, n2})
	for _, n := range []*node{n1, n2} {
		e.baseline(t, n)
		wantTrusted(t, mustReport(t, e, n.id))
	}

	e.enr.mu.Lock()
	own := e.enr.enrolled[n1.id]
	e.enr.enrolled[n1.id] = e.enr.enrolled[n2.id]
	e.enr.mu.Unlock()
	wantUntrusted(t, mustReport(t, e, n1.id), nil, appraise.FaultAKMismatch, appraise.FaultQuoteSignature)

	e.enr.mu.Lock()
	e.enr.enrolled[n1.id] = own
	e.enr.mu.Unlock()
	wantTrusted(t, mustReport(t, e, n1.id))
}

// A steady report checks only the new IMA lines against an IMA flavor the
// boot's earlier entries matched exactly; that memory is keyed by the
// digest of the flavor's stored bytes. The attack: after two trusted
// reports, the host's IMA flavor is replaced by one validly signed under
// the same ID that gives systemd, measured early in the boot, another
// value. The next report, one new line that both flavors list, must check
// the boot's entries against the new flavor and fail; a memory keyed by
// host or by flavor ID would check the new line alone and trust it.
func TestAnIMAFlavorReplacedUnderItsIDChecksTheWholeBootAgain(t *testing.T) {
	e, n := newBaselinedEnv(t)
	for range 2 { // the second report checks its new line alone
		n.measureFile(t, "/usr/bin/kata-runtime", "kata")
		wantTrusted(t, mustReport(t, e, n.id))
	}
	ctx := t.Context()
	fs, err := e.st.ListFlavors(ctx, store.FlavorFilter{HostID: n.id, Parts: []string{string(flavor.PartIMA)}})
	if err != nil || len(fs) != 1 {
		t.Fatalf("IMA flavors of the host: %d, %v", len(fs), err)
	}
	var sf flavor.SignedFlavor
	if err := json.Unmarshal(fs[0].Signed, &sf); err != nil {
		t.Fatal(err)
	}
	f := sf.Flavor
	f.IMALogs = &flavor.IMALogs{ImaTemplate: f.IMALogs.ImaTemplate, ImaMeasurements: slices.Clone(f.IMALogs.ImaMeasurements)}
	at := slices.IndexFunc(f.IMALogs.ImaMeasurements, func(m flavor.IMAMeasurement) bool { return m.File == "/usr/lib/systemd/systemd" })
	if at < 0 {
		t.Fatalf("the IMA flavor does not list systemd: %+v", f.IMALogs.ImaMeasurements)
	}
	f.IMALogs.ImaMeasurements[at].Measurement = "sha256:" + strings.Repeat("ab", 32)
	if err := e.st.DeleteFlavor(ctx, fs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImportFlavors(ctx, flavor.FlavorCollection{Flavors: []flavor.Flavor{f}}, []string{"automatic"}); err != nil {
		t.Fatal(err)
	}
	n.measureFile(t, "/usr/bin/kata-runtime", "kata")
	wantUntrusted(t, mustReport(t, e, n.id), []string{"IMA"}, "IMA:"+flavor.FaultImaMeasurementMismatch)
}
