package flavor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func templateWith(conditions ...string) Template {
	t := DefaultTemplates()[0]
	t.Condition = conditions
	return t
}

func TestCompileRejectsBadConditions(t *testing.T) {
	tests := []struct {
		name      string
		condition string
	}{
		{"a syntax error is refused", `host.tpm_version == `},
		{"an undeclared variable is refused", `host.cpu_vendor == "intel"`},
		{"a non-bool condition is refused", `host.os_name`},
		{"a type error is refused", `host.uefi_enabled == "yes"`},
		{"an over-long condition is refused", `host.os_name == "` + strings.Repeat("a", 2000) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(templateWith(tt.condition))
			if err == nil {
				t.Fatalf("Compile(%q) succeeded", tt.condition)
			}
			var ce *ConditionError
			if !errors.As(err, &ce) && !errors.Is(err, ErrInvalid) {
				t.Errorf("Compile(%q) = %v, want a ConditionError or ErrInvalid", tt.condition, err)
			}
		})
	}
}

func TestTemplateConditions(t *testing.T) {
	m := Manifest{TPMVersion: "2.0", UEFIEnabled: true, OSName: "ubuntu", OSVersion: "24.04",
		SecureBootEnabled: true, PCRBanks: []string{evidence.BankSHA256, evidence.BankSHA384}}
	tests := []struct {
		name      string
		condition []string
		want      bool
	}{
		{"the default template matches a TPM 2.0 UEFI host", DefaultTemplates()[0].Condition, true},
		{"a condition on the OS and verified Secure Boot matches", []string{`host.os_name == "ubuntu" && host.secure_boot_enabled`}, true},
		{"a condition on the banks matches", []string{`"SHA384" in host.pcr_banks`}, true},
		{"a string function matches", []string{`host.os_version.startsWith("24.")`}, true},
		{"one false condition among true ones does not match", []string{`host.uefi_enabled`, `host.tpm_version == "1.2"`}, false},
		{"an unset fact is empty, not an error", []string{`host.bios_name == ""`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(templateWith(tt.condition...))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Matches(m)
			if err != nil || got != tt.want {
				t.Errorf("Matches() = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestAConditionOverItsCostLimitIsAnError(t *testing.T) {
	c, err := Compile(templateWith(`host.pcr_banks.all(a, host.pcr_banks.all(b, host.pcr_banks.all(c, a + b + c != "x")))`))
	if err != nil {
		t.Fatal(err)
	}
	banks := make([]string, 40)
	for i := range banks {
		banks[i] = strings.Repeat("b", i)
	}
	var ce *ConditionError
	if _, err := c.Matches(Manifest{PCRBanks: banks}); !errors.As(err, &ce) {
		t.Errorf("Matches() = %v, want a ConditionError for the cost limit", err)
	}
}

func TestTemplateValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Template)
	}{
		{"a template without an id is refused", func(t *Template) { t.ID = "" }},
		{"a template without conditions is refused", func(t *Template) { t.Condition = nil }},
		{"a template without parts is refused", func(t *Template) { t.FlavorParts = nil }},
		{"a part that checks nothing is refused", func(t *Template) {
			t.FlavorParts[PartOS] = PartTemplate{PCRRules: []PCRRuleTemplate{{PCR: PCRSelector{Index: 8, Banks: []string{evidence.BankSHA256}}}}}
		}},
		{"an unknown bank is refused", func(t *Template) {
			t.FlavorParts[PartOS] = PartTemplate{PCRRules: []PCRRuleTemplate{{PCR: PCRSelector{Index: 8, Banks: []string{"MD5"}}, PCRMatches: true}}}
		}},
		{"a PCR out of range is refused", func(t *Template) {
			t.FlavorParts[PartOS] = PartTemplate{PCRRules: []PCRRuleTemplate{{PCR: PCRSelector{Index: 24, Banks: []string{evidence.BankSHA256}}, PCRMatches: true}}}
		}},
		{"an IMA log outside the IMA part is refused", func(t *Template) { t.FlavorParts[PartOS] = PartTemplate{IMALog: true} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := DefaultTemplates()[0]
			tt.edit(&tmpl)
			if err := tmpl.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDecodeTemplate(t *testing.T) {
	def, err := json.Marshal(DefaultTemplates()[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		json    string
		wantErr bool
	}{
		{"the default template round-trips", string(def), false},
		{"an unknown field is refused", strings.Replace(string(def), `"label"`, `"lable"`, 1), true},
		{"an unknown part is refused", strings.Replace(string(def), `"OS"`, `"KERNEL"`, 1), true},
		{"trailing data is refused", string(def) + "{}", true},
		{"a trailing closing brace is refused", string(def) + "}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeTemplate([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Errorf("DecodeTemplate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
