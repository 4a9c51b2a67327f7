// Package flavor holds flavors (golden measurements), flavor templates,
// flavor groups and the rules that appraise verified evidence against them.
//
// It is pure like internal/appraise: no I/O, no clock (now is passed in), no
// randomness (flavor IDs come from a generator the caller passes). It never
// looks at raw evidence: it works on Facts, the values that internal/appraise
// verified (quote-covered PCRs, events of PCRs whose log replayed, IMA entries
// that replayed to the quoted PCR 10). Every rule fails closed: evidence a
// rule needs and does not find is a fault, never a pass.
//
// The JSON shapes are the ones of the HVS API (flavors, flavor groups and the
// trust_information of a report).
package flavor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/evidence"
)

// Part is a flavor part: the kind of measurements a flavor holds.
type Part string

// Flavor parts. SOFTWARE and ASSET_TAG are known to the model (groups and
// reports name them) though no template creates them yet.
const (
	PartPlatform   Part = "PLATFORM"
	PartOS         Part = "OS"
	PartIMA        Part = "IMA"
	PartHostUnique Part = "HOST_UNIQUE"
	PartSoftware   Part = "SOFTWARE"
	PartAssetTag   Part = "ASSET_TAG"
)

// Parts lists every known part in report order.
func Parts() []Part {
	return []Part{PartPlatform, PartOS, PartIMA, PartHostUnique, PartSoftware, PartAssetTag}
}

// Valid reports whether p is a known part.
func (p Part) Valid() bool {
	switch p {
	case PartPlatform, PartOS, PartIMA, PartHostUnique, PartSoftware, PartAssetTag:
		return true
	}
	return false
}

// UnmarshalText rejects unknown parts, also where a part is a map key.
func (p *Part) UnmarshalText(b []byte) error {
	v := Part(b)
	if !v.Valid() {
		return fmt.Errorf("unknown flavor part %q", b)
	}
	*p = v
	return nil
}

// Flavor is a set of golden measurements of one part.
type Flavor struct {
	Meta     Meta      `json:"meta"`
	Hardware *Hardware `json:"hardware,omitempty"`
	PCRs     []PCRRule `json:"pcrs,omitempty"`
	IMALogs  *IMALogs  `json:"ima_logs,omitempty"`
}

// Meta identifies a flavor.
type Meta struct {
	ID          string      `json:"id"`
	Description Description `json:"description"`
}

// Description says what a flavor is for and where it came from.
type Description struct {
	FlavorPart  Part   `json:"flavor_part"`
	Label       string `json:"label,omitempty"`
	BiosName    string `json:"bios_name,omitempty"`
	BiosVersion string `json:"bios_version,omitempty"`
	OSName      string `json:"os_name,omitempty"`
	OSVersion   string `json:"os_version,omitempty"`
	TPMVersion  string `json:"tpm_version,omitempty"`
	// HardwareUUID is set on HOST_UNIQUE flavors: the host they belong to.
	HardwareUUID string `json:"hardware_uuid,omitempty"`
	// Source names the host (or tool) the flavor was made from.
	Source string `json:"source,omitempty"`
	// CreatedAt orders flavors for the LATEST match policy.
	CreatedAt time.Time `json:"created_at"`
}

// Hardware records the platform features of the host a flavor came from.
type Hardware struct {
	Feature Feature `json:"feature"`
}

// Feature is the hardware feature set.
type Feature struct {
	TPM  *TPMFeature  `json:"TPM,omitempty"`
	UEFI *UEFIFeature `json:"UEFI,omitempty"`
}

// TPMFeature describes the TPM.
type TPMFeature struct {
	Enabled  bool     `json:"enabled"`
	Version  string   `json:"version,omitempty"`
	PCRBanks []string `json:"pcr_banks,omitempty"`
}

// UEFIFeature describes the firmware; SecureBootEnabled comes from the
// verified PCR 7 events.
type UEFIFeature struct {
	Enabled           bool `json:"enabled"`
	SecureBootEnabled bool `json:"secure_boot_enabled"`
}

// PCR names one PCR of one bank.
type PCR struct {
	Index int    `json:"index"`
	Bank  string `json:"bank"`
}

func (p PCR) String() string { return fmt.Sprintf("%s PCR %d", p.Bank, p.Index) }

// PCRRule holds the golden value and events of one PCR and says which
// rules apply to it.
type PCRRule struct {
	PCR PCR `json:"pcr"`
	// Measurement is the PCR value in lower-case hex.
	Measurement string `json:"measurement"`
	// PCRMatches asks for the PcrMatchesConstant rule.
	PCRMatches bool `json:"pcr_matches"`
	// EventlogEquals asks for the PcrEventLogEquals rule.
	EventlogEquals *EventlogEquals `json:"eventlog_equals,omitempty"`
	// EventlogIncludes asks for the PcrEventLogIncludes rule.
	EventlogIncludes []EventDigest `json:"eventlog_includes,omitempty"`
}

