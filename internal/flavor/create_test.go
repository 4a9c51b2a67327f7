package flavor

import (
	"encoding/hex"
	"errors"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func TestFromEvidenceWithTheDefaultTemplate(t *testing.T) {
	h := defaultHost()
	facts := h.facts()
	fs := goldenFlavors(t, h, "c")
	if len(fs) != 3 {
		t.Fatalf("got %d flavors, want PLATFORM, OS and IMA", len(fs))
	}
	byPart := map[Part]Flavor{}
	for _, f := range fs {
		byPart[f.Meta.Description.FlavorPart] = f
	}
	p := byPart[PartPlatform]
	if p.Meta.ID != "c-1" || p.Meta.Description.Label != DefaultTemplateID || !p.Meta.Description.CreatedAt.Equal(now.Add(-60e9)) {
		t.Errorf("PLATFORM meta = %+v", p.Meta)
	}
	if len(p.PCRs) != 2 || p.PCRs[0].PCR != (PCR{0, evidence.BankSHA384}) || p.PCRs[1].PCR != (PCR{7, evidence.BankSHA384}) {
		t.Fatalf("PLATFORM pcrs = %+v, want SHA384 PCR 0 and 7", p.PCRs)
	}
	if p.PCRs[0].Measurement != hex.EncodeToString(facts.PCRs[evidence.BankSHA384][0]) || !p.PCRs[0].PCRMatches {
		t.Errorf("PCR 0 rule = %+v", p.PCRs[0])
	}
	if eq := p.PCRs[1].EventlogEquals; eq == nil || len(eq.Events) != 5 || eq.Events[4].Description != "db" {
		t.Errorf("PCR 7 eventlog_equals = %+v, want the 5 PCR 7 events", eq)
	}
	if p.Hardware == nil || !p.Hardware.Feature.UEFI.SecureBootEnabled || p.Hardware.Feature.TPM.Version != "2.0" {
		t.Errorf("PLATFORM hardware = %+v", p.Hardware)
	}
	o := byPart[PartOS]
	if len(o.PCRs) != 3 || o.PCRs[0].PCR.Index != 4 || o.PCRs[1].PCR.Index != 8 || o.PCRs[2].PCR.Index != 9 || o.Meta.Description.OSName != "ubuntu" {
		t.Errorf("OS flavor = %+v", o)
	}
	i := byPart[PartIMA]
	if i.IMALogs == nil || len(i.IMALogs.ImaMeasurements) != 3 || i.IMALogs.ImaMeasurements[1].File != "/usr/bin/kubelet" || i.IMALogs.ImaTemplate != "ima-ng" {
		t.Errorf("IMA logs = %+v", i.IMALogs)
	}
}

func TestFromEvidenceFailures(t *testing.T) {
	sha256Only := defaultHost()
	sha256Only.banks = []string{evidence.BankSHA256}
	tests := []struct {
		name      string
		manifest  func(*Manifest)
		facts     func(*Facts)
		templates func(t *testing.T) []*CompiledTemplate
		parts     []Part
		check     func(error) bool
	}{{
		name:     "a host no template condition holds for is an error",
		manifest: func(m *Manifest) { m.TPMVersion = "1.2" },
		check:    func(err error) bool { return errors.Is(err, ErrNoTemplate) },
	}, {
		name:  "a part no matching template defines is an error",
		parts: []Part{PartPlatform, PartHostUnique},
		check: func(err error) bool { return errors.Is(err, ErrNoTemplate) },
	}, {
		name:  "a PCR the quote covers in no preferred bank is missing evidence",
		facts: func(f *Facts) { delete(f.PCRs[evidence.BankSHA384], 9); delete(f.PCRs[evidence.BankSHA256], 9) },
		check: func(err error) bool {
			var me *MissingEvidenceError
			return errors.As(err, &me) && me.Part == PartOS && me.Index == 9
		},
	}, {
		name:  "PCR 7 events whose log did not replay are missing evidence",
		facts: func(f *Facts) { f.Replayed[evidence.BankSHA384][7] = false },
		check: func(err error) bool {
			var me *MissingEvidenceError
			return errors.As(err, &me) && me.Part == PartPlatform && me.Index == 7
		},
	}, {
		name:  "an IMA log that did not replay is missing evidence",
		facts: func(f *Facts) { f.IMAReplayed = false },
		check: func(err error) bool {
			var me *MissingEvidenceError
			return errors.As(err, &me) && me.Part == PartIMA
		},
	}, {
		name:  "a repeated part is an error",
		parts: []Part{PartOS, PartOS},
		check: func(err error) bool { return err != nil },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := defaultHost().facts()
			if tt.facts != nil {
				tt.facts(&facts)
			}
			m := NewManifest(&testHostInfo, facts)
			if tt.manifest != nil {
				tt.manifest(&m)
			}
			parts := tt.parts
			if parts == nil {
				parts = []Part{PartPlatform, PartOS, PartIMA}
			}
			fs, err := FromEvidence(m, facts, defaultCompiled(t), parts, ids("x"), now)
			if err == nil || !tt.check(err) {
				t.Errorf("FromEvidence() = %d flavors, %v; want the described error", len(fs), err)
			}
		})
	}
	t.Run("a host with only SHA256 gets SHA256 flavors", func(t *testing.T) {
		facts := sha256Only.facts()
		fs, err := FromEvidence(NewManifest(&testHostInfo, facts), facts, defaultCompiled(t), []Part{PartOS}, ids("x"), now)
		if err != nil {
			t.Fatal(err)
		}
		if fs[0].PCRs[0].PCR.Bank != evidence.BankSHA256 {
			t.Errorf("OS PCR 8 bank = %s, want SHA256", fs[0].PCRs[0].PCR.Bank)
		}
	})
}

