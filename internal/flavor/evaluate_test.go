package flavor

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
)

func TestEvaluateDetectsEachTamper(t *testing.T) {
	ca := newPKI(t, "cms")
	other := newPKI(t, "other")
	golden := goldenFlavors(t, defaultHost(), "golden")
	goldenFacts := defaultHost().facts()
	hexOf := func(f Facts, bank string, i int) string { return hex.EncodeToString(f.PCRs[bank][i]) }

	tests := []struct {
		name      string
		host      func(*testHost)
		facts     func(*Facts)
		flavors   func([]SignedFlavor) []SignedFlavor
		untrusted []Part
		// faults each stand exactly once in their part's rule results.
		faults []faultAt
		check  func(t *testing.T, ti TrustInformation, facts Facts)
	}{{
		name: "a host that matches its golden flavors is trusted",
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			for _, p := range []Part{PartPlatform, PartOS, PartIMA} {
				if !ti.FlavorsTrust[p].Trust || len(ti.FlavorsTrust[p].Rules) < 2 {
					t.Errorf("%s = %+v, want trusted with rules", p, ti.FlavorsTrust[p])
				}
			}
			if _, ok := ti.FlavorsTrust[PartHostUnique]; ok {
				t.Error("HOST_UNIQUE without flavors was evaluated, want it left out")
			}
		},
	}, {
		name:      "a changed PCR 0 makes PLATFORM untrusted and names the PCR, bank and both values",
		host:      func(h *testHost) { h.events[1].data = "patched firmware volume" },
		untrusted: []Part{PartPlatform},
		check: func(t *testing.T, ti TrustInformation, facts Facts) {
			fs := findFaults(ti, PartPlatform, RulePcrMatchesConstant, FaultPcrValueMismatch)
			if len(fs) != 1 {
				t.Fatalf("PcrMatchesConstant faults = %+v, want one", ti.FlavorsTrust[PartPlatform].Rules)
			}
			f := fs[0]
			if *f.PCRIndex != 0 || f.PCRBank != evidence.BankSHA384 ||
				f.Expected != hexOf(goldenFacts, evidence.BankSHA384, 0) || f.Actual != hexOf(facts, evidence.BankSHA384, 0) {
				t.Errorf("fault = %+v, want SHA384 PCR 0 with the golden and the new value", f)
			}
		},
	}, {
		name:      "a changed PCR 8 makes OS untrusted",
		host:      func(h *testHost) { h.events[8].data = "grub_cmd linux /vmlinuz init=/bin/sh" },
		untrusted: []Part{PartOS},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartOS, RulePcrMatchesConstant, FaultPcrValueMismatch)
			if len(fs) != 1 || *fs[0].PCRIndex != 8 {
				t.Errorf("faults = %+v, want one PcrValueMismatch of PCR 8", fs)
			}
		},
	}, {
		name:      "a new IMA file is an unexpected entry naming the file",
		host:      func(h *testHost) { h.ima = append(h.ima, imaEntry("/tmp/miner", "xmrig")) },
		untrusted: []Part{PartIMA},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartIMA, RuleImaEventLogEquals, FaultImaContainsUnexpectedEntries)
			if len(fs) != 1 || !slices.Equal(fs[0].UnexpectedEntries, []string{"/tmp/miner"}) {
				t.Errorf("faults = %+v, want /tmp/miner unexpected", ti.FlavorsTrust[PartIMA].Rules)
			}
		},
	}, {
		name:      "a changed IMA measurement names the file with the expected and actual hash",
		host:      func(h *testHost) { h.ima[1] = imaEntry("/usr/bin/kubelet", "kubelet backdoored") },
		untrusted: []Part{PartIMA},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartIMA, RuleImaEventLogEquals, FaultImaMeasurementMismatch)
			want, got := imaMeasurement(imaEntry("/usr/bin/kubelet", "kubelet v1")), imaMeasurement(imaEntry("/usr/bin/kubelet", "kubelet backdoored"))
			if len(fs) != 1 || fs[0].File != "/usr/bin/kubelet" || fs[0].Expected != want.Measurement || fs[0].Actual != got.Measurement {
				t.Errorf("faults = %+v, want kubelet %s -> %s", fs, want.Measurement, got.Measurement)
			}
		},
	}, {
		name: "an added PCR 7 event is an unexpected PcrEventLogEquals entry",
		host: func(h *testHost) {
			h.events = slices.Insert(h.events, 8, testEvent{7, 0x800000e0, "EV_EFI_VARIABLE_AUTHORITY", "MokList", "attacker key"})
		},
		untrusted: []Part{PartPlatform},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartPlatform, RulePcrEventLogEquals, FaultPcrEventLogContainsUnexpectedEntries)
			if len(fs) != 1 || len(fs[0].UnexpectedEntries) != 1 || !strings.Contains(fs[0].UnexpectedEntries[0], "MokList") || *fs[0].PCRIndex != 7 {
				t.Errorf("faults = %+v, want one unexpected MokList event of PCR 7", fs)
			}
		},
	}, {
		name: "a removed PCR 7 event is a missing PcrEventLogEquals entry",
		host: func(h *testHost) {
			h.events = slices.Delete(h.events, 7, 8)
		},
		untrusted: []Part{PartPlatform},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartPlatform, RulePcrEventLogEquals, FaultPcrEventLogMissingExpectedEntries)
			if len(fs) != 1 || len(fs[0].MissingEntries) != 1 || !strings.Contains(fs[0].MissingEntries[0], "EV_EFI_VARIABLE_AUTHORITY db") {
				t.Errorf("faults = %+v, want the db authority event missing", fs)
			}
		},
	}, {
		name: "a flavor changed after signing fails FlavorTrusted",
		flavors: func(sfs []SignedFlavor) []SignedFlavor {
			sfs[1].Flavor.PCRs[0].Measurement = strings.Repeat("f", 96)
			return sfs
		},
		untrusted: []Part{PartOS},
		faults:    []faultAt{{PartOS, RuleFlavorTrusted, FaultFlavorSignatureInvalid}},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			if n := len(ti.FlavorsTrust[PartOS].Rules); n != 1 {
				t.Errorf("OS has %d rule results, want only FlavorTrusted for an untrusted flavor", n)
			}
		},
	}, {
		name: "a flavor with a corrupted signature fails FlavorTrusted",
		flavors: func(sfs []SignedFlavor) []SignedFlavor {
			s := []byte(sfs[2].Signature)
			s[len(s)-5] ^= 0x01
			sfs[2].Signature = string(s)
			return sfs
		},
		untrusted: []Part{PartIMA},
		faults:    []faultAt{{PartIMA, RuleFlavorTrusted, FaultFlavorSignatureInvalid}},
	}, {
		name: "a flavor signed under another CA fails FlavorTrusted",
		flavors: func(sfs []SignedFlavor) []SignedFlavor {
			sfs[0] = other.sign(t, golden[0])
			return sfs
		},
		untrusted: []Part{PartPlatform},
		faults:    []faultAt{{PartPlatform, RuleFlavorTrusted, FaultFlavorCertificateUntrusted}},
	}, {
		name:      "a required part without flavors is FlavorMissing",
		flavors:   func(sfs []SignedFlavor) []SignedFlavor { return slices.Delete(sfs, 1, 2) },
		untrusted: []Part{PartOS},
		faults:    []faultAt{{PartOS, RuleRequiredFlavorTypeExists, FaultFlavorMissing}},
	}, {
		name:      "a PCR the quote does not cover fails closed",
		facts:     func(f *Facts) { delete(f.PCRs[evidence.BankSHA384], 8) },
		untrusted: []Part{PartOS},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			fs := findFaults(ti, PartOS, RulePcrMatchesConstant, FaultPcrValueMissing)
			if len(fs) != 1 || *fs[0].PCRIndex != 8 || fs[0].PCRBank != evidence.BankSHA384 || fs[0].Expected == "" {
				t.Errorf("faults = %+v, want PcrValueMissing for SHA384 PCR 8 with the expected value", fs)
			}
		},
	}, {
		name: "a PCR 7 log that did not replay fails PcrEventLogIntegrity with appraise's fault",
		facts: func(f *Facts) {
			seven := 7
			f.Replayed[evidence.BankSHA384][7] = false
			f.EventLogFaults = []appraise.Fault{{Name: appraise.FaultEventLogReplay, PCRIndex: &seven, PCRBank: evidence.BankSHA384, Expected: "aa", Actual: "bb"}}
		},
		untrusted: []Part{PartPlatform},
		faults:    []faultAt{{PartPlatform, RulePcrEventLogEquals, FaultPcrEventLogMissing}},
		check: func(t *testing.T, ti TrustInformation, _ Facts) {
			if fs := findFaults(ti, PartPlatform, RulePcrEventLogIntegrity, appraise.FaultEventLogReplay); len(fs) != 1 || fs[0].Actual != "bb" {
				t.Errorf("integrity faults = %+v, want appraise's replay fault", fs)
			}
		},
	}, {
		name: "an IMA log that did not replay fails ImaReplay and ImaEventLogEquals",
		facts: func(f *Facts) {
			f.IMAReplayed = false
			f.IMAFaults = []appraise.Fault{{Name: appraise.FaultIMAReplay, Description: "does not replay"}}
		},
		untrusted: []Part{PartIMA},
		faults: []faultAt{
			{PartIMA, RuleImaReplay, appraise.FaultIMAReplay},
			{PartIMA, RuleImaEventLogEquals, FaultImaEventLogMissing},
		},
	}, {
		name:      "empty facts fail every part",
		facts:     func(f *Facts) { *f = Facts{} },
		untrusted: []Part{PartPlatform, PartOS, PartIMA},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := defaultHost()
			if tt.host != nil {
				tt.host(&h)
			}
			facts := h.facts()
			if tt.facts != nil {
				tt.facts(&facts)
			}
			sfs := ca.signAll(t, golden)
			if tt.flavors != nil {
				sfs = tt.flavors(sfs)
			}
			ti, err := Evaluate(automatic(), sfs, facts, ca.roots, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []Part{PartPlatform, PartOS, PartIMA} {
				pt, ok := ti.FlavorsTrust[p]
				if !ok {
					t.Fatalf("part %s was not evaluated", p)
				}
				if want := !slices.Contains(tt.untrusted, p); pt.Trust != want {
					t.Errorf("%s trust = %v, want %v; rules %+v", p, pt.Trust, want, pt.Rules)
				}
				if pt.Trust != passed(pt.Rules) {
					t.Errorf("%s trust = %v disagrees with its rule results", p, pt.Trust)
				}
			}
			if ti.Overall != (len(tt.untrusted) == 0) {
				t.Errorf("OVERALL = %v, want %v", ti.Overall, len(tt.untrusted) == 0)
			}
			for _, f := range tt.faults {
				if fs := findFaults(ti, f.part, f.rule, f.fault); len(fs) != 1 {
					t.Errorf("%s rules = %+v, want one %s of %s", f.part, ti.FlavorsTrust[f.part].Rules, f.fault, f.rule)
				}
			}
			if tt.check != nil {
				tt.check(t, ti, facts)
			}
		})
	}
}