// EventlogEquals is the full event list of a PCR, without the events whose
// tag is excluded.
type EventlogEquals struct {
	Events      []EventDigest `json:"events"`
	ExcludeTags []string      `json:"exclude_tags,omitempty"`
}

// EventDigest is one measured-boot event as a flavor holds it. Events compare
// by type and digest; the name and description are for people.
type EventDigest struct {
	TypeID      uint32 `json:"type_id"`
	TypeName    string `json:"type_name,omitempty"`
	Digest      string `json:"digest"`
	Description string `json:"description,omitempty"`
	// Unverified marks an event from a log whose digest does not cover its
	// data, so its description is the log's claim (appraise.Event.Verified);
	// fault entries say so. It is not part of a flavor.
	Unverified bool `json:"-"`
}

// IMALogs is the golden IMA file list.
type IMALogs struct {
	ImaMeasurements []IMAMeasurement `json:"ima_measurements"`
	ImaTemplate     string           `json:"ima_template,omitempty"`
}

// IMAMeasurement is one measured file. Measurement is "<hash alg>:<hex>"
// (e.g. "sha256:9f86…"), as the ima-ng template writes it.
type IMAMeasurement struct {
	File        string `json:"file"`
	Measurement string `json:"measurement"`
}

// SignedFlavor is a flavor and its signature (see Sign).
type SignedFlavor struct {
	Flavor    Flavor `json:"flavor"`
	Signature string `json:"signature"`
}

// FlavorCollection is a set of unsigned flavors, as uploaded.
type FlavorCollection struct {
	Flavors []Flavor `json:"flavors"`
}

// SignedFlavorCollection is a set of signed flavors, as listed and uploaded.
type SignedFlavorCollection struct {
	SignedFlavors []SignedFlavor `json:"signed_flavors"`
}

// Limits of decoded input.
const (
	// MaxFlavorSize bounds one encoded flavor (IMA file lists are long).
	MaxFlavorSize = 4 << 20
	// MaxCollectionSize bounds an encoded flavor collection.
	MaxCollectionSize = 32 << 20
	// MaxCollectionFlavors bounds the flavors of one collection.
	MaxCollectionFlavors = 1024
	maxIDLength          = 128
	maxPCRRules          = 3 * 24
	maxEvents            = 4096
	maxTags              = 64
	maxIMAMeasurements   = 1 << 16
)

