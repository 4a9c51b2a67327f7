package flavor

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeFlavor: decoding never panics, and a decoded flavor is valid
// and re-encodes to bytes that decode to the same encoding (the property
// signatures rely on).
func FuzzDecodeFlavor(f *testing.F) {
	for _, fl := range goldenFlavors(f, defaultHost(), "fz") {
		b, _ := json.Marshal(fl)
		f.Add(b)
	}
	f.Add([]byte(`{"meta":{"id":"x","description":{"flavor_part":"OS","created_at":"2026-01-01T00:00:00Z"}},"pcrs":[{"pcr":{"index":8,"bank":"SHA1"},"measurement":"0000000000000000000000000000000000000000","pcr_matches":true}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := DecodeFlavor(data)
		if err != nil {
			return
		}
		if err := fl.Validate(); err != nil {
			t.Fatalf("DecodeFlavor returned an invalid flavor: %v", err)
		}
		once, err := CanonicalEncoding(fl)
		if err != nil {
			t.Fatalf("a decoded flavor does not encode: %v", err)
		}
		again, err := DecodeFlavor(once)
		if err != nil {
			t.Fatalf("the canonical encoding does not decode: %v\n%s", err, once)
		}
		twice, _ := CanonicalEncoding(again)
		if !bytes.Equal(once, twice) {
			t.Fatalf("canonical encoding is not stable:\n%s\n%s", once, twice)
		}
	})
}

// FuzzDecodeSignedFlavorCollection: decoding and verifying never panic, and
// a collection that decodes holds only valid, signed entries.
func FuzzDecodeSignedFlavorCollection(f *testing.F) {
	ca := newPKI(f, "fuzz")
	b, _ := json.Marshal(SignedFlavorCollection{SignedFlavors: ca.signAll(f, goldenFlavors(f, defaultHost(), "fz"))})
	f.Add(b)
	f.Add([]byte(`{"signed_flavors":[{"flavor":{},"signature":"a..b"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeSignedFlavorCollection(data)
		if err != nil {
			return
		}
		for _, sf := range c.SignedFlavors {
			if sf.Signature == "" || sf.Flavor.Validate() != nil {
				t.Fatalf("decoded an invalid entry %+v", sf)
			}
			_ = Verify(sf, ca.roots, now)
		}
	})
}

// FuzzVerify: an arbitrary signature string never verifies and never panics.
func FuzzVerify(f *testing.F) {
	ca := newPKI(f, "fuzz")
	fl := goldenFlavors(f, defaultHost(), "fz")[1]
	good := ca.sign(f, fl)
	f.Add(good.Signature)
	f.Add("e30..")
	f.Add("..")
	f.Fuzz(func(t *testing.T, sig string) {
		if sig == good.Signature {
			return
		}
		if err := Verify(SignedFlavor{Flavor: good.Flavor, Signature: sig}, ca.roots, now); err == nil {
			t.Fatalf("a forged signature %q verified", sig)
		}
	})
}

// FuzzDecodeTemplate: decoding and compiling never panic; a template that
// compiles can be matched.
func FuzzDecodeTemplate(f *testing.F) {
	for _, tmpl := range DefaultTemplates() {
		b, _ := json.Marshal(tmpl)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"t","condition":["host.os_name.size() > 2"],"flavor_parts":{"OS":{"pcr_rules":[{"pcr":{"index":8,"bank":["SHA256"]},"pcr_matches":true}]}}}`))
	m := NewManifest(&testHostInfo, defaultHost().facts())
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, err := DecodeTemplate(data)
		if err != nil {
			return
		}
		c, err := Compile(tmpl)
		if err != nil {
			return
		}
		_, _ = c.Matches(m)
	})
}
