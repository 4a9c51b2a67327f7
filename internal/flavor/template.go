package flavor

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"cel.dev/cel-go/cel"

	"trustedcompute.io/tc/internal/evidence"
)

// Template says which PCR rules make each flavor part, for the hosts whose
// manifest satisfies every Condition.
type Template struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
	// Condition holds CEL expressions over the host manifest (see Manifest
	// for the variables); all must be true for the template to apply.
	Condition   []string              `json:"condition"`
	FlavorParts map[Part]PartTemplate `json:"flavor_parts"`
}

// PartTemplate makes one flavor part.
type PartTemplate struct {
	PCRRules []PCRRuleTemplate `json:"pcr_rules,omitempty"`
	// IMALog puts the replay-verified IMA file list into the flavor (IMA part only).
	IMALog bool `json:"ima_log,omitempty"`
}

// PCRRuleTemplate makes one PCRRule of a flavor.
type PCRRuleTemplate struct {
	PCR              PCRSelector             `json:"pcr"`
	PCRMatches       bool                    `json:"pcr_matches,omitempty"`
	EventlogEquals   *EventlogEqualsTemplate `json:"eventlog_equals,omitempty"`
	EventlogIncludes []string                `json:"eventlog_includes,omitempty"`
}

// PCRSelector names a PCR and the banks to take it from, in order of
// preference: the first bank the quote covers is used.
type PCRSelector struct {
	Index int      `json:"index"`
	Banks []string `json:"bank"`
}

// EventlogEqualsTemplate asks for the PCR's full event list, without the
// events whose tag is excluded.
type EventlogEqualsTemplate struct {
	ExcludingTags []string `json:"excluding_tags,omitempty"`
}

// Limits of templates.
const (
	// MaxTemplateSize bounds an encoded template.
	MaxTemplateSize   = 64 << 10
	maxConditions     = 16
	maxConditionBytes = 1024
	// conditionCostLimit bounds the runtime cost of one condition.
	conditionCostLimit = 10000
)

// DefaultTemplateID names the template DefaultTemplates ships.
const DefaultTemplateID = "default-tpm2-uefi"

// DefaultTemplates returns the shipped templates: for TPM 2.0 and UEFI,
// PLATFORM from PCR 0 (value) and PCR 7 (value and events), OS from PCR 4,
// 8 and 9 (values), IMA from the IMA file list (PCR 10 recorded), SHA384
// preferred over SHA256.
func DefaultTemplates() []Template {
	banks := []string{evidence.BankSHA384, evidence.BankSHA256}
	pcr := func(i int) PCRSelector { return PCRSelector{Index: i, Banks: banks} }
	return []Template{{
		ID:        DefaultTemplateID,
		Label:     "TPM 2.0 with UEFI",
		Condition: []string{`host.tpm_version == "2.0"`, `host.uefi_enabled`},
		FlavorParts: map[Part]PartTemplate{
			PartPlatform: {PCRRules: []PCRRuleTemplate{
				{PCR: pcr(0), PCRMatches: true},
				{PCR: pcr(7), PCRMatches: true, EventlogEquals: &EventlogEqualsTemplate{}},
			}},
			// PCR 4 holds the boot applications (the signed kernel image);
			// without it a new kernel with the same command line would go
			// unnoticed. The reference system uses PCR 8 and 9 only.
			PartOS: {PCRRules: []PCRRuleTemplate{
				{PCR: pcr(4), PCRMatches: true},
				{PCR: pcr(8), PCRMatches: true},
				{PCR: pcr(9), PCRMatches: true},
			}},
			PartIMA: {PCRRules: []PCRRuleTemplate{{PCR: pcr(10)}}, IMALog: true},
		},
	}}
}