// ErrInvalid is wrapped by every validation and decode error of this package.
var ErrInvalid = errors.New("invalid flavor data")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// decodeStrict decodes one JSON value: unknown fields, trailing data and
// oversized input are errors.
func decodeStrict(data []byte, limit int, v any) error {
	if len(data) > limit {
		return invalid("%d bytes exceed the %d byte limit", len(data), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// Not dec.More, which says false before a stray "}" or "]".
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("trailing data after the JSON value")
	}
	return nil
}

// decodeValid decodes one JSON value strictly and validates it with check;
// what names the value in the error.
func decodeValid[T any](data []byte, limit int, what string, check func(*T) error) (T, error) {
	var v, zero T
	if err := decodeStrict(data, limit, &v); err != nil {
		return zero, fmt.Errorf("decode %s: %w", what, err)
	}
	if err := check(&v); err != nil {
		return zero, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

// DecodeFlavor parses and validates one flavor.
func DecodeFlavor(data []byte) (Flavor, error) {
	return decodeValid(data, MaxFlavorSize, "flavor", (*Flavor).Validate)
}

// DecodeFlavorCollection parses and validates a flavor collection.
func DecodeFlavorCollection(data []byte) (FlavorCollection, error) {
	return decodeValid(data, MaxCollectionSize, "flavor collection", func(c *FlavorCollection) error {
		return validateEach(c.Flavors, (*Flavor).Validate)
	})
}

// DecodeSignedFlavorCollection parses a signed flavor collection and
// validates every flavor. It does not check signatures: Verify does.
func DecodeSignedFlavorCollection(data []byte) (SignedFlavorCollection, error) {
	return decodeValid(data, MaxCollectionSize, "signed flavor collection", func(c *SignedFlavorCollection) error {
		return validateEach(c.SignedFlavors, func(sf *SignedFlavor) error {
			if err := sf.Flavor.Validate(); err != nil {
				return err
			}
			if sf.Signature == "" {
				return invalid("signature is missing")
			}
			return nil
		})
	})
}

// validateEach checks that a collection holds 1 to MaxCollectionFlavors
// flavors and that check accepts each of them.
func validateEach[T any](flavors []T, check func(*T) error) error {
	if n := len(flavors); n == 0 || n > MaxCollectionFlavors {
		return invalid("%d flavors, want 1 to %d", n, MaxCollectionFlavors)
	}
	for i := range flavors {
		if err := check(&flavors[i]); err != nil {
			return fmt.Errorf("flavor %d: %w", i, err)
		}
	}
	return nil
}

// bankSize returns the digest size of a PCR bank, or 0 for an unknown bank.
func bankSize(bank string) int {
	switch bank {
	case evidence.BankSHA1:
		return 20
	case evidence.BankSHA256:
		return 32
	case evidence.BankSHA384:
		return 48
	}
	return 0
}

// imaHashSizes are the file hash algorithms an IMA measurement may name.
var imaHashSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "md5": 16, "sm3": 32}

// checkHex checks a lower-case hex digest of n bytes.
func checkHex(s string, n int) error {
	if len(s) != 2*n {
		return fmt.Errorf("has %d hex digits, want %d", len(s), 2*n)
	}
	if strings.ToLower(s) != s {
		return errors.New("is not lower-case hex")
	}
	if _, err := hex.DecodeString(s); err != nil {
		return errors.New("is not hex")
	}
	return nil
}

// Validate checks a flavor: a known part, well-formed digests of the right
// size and at least one measurement rule, so that no flavor can be trusted
// while checking nothing.
func (f *Flavor) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, invalid(format, args...)) }
	if f.Meta.ID == "" || len(f.Meta.ID) > maxIDLength {
		add("meta.id must be 1 to %d bytes", maxIDLength)
	}
	part := f.Meta.Description.FlavorPart
	if !part.Valid() {
		add("unknown flavor part %q", part)
	}
	if part == PartHostUnique && f.Meta.Description.HardwareUUID == "" {
		add("a HOST_UNIQUE flavor must name its hardware_uuid")
	}
	if len(f.PCRs) > maxPCRRules {
		add("%d pcr rules exceed the limit of %d", len(f.PCRs), maxPCRRules)
	}
	rules := 0
	seen := map[PCR]bool{}
	for _, r := range f.PCRs {
		size := bankSize(r.PCR.Bank)
		switch {
		case size == 0:
			add("%s: unknown bank", r.PCR)
			continue
		case r.PCR.Index < 0 || r.PCR.Index > 23:
			add("%s: index out of range 0-23", r.PCR)
			continue
		case seen[r.PCR]:
			add("%s: named twice", r.PCR)
		}
		seen[r.PCR] = true
		if r.Measurement != "" || r.PCRMatches {
			if err := checkHex(r.Measurement, size); err != nil {
				add("%s: measurement %v", r.PCR, err)
			}
		}
		if r.PCRMatches {
			rules++
		}
		if r.EventlogEquals != nil {
			rules++
			errs = append(errs, checkEvents(r.PCR, r.EventlogEquals.Events, size)...)
			if len(r.EventlogEquals.ExcludeTags) > maxTags {
				add("%s: more than %d excluded tags", r.PCR, maxTags)
			}
		}
		if len(r.EventlogIncludes) > 0 {
			rules++
			errs = append(errs, checkEvents(r.PCR, r.EventlogIncludes, size)...)
		}
	}
	if l := f.IMALogs; l != nil {
		rules++
		if len(l.ImaMeasurements) > maxIMAMeasurements {
			add("%d IMA measurements exceed the limit of %d", len(l.ImaMeasurements), maxIMAMeasurements)
		}
		for i, m := range l.ImaMeasurements {
			if m.File == "" {
				add("ima measurement %d: file is empty", i)
			}
			alg, digest, ok := strings.Cut(m.Measurement, ":")
			size := imaHashSizes[alg]
			if !ok || size == 0 {
				add("ima measurement %d (%s): measurement must be <alg>:<hex>", i, m.File)
				continue
			}
			if err := checkHex(digest, size); err != nil {
				add("ima measurement %d (%s): digest %v", i, m.File, err)
			}
		}
	}
	if rules == 0 {
		add("the flavor has no measurement rule (pcr_matches, eventlog_equals, eventlog_includes or ima_logs)")
	}
	return errors.Join(errs...)
}

func checkEvents(p PCR, events []EventDigest, size int) []error {
	if len(events) > maxEvents {
		return []error{invalid("%s: %d events exceed the limit of %d", p, len(events), maxEvents)}
	}
	var errs []error
	for i, e := range events {
		if err := checkHex(e.Digest, size); err != nil {
			errs = append(errs, invalid("%s: event %d: digest %v", p, i, err))
		}
	}
	return errs
}