// faultAt names a fault of one rule of one part.
type faultAt struct {
	part        Part
	rule, fault string
}

func TestMatchPolicies(t *testing.T) {
	ca := newPKI(t, "cms")
	golden := goldenFlavors(t, defaultHost(), "golden")
	stale := defaultHost()
	stale.events[1].data = "older firmware"
	old := goldenFlavors(t, stale, "old")
	platform := func(fs []Flavor, created time.Time) SignedFlavor {
		f := fs[0]
		f.Meta.Description.CreatedAt = created
		return ca.sign(t, f)
	}
	group := func(mt MatchType) Group {
		return Group{Name: "g", MatchPolicies: []PartPolicy{{FlavorPart: PartPlatform, MatchPolicy: MatchPolicy{MatchType: mt, Required: RequiredAlways}}}}
	}
	tests := []struct {
		name      string
		group     Group
		flavors   []SignedFlavor
		trust     bool
		wantRules []string // flavor IDs of the reported rule results
	}{{
		name:      "ANY_OF is trusted when one of two flavors matches and reports only that one",
		group:     group(MatchAnyOf),
		flavors:   []SignedFlavor{platform(old, now.Add(-2*time.Hour)), platform(golden, now.Add(-3*time.Hour))},
		trust:     true,
		wantRules: []string{"golden-1"},
	}, {
		name:      "ANY_OF reports every failing flavor when none matches",
		group:     group(MatchAnyOf),
		flavors:   []SignedFlavor{platform(old, now.Add(-2*time.Hour))},
		trust:     false,
		wantRules: []string{"old-1"},
	}, {
		name:      "ALL_OF is untrusted when one of two flavors fails",
		group:     group(MatchAllOf),
		flavors:   []SignedFlavor{platform(golden, now.Add(-2*time.Hour)), platform(old, now.Add(-3*time.Hour))},
		trust:     false,
		wantRules: []string{"golden-1", "old-1"},
	}, {
		name:      "LATEST picks the newest flavor, which matches",
		group:     group(MatchLatest),
		flavors:   []SignedFlavor{platform(old, now.Add(-2*time.Hour)), platform(golden, now.Add(-time.Hour))},
		trust:     true,
		wantRules: []string{"golden-1"},
	}, {
		name:      "LATEST ignores an older matching flavor when the newest does not match",
		group:     group(MatchLatest),
		flavors:   []SignedFlavor{platform(old, now.Add(-time.Hour)), platform(golden, now.Add(-2*time.Hour))},
		trust:     false,
		wantRules: []string{"old-1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := Evaluate(tt.group, tt.flavors, defaultHost().facts(), ca.roots, now)
			if err != nil {
				t.Fatal(err)
			}
			pt := ti.FlavorsTrust[PartPlatform]
			if pt.Trust != tt.trust || ti.Overall != tt.trust {
				t.Errorf("trust = %v, OVERALL = %v, want %v; rules %+v", pt.Trust, ti.Overall, tt.trust, pt.Rules)
			}
			var got []string
			for _, r := range pt.Rules {
				if !slices.Contains(got, r.FlavorID) {
					got = append(got, r.FlavorID)
				}
			}
			if !slices.Equal(got, tt.wantRules) {
				t.Errorf("reported flavors = %v, want %v", got, tt.wantRules)
			}
		})
	}
}

