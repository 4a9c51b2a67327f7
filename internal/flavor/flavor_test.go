package flavor

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestFlavorValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Flavor)
		ok   bool
	}{
		{"a flavor made from a host is valid", func(*Flavor) {}, true},
		{"a flavor without an id is invalid", func(f *Flavor) { f.Meta.ID = "" }, false},
		{"an unknown part is invalid", func(f *Flavor) { f.Meta.Description.FlavorPart = "BIOS" }, false},
		{"a HOST_UNIQUE flavor without hardware_uuid is invalid", func(f *Flavor) { f.Meta.Description.FlavorPart = PartHostUnique }, false},
		{"an unknown bank is invalid", func(f *Flavor) { f.PCRs[0].PCR.Bank = "SHA3" }, false},
		{"a PCR index out of range is invalid", func(f *Flavor) { f.PCRs[0].PCR.Index = 24 }, false},
		{"a measurement of the wrong size is invalid", func(f *Flavor) { f.PCRs[0].Measurement = "abcd" }, false},
		{"an upper-case measurement is invalid", func(f *Flavor) { f.PCRs[0].Measurement = strings.ToUpper(f.PCRs[0].Measurement) }, false},
		{"a PCR named twice is invalid", func(f *Flavor) { f.PCRs[1].PCR = f.PCRs[0].PCR }, false},
		{"an event digest that is not hex is invalid", func(f *Flavor) { f.PCRs[1].EventlogEquals.Events[0].Digest = strings.Repeat("zz", 48) }, false},
		{"a flavor that checks nothing is invalid", func(f *Flavor) {
			f.PCRs[0].PCRMatches, f.PCRs[1].PCRMatches, f.PCRs[1].EventlogEquals = false, false, nil
		}, false},
		{"an IMA measurement without its algorithm is invalid", func(f *Flavor) {
			f.IMALogs = &IMALogs{ImaMeasurements: []IMAMeasurement{{File: "/bin/sh", Measurement: strings.Repeat("ab", 32)}}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFlavors(t, defaultHost(), "v")[0]
			tt.edit(&f)
			err := f.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDecodeFlavor(t *testing.T) {
	f := goldenFlavors(t, defaultHost(), "d")[0]
	good, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		json    []byte
		wantErr bool
	}{
		{"a flavor round-trips", good, false},
		{"an unknown field is refused", bytes.Replace(good, []byte(`"pcr_matches"`), []byte(`"pcr_match"`), 1), true},
		{"trailing data is refused", append(bytes.Clone(good), []byte(` {}`)...), true},
		// Decoder.More says false before a stray closing brace or bracket.
		{"a trailing closing brace is refused", append(bytes.Clone(good), '}'), true},
		{"a trailing closing bracket is refused", append(bytes.Clone(good), ']'), true},
		{"an oversized flavor is refused", append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxFlavorSize)...), true},
		{"an unknown part is refused", bytes.Replace(good, []byte(`"PLATFORM"`), []byte(`"FIRMWARE"`), 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFlavor(tt.json)
			if (err != nil) != tt.wantErr {
				t.Fatalf("DecodeFlavor() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			again, err := CanonicalEncoding(got)
			if err != nil || !bytes.Equal(again, good) {
				t.Errorf("re-encoding differs:\n%s\n%s", again, good)
			}
		})
	}
}

func TestDecodeCollections(t *testing.T) {
	fs := goldenFlavors(t, defaultHost(), "k")
	b, err := json.Marshal(FlavorCollection{Flavors: fs})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DecodeFlavorCollection(b); err != nil || len(c.Flavors) != 3 {
		t.Errorf("DecodeFlavorCollection() = %d flavors, %v; want 3", len(c.Flavors), err)
	}
	if _, err := DecodeFlavorCollection([]byte(`{"flavors":[]}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty collection: %v, want ErrInvalid", err)
	}
	unsigned, _ := json.Marshal(SignedFlavorCollection{SignedFlavors: []SignedFlavor{{Flavor: fs[0]}}})
	if _, err := DecodeSignedFlavorCollection(unsigned); !errors.Is(err, ErrInvalid) {
		t.Errorf("a collection entry without signature: %v, want ErrInvalid", err)
	}
}