// Manifest is what a template condition sees of a host: the agent's host
// facts plus facts read from verified evidence. In CEL each field is the
// variable named in its comment.
type Manifest struct {
	HostName      string // host.host_name
	HardwareUUID  string // host.hardware_uuid
	OSName        string // host.os_name
	OSVersion     string // host.os_version
	KernelRelease string // host.kernel_release
	BIOSName      string // host.bios_name
	BIOSVersion   string // host.bios_version
	TPMVersion    string // host.tpm_version
	UEFIEnabled   bool   // host.uefi_enabled
	// SecureBootEnabled comes from the replay-verified PCR 7 events.
	SecureBootEnabled bool // host.secure_boot_enabled
	IMAEnabled        bool // host.ima_enabled
	// PCRBanks are the banks the quote covers.
	PCRBanks []string // host.pcr_banks
}

// NewManifest builds the manifest of a host from its (unsigned) host facts
// and its verified facts; Secure Boot and the banks come from the latter.
func NewManifest(h *evidence.HostInfo, f Facts) Manifest {
	var m Manifest
	if h != nil {
		m = Manifest{
			HostName: h.HostName, HardwareUUID: h.HardwareUUID,
			OSName: h.OSName, OSVersion: h.OSVersion, KernelRelease: h.KernelRelease,
			BIOSName: h.BIOSName, BIOSVersion: h.BIOSVersion,
			TPMVersion: h.TPM.Version, UEFIEnabled: h.UEFIEnabled, IMAEnabled: h.IMAEnabled,
		}
	}
	m.SecureBootEnabled = f.SecureBoot.Enabled
	for bank := range f.PCRs {
		m.PCRBanks = append(m.PCRBanks, bank)
	}
	sort.Strings(m.PCRBanks)
	return m
}

func (m Manifest) activation() map[string]any {
	banks := m.PCRBanks
	if banks == nil {
		banks = []string{}
	}
	return map[string]any{
		"host.host_name":           m.HostName,
		"host.hardware_uuid":       m.HardwareUUID,
		"host.os_name":             m.OSName,
		"host.os_version":          m.OSVersion,
		"host.kernel_release":      m.KernelRelease,
		"host.bios_name":           m.BIOSName,
		"host.bios_version":        m.BIOSVersion,
		"host.tpm_version":         m.TPMVersion,
		"host.uefi_enabled":        m.UEFIEnabled,
		"host.secure_boot_enabled": m.SecureBootEnabled,
		"host.ima_enabled":         m.IMAEnabled,
		"host.pcr_banks":           banks,
	}
}

// celEnv declares the manifest variables; it is immutable once built.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{cel.Variable("host.pcr_banks", cel.ListType(cel.StringType))}
	for _, s := range []string{"host_name", "hardware_uuid", "os_name", "os_version", "kernel_release", "bios_name", "bios_version", "tpm_version"} {
		opts = append(opts, cel.Variable("host."+s, cel.StringType))
	}
	for _, b := range []string{"uefi_enabled", "secure_boot_enabled", "ima_enabled"} {
		opts = append(opts, cel.Variable("host."+b, cel.BoolType))
	}
	opts = append(opts, cel.ParserExpressionSizeLimit(maxConditionBytes), cel.ParserRecursionLimit(32))
	return cel.NewEnv(opts...)
})

// ConditionError says why a template condition does not compile or run.
type ConditionError struct {
	Template  string
	Index     int
	Condition string
	Err       error
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("template %q condition %d %q: %v", e.Template, e.Index, e.Condition, e.Err)
}

func (e *ConditionError) Unwrap() error { return e.Err }

// CompiledTemplate is a validated template with its conditions compiled.
// It is safe for concurrent use.
type CompiledTemplate struct {
	t        Template
	programs []cel.Program
}