func TestEvaluateWithoutEvaluatedPartsIsNotTrusted(t *testing.T) {
	ca := newPKI(t, "cms")
	g := DefaultGroups()[1] // host_unique: HOST_UNIQUE LATEST REQUIRED_IF_DEFINED
	ti, err := Evaluate(g, ca.signAll(t, goldenFlavors(t, defaultHost(), "g")), defaultHost().facts(), ca.roots, now)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Overall || len(ti.FlavorsTrust) != 0 {
		t.Errorf("trust information = %+v, want OVERALL false and no part", ti)
	}
}

func TestEvaluateRejectsAnInvalidGroup(t *testing.T) {
	g := Group{Name: "bad", MatchPolicies: []PartPolicy{{FlavorPart: PartOS, MatchPolicy: MatchPolicy{MatchType: "SOME_OF", Required: RequiredAlways}}}}
	if _, err := Evaluate(g, nil, Facts{}, nil, now); err == nil {
		t.Error("Evaluate accepted a group with an unknown match type")
	}
}

func TestTrustInformationHasTheReportShape(t *testing.T) {
	ca := newPKI(t, "cms")
	h := defaultHost()
	h.events[1].data = "patched"
	ti, err := Evaluate(automatic(), ca.signAll(t, goldenFlavors(t, defaultHost(), "g")), h.facts(), ca.roots, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ti)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Overall *bool `json:"OVERALL"`
		Flavors map[string]struct {
			Trust *bool `json:"trust"`
			Rules []struct {
				Rule struct {
					Name    string   `json:"rule_name"`
					Markers []string `json:"markers"`
				} `json:"rule"`
				FlavorID string           `json:"flavor_id"`
				Trusted  *bool            `json:"trusted"`
				Faults   []map[string]any `json:"faults"`
			} `json:"rules"`
		} `json:"flavors_trust"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Overall == nil || *m.Overall {
		t.Fatalf("OVERALL = %v in %s", m.Overall, b)
	}
	p := m.Flavors["PLATFORM"]
	if p.Trust == nil || *p.Trust || len(p.Rules) == 0 {
		t.Fatalf("PLATFORM = %+v in %s", p, b)
	}
	var found bool
	for _, r := range p.Rules {
		if r.Rule.Name == RulePcrMatchesConstant && r.Trusted != nil && !*r.Trusted && len(r.Faults) == 1 {
			f := r.Faults[0]
			found = f["fault_name"] == FaultPcrValueMismatch && f["pcr_index"] == 0.0 && f["pcr_bank"] == "SHA384" &&
				f["expected_pcrvalue"] != nil && f["actual_pcrvalue"] != nil && r.FlavorID == "g-1" && slices.Equal(r.Rule.Markers, []string{"PLATFORM"})
		}
	}
	if !found {
		t.Errorf("no PcrMatchesConstant fault with the report fields in %s", b)
	}
}

func TestAPartWithoutRuleResultsIsNotTrusted(t *testing.T) {
	if passed(nil) {
		t.Error("passed(nil) = true, want a part with no rule result untrusted")
	}
	if !passed([]RuleResult{{Trusted: true}}) || passed([]RuleResult{{Trusted: true, Faults: []appraise.Fault{{Name: "x"}}}}) {
		t.Error("passed disagrees with the rule results")
	}
}
