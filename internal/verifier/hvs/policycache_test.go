package hvs

import (
	"context"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/pgtest"
	"trustedcompute.io/tc/internal/verifier/store"
)

// policyBackends are the databases the policy cache is tested on: each
// returns a DSN that several stores (replicas) may open.
var policyBackends = map[string]func(t *testing.T) string{
	"sqlite file": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "verifier.db") },
	"postgres":    func(t *testing.T) string { return pgtest.Schema(t) },
}

// replicaStores opens n stores on one database, as n verifier replicas
// do: each with its own connections, all with one keyring.
func replicaStores(t *testing.T, dsn string, n int) []*store.Store {
	t.Helper()
	kek, err := store.ParseKEK(store.GenerateKEK())
	var kr *store.Keyring
	if err == nil {
		kr, err = store.NewKeyring(kek)
	}
	if err != nil {
		t.Fatal(err)
	}
	var sts []*store.Store
	for range n {
		st, err := store.Open(t.Context(), dsn, store.WithKeyring(kr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		sts = append(sts, st)
	}
	return sts
}

// hostFlavorIDs are the IDs of the host's flavors of a part.
func hostFlavorIDs(t *testing.T, e *env, hostID string, part flavor.Part) []string {
	t.Helper()
	fs, err := e.st.ListFlavors(t.Context(), store.FlavorFilter{HostID: hostID, Parts: []string{string(part)}})
	if err != nil || len(fs) == 0 {
		t.Fatalf("%s flavors of host %s: %d, %v", part, hostID, len(fs), err)
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

// Two verifier replicas on one database, each with its own connections
// and its own kept policies: a flavor deleted, and made again, through
// replica a is applied to replica b's next report, although b keeps the
// policies of its report before.
func TestAFlavorChangedThroughOneReplicaIsAppliedToTheOthersNextReport(t *testing.T) {
	for name, dsn := range policyBackends {
		t.Run(name, func(t *testing.T) {
			sts := replicaStores(t, dsn(t), 2)
			n := newNode(t, "edge-1")
			a := newEnvOn(t, sts[0], []*node{n})
			b := newEnvOn(t, sts[1], []*node{n}, func(_ *Config, deps *Deps) { deps.CA = a.svc.ca })
			a.baseline(t, n)
			if _, err := b.enr.Enroll(t.Context(), n.id); err != nil {
				t.Fatal(err)
			}
			wantTrusted(t, mustReport(t, b, n.id))
			wantTrusted(t, mustReport(t, b, n.id)) // on the policies b keeps

			for _, id := range hostFlavorIDs(t, a, n.id, flavor.PartOS) {
				if err := a.st.DeleteFlavor(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
			wantUntrusted(t, mustReport(t, b, n.id), nil)
			wantUntrusted(t, mustReport(t, b, n.id), nil)

			if _, err := a.svc.FlavorsFromHost(t.Context(), n.id, []flavor.Part{flavor.PartOS}, nil); err != nil {
				t.Fatal(err)
			}
			wantTrusted(t, mustReport(t, b, n.id))
		})
	}
}

// The attack on the kept policies: a flavor is deleted while a report
// that read the policy generation before the deletion waits for the
// agent, so that the report is appraised against the policies kept from
// before. It must not be stored trusted: its commit sees the generation
// moved, and the report is appraised again against the stored policies.
func TestAReportAppraisedAgainstPoliciesKeptBeforeAFlavorWasDeletedIsNotStoredTrusted(t *testing.T) {
	for name, dsn := range policyBackends {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, "edge-1")
			e := newEnvOn(t, replicaStores(t, dsn(t), 1)[0], []*node{n})
			e.baseline(t, n)
			wantTrusted(t, mustReport(t, e, n.id))
			wantTrusted(t, mustReport(t, e, n.id))

			ids := hostFlavorIDs(t, e, n.id, flavor.PartOS)
			e.agent.set(func(f *fakeAgent) {
				f.tamper = func(*evidence.QuoteRequest, *evidence.QuoteResponse) {
					// While the agent answers: after HostForReport, before
					// the policies are applied and the report committed.
					for _, id := range ids {
						if err := e.st.DeleteFlavor(context.Background(), id); err != nil {
							t.Error(err)
						}
					}
					ids = nil
				}
			})
			r := mustReport(t, e, n.id)
			wantUntrusted(t, r, nil)
			stored, err := e.st.ReportByID(t.Context(), r.ID)
			if err != nil || stored.Trusted {
				t.Fatalf("the stored report is trusted %v (%v), want untrusted", stored.Trusted, err)
			}
			latest, err := e.st.ListReports(t.Context(), store.ReportFilter{HostID: n.id, Limit: 1})
			if err != nil || len(latest) != 1 || latest[0].ID != r.ID {
				t.Fatalf("the host's latest report is %v (%v), want %s", latest, err, r.ID)
			}
		})
	}
}

// Policies are kept by host, for the hardware UUID they were read for,
// at the generation they are of; a later generation is never replaced by
// an earlier one.
func TestKeptPoliciesAreUsedForTheirHostHardwareUUIDAndGenerationOnly(t *testing.T) {
	c := newPolicyCache()
	at := func(gen int64) store.ReportPolicies { return store.ReportPolicies{Generation: gen} }
	c.put("h1", "u1", at(5))
	for _, tt := range []struct {
		name      string
		host, hw  string
		gen       int64
		wantFound bool
	}{
		{"the host, hardware UUID and generation they were read for find them", "h1", "u1", 5, true},
		{"another generation does not", "h1", "u1", 6, false},
		{"another hardware UUID does not", "h1", "u2", 5, false},
		{"another host does not", "h2", "u1", 5, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := c.get(tt.host, tt.hw, tt.gen); ok != tt.wantFound {
				t.Errorf("found %v, want %v", ok, tt.wantFound)
			}
		})
	}
	c.put("h1", "u1", at(4))
	if _, ok := c.get("h1", "u1", 5); !ok {
		t.Error("policies of generation 4 replaced those of generation 5")
	}
}

func TestADecodedFlavorGroupIsUsedOnlyForTheRowItWasDecodedFrom(t *testing.T) {
	anyOf := []byte(`[{"flavor_part":"OS","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}}]`)
	allOf := []byte(`[{"flavor_part":"OS","match_policy":{"match_type":"ALL_OF","required":"REQUIRED"}}]`)
	m := &newPolicyCache().groups
	for _, tc := range []struct {
		name string
		rec  store.FlavorGroup
		want flavor.MatchType // "": the decode fails
	}{
		{name: "a group is decoded", rec: store.FlavorGroup{ID: "g1", Name: "one", Policies: anyOf}, want: flavor.MatchAnyOf},
		{name: "the same row gives the same group", rec: store.FlavorGroup{ID: "g1", Name: "one", Policies: anyOf}, want: flavor.MatchAnyOf},
		{name: "other match policies under the group's id are decoded again",
			rec: store.FlavorGroup{ID: "g1", Name: "one", Policies: allOf}, want: flavor.MatchAllOf},
		{name: "another name under the group's id is decoded again",
			rec: store.FlavorGroup{ID: "g1", Name: "renamed", Policies: allOf}, want: flavor.MatchAllOf},
		{name: "undecodable policies under the group's id fail",
			rec: store.FlavorGroup{ID: "g1", Name: "renamed", Policies: []byte(`[{`)}},
		{name: "the decoded policies again after a failure",
			rec: store.FlavorGroup{ID: "g1", Name: "renamed", Policies: anyOf}, want: flavor.MatchAnyOf},
		{name: "another group's id with the same row is its own group",
			rec: store.FlavorGroup{ID: "g2", Name: "renamed", Policies: anyOf}, want: flavor.MatchAnyOf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := m.decode(tc.rec)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("decode = %+v, want an error", g)
				}
				return
			}
			if err != nil || g.ID != tc.rec.ID || g.Name != tc.rec.Name || len(g.MatchPolicies) != 1 ||
				g.MatchPolicies[0].MatchPolicy.MatchType != tc.want {
				t.Errorf("decode = %+v, %v; want group %s named %s matching %s", g, err, tc.rec.ID, tc.rec.Name, tc.want)
			}
		})
	}
}