// Compile validates a template and compiles and type-checks its conditions
// once; each condition must be a bool expression over the manifest.
func Compile(t Template) (*CompiledTemplate, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("compile template %q: %w", t.ID, err)
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("compile template %q: cel environment: %w", t.ID, err)
	}
	c := &CompiledTemplate{t: t}
	for i, cond := range t.Condition {
		cerr := func(err error) error { return &ConditionError{Template: t.ID, Index: i, Condition: cond, Err: err} }
		ast, iss := env.Compile(cond)
		if iss.Err() != nil {
			return nil, fmt.Errorf("compile template: %w", cerr(iss.Err()))
		}
		if !ast.OutputType().IsExactType(cel.BoolType) {
			return nil, fmt.Errorf("compile template: %w", cerr(fmt.Errorf("has type %s, want bool", ast.OutputType())))
		}
		prg, err := env.Program(ast, cel.CostLimit(conditionCostLimit))
		if err != nil {
			return nil, fmt.Errorf("compile template: %w", cerr(err))
		}
		c.programs = append(c.programs, prg)
	}
	return c, nil
}

// Template returns the template c was compiled from.
func (c *CompiledTemplate) Template() Template { return c.t }

// Matches reports whether every condition holds for the manifest. A
// condition that fails to evaluate (e.g. over its cost limit) is an error.
func (c *CompiledTemplate) Matches(m Manifest) (bool, error) {
	act := m.activation()
	for i, prg := range c.programs {
		out, _, err := prg.Eval(act)
		if err != nil {
			return false, &ConditionError{Template: c.t.ID, Index: i, Condition: c.t.Condition[i], Err: err}
		}
		if ok, isBool := out.Value().(bool); !isBool || !ok {
			return false, nil
		}
	}
	return true, nil
}

// DecodeTemplate parses and validates a template; Compile checks its conditions.
func DecodeTemplate(data []byte) (Template, error) {
	return decodeValid(data, MaxTemplateSize, "template", (*Template).Validate)
}

// Validate checks a template's structure (not its CEL: Compile does).
func (t *Template) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, invalid(format, args...)) }
	if t.ID == "" || len(t.ID) > maxIDLength {
		add("template id must be 1 to %d bytes", maxIDLength)
	}
	if n := len(t.Condition); n == 0 || n > maxConditions {
		add("template needs 1 to %d conditions, has %d", maxConditions, n)
	}
	for i, c := range t.Condition {
		if c == "" || len(c) > maxConditionBytes {
			add("condition %d must be 1 to %d bytes", i, maxConditionBytes)
		}
	}
	if len(t.FlavorParts) == 0 {
		add("template defines no flavor part")
	}
	for part, pt := range t.FlavorParts {
		if !part.Valid() {
			add("unknown flavor part %q", part)
			continue
		}
		if pt.IMALog && part != PartIMA {
			add("%s: ima_log belongs to the IMA part", part)
		}
		checks := pt.IMALog
		if len(pt.PCRRules) > 24 {
			add("%s: more than 24 pcr rules", part)
		}
		seen := map[int]bool{}
		for _, r := range pt.PCRRules {
			if r.PCR.Index < 0 || r.PCR.Index > 23 {
				add("%s: pcr index %d out of range 0-23", part, r.PCR.Index)
			}
			if seen[r.PCR.Index] {
				add("%s: pcr %d named twice", part, r.PCR.Index)
			}
			seen[r.PCR.Index] = true
			if n := len(r.PCR.Banks); n == 0 || n > 3 {
				add("%s: pcr %d needs 1 to 3 banks", part, r.PCR.Index)
			}
			banks := map[string]bool{}
			for _, b := range r.PCR.Banks {
				if bankSize(b) == 0 || banks[b] {
					add("%s: pcr %d: unknown or repeated bank %q", part, r.PCR.Index, b)
				}
				banks[b] = true
			}
			if (r.EventlogEquals != nil && len(r.EventlogEquals.ExcludingTags) > maxTags) || len(r.EventlogIncludes) > maxTags {
				add("%s: pcr %d: more than %d tags", part, r.PCR.Index, maxTags)
			}
			checks = checks || r.PCRMatches || r.EventlogEquals != nil || len(r.EventlogIncludes) > 0
		}
		if !checks {
			add("%s: the part checks nothing (no pcr_matches, eventlog rule or ima_log)", part)
		}
	}
	return errors.Join(errs...)
}