func TestFromEvidenceMergesTemplatesAndHonoursTags(t *testing.T) {
	extra := Template{
		ID:        "pcr7-authorities",
		Condition: []string{`host.secure_boot_enabled`},
		FlavorParts: map[Part]PartTemplate{
			PartPlatform: {PCRRules: []PCRRuleTemplate{{
				PCR:              PCRSelector{Index: 7, Banks: []string{evidence.BankSHA256}},
				EventlogEquals:   &EventlogEqualsTemplate{ExcludingTags: []string{"EV_SEPARATOR"}},
				EventlogIncludes: []string{"EV_EFI_VARIABLE_AUTHORITY"},
			}}},
			PartHostUnique: {PCRRules: []PCRRuleTemplate{{PCR: PCRSelector{Index: 9, Banks: []string{evidence.BankSHA256}}, PCRMatches: true}}},
		},
	}
	c, err := Compile(extra)
	if err != nil {
		t.Fatal(err)
	}
	facts := defaultHost().facts()
	fs, err := FromEvidence(NewManifest(&testHostInfo, facts), facts, append(defaultCompiled(t), c),
		[]Part{PartPlatform, PartOS, PartHostUnique}, ids("m"), now)
	if err != nil {
		t.Fatal(err)
	}
	seven := fs[0].PCRs[1]
	if seven.PCR.Bank != evidence.BankSHA384 || !seven.PCRMatches {
		t.Errorf("PCR 7 rule = %+v, want the first template's bank and pcr_matches kept", seven)
	}
	if seven.EventlogEquals == nil || len(seven.EventlogEquals.Events) != 4 || len(seven.EventlogEquals.ExcludeTags) != 1 {
		t.Errorf("PCR 7 eventlog_equals = %+v, want 4 events without the separator", seven.EventlogEquals)
	}
	if len(seven.EventlogIncludes) != 1 || seven.EventlogIncludes[0].Description != "db" {
		t.Errorf("PCR 7 eventlog_includes = %+v, want the db authority", seven.EventlogIncludes)
	}
	if hu := fs[2]; hu.Meta.Description.HardwareUUID != testHostInfo.HardwareUUID || hu.Meta.Description.Label != "pcr7-authorities" {
		t.Errorf("HOST_UNIQUE meta = %+v", hu.Meta)
	}
	ca := newPKI(t, "cms")
	ti, err := Evaluate(automatic(), ca.signAll(t, fs), facts, ca.roots, now)
	if err != nil || !ti.Overall {
		t.Fatalf("Evaluate() = %+v, %v, want OVERALL true", ti, err)
	}
	h := defaultHost()
	h.events = append(h.events, testEvent{7, 0x4, "EV_SEPARATOR", "separator", "\x00\x00\x00\x01"})
	ti, err = Evaluate(automatic(), ca.signAll(t, fs), h.facts(), ca.roots, now)
	if err != nil {
		t.Fatal(err)
	}
	if fs := findFaults(ti, PartPlatform, RulePcrEventLogEquals, FaultPcrEventLogContainsUnexpectedEntries); len(fs) != 0 {
		t.Errorf("an excluded separator was reported unexpected: %+v", fs)
	}
	if len(findFaults(ti, PartPlatform, RulePcrMatchesConstant, FaultPcrValueMismatch)) != 1 {
		t.Errorf("the PCR 7 value change was not reported: %+v", ti.FlavorsTrust[PartPlatform])
	}
}
