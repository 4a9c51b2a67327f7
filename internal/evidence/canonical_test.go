package evidence

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// roundTripHostFacts is the canonical encoding as it was first written:
// encoding/json's Marshal after a Marshal and an Unmarshal.
func roundTripHostFacts(t testing.TB, facts *HostInfo) []byte {
	t.Helper()
	if facts == nil {
		return []byte("null")
	}
	out, err := json.Marshal(overTheWire(t, facts))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// overTheWire is the host facts as the verifier decodes them from the
// agent's JSON.
func overTheWire(t testing.TB, facts *HostInfo) *HostInfo {
	t.Helper()
	wire, err := json.Marshal(facts)
	if err != nil {
		t.Fatal(err)
	}
	var got HostInfo
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

// trickyStrings are strings whose JSON encoding escapes or replaces
// something.
var trickyStrings = []string{
	"", "edge-1", "Ubuntu 24.04 LTS", `quote " and \ backslash`, "<script>&amp;</script>",
	"\b\f\n\r\t\x00\x01\x1f\x7f", "bad\xffutf8", "\xc3", "\xed\xa0\x80 surrogate", "\u2028\u2029",
	"é ü 漢字 🙂", "\ufffd", "trailing \xe2\x82",
}

// fillRandomly sets every field of v, whatever its type, from r and
// strs: a field added to HostInfo later is filled too, so the tests below
// see it.
func fillRandomly(t testing.TB, r *rand.Rand, strs []string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strs[r.IntN(len(strs))])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Pointer:
		if r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillRandomly(t, r, strs, v.Elem())
	case reflect.Slice:
		switch n := r.IntN(5); n {
		case 0:
			v.SetZero()
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				fillRandomly(t, r, strs, v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fillRandomly(t, r, strs, v.Field(i))
		}
	default:
		t.Fatalf("HostInfo has a field of kind %v that fillRandomly does not fill", v.Kind())
	}
}

func TestHostFactsEncodeAsTheirJSONRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var h HostInfo
		fillRandomly(t, r, trickyStrings, reflect.ValueOf(&h).Elem())
		if got, want := appendHostFacts(nil, &h), roundTripHostFacts(t, &h); !bytes.Equal(got, want) {
			t.Fatalf("facts %d: %+v\nencode as %s\nthe round trip gives %s", i, h, got, want)
		}
	}
	for _, h := range []*HostInfo{nil, {}} {
		if got, want := appendHostFacts(nil, h), roundTripHostFacts(t, h); !bytes.Equal(got, want) {
			t.Fatalf("%#v encodes as %s, the round trip gives %s", h, got, want)
		}
	}
}

func TestEveryHostFactIsBound(t *testing.T) {
	// Facts with every field set: changing any one field changes the
	// digest (a field the encoding forgot would be a fact the quote does
	// not bind).
	var full HostInfo
	fillAll(reflect.ValueOf(&full).Elem())
	base := HostFactsDigest(&full)
	var fields int
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		case reflect.Pointer:
			walk(v.Elem(), path)
			return
		case reflect.Slice:
			walk(v.Index(0), path+"[0]")
			return
		case reflect.String:
			old := v.String()
			v.SetString(old + "x")
			defer v.SetString(old)
		case reflect.Bool:
			old := v.Bool()
			v.SetBool(!old)
			defer v.SetBool(old)
		}
		fields++
		if HostFactsDigest(&full) == base {
			t.Errorf("changing %s leaves the digest as it was", path)
		}
	}
	walk(reflect.ValueOf(&full).Elem(), "HostInfo")
	if fields < 29 { // HostInfo had 29 leaf fields when this test was written
		t.Fatalf("only %d fields walked", fields)
	}
}

// fillAll sets every field to a non-empty value, each slice to one element.
func fillAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillAll(v.Index(0))
	case reflect.Struct:
		for i := range v.NumField() {
			fillAll(v.Field(i))
		}
	}
}

func FuzzHostFactsDigest(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add(uint64(i), s)
	}
	f.Fuzz(func(t *testing.T, seed uint64, s string) {
		r := rand.New(rand.NewPCG(seed, 7))
		strs := []string{s, s + s, "x" + s, ""}
		if len(s) > 1 {
			strs = append(strs, s[1:], s[:len(s)/2])
		}
		var h HostInfo
		fillRandomly(t, r, strs, reflect.ValueOf(&h).Elem())
		if got, want := appendHostFacts(nil, &h), roundTripHostFacts(t, &h); !bytes.Equal(got, want) {
			t.Fatalf("facts %+v\nencode as %s\nthe round trip gives %s", h, got, want)
		}
	})
}

// BenchmarkHostFactsDigest is the digest of a node's host facts.
func BenchmarkHostFactsDigest(b *testing.B) {
	secure := true
	h := &HostInfo{Version: Version, HostName: "edge-1", HardwareUUID: "3f2d0c1b-9a8e-4d7c-6b5a-49382716f0e1",
		OSName: "Ubuntu", OSVersion: "24.04", KernelRelease: "6.8.0-45-generic", BIOSName: "EDK II",
		BIOSVersion: "edk2-stable202402", BIOSDate: "02/14/2024", BootID: "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
		TPM: TPMInfo{Present: true, Version: "2.0", Manufacturer: "IBM", VendorString: "SW   TPM",
			FirmwareVersion: "20191023.1346", SpecRevision: "1.59", ActiveBanks: []string{BankSHA256, BankSHA384}},
		UEFIEnabled: true, SecureBootEfivar: &secure,
		DiskEncryption: DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
			Volumes: []CryptVolume{{Name: "root", UUID: "3f2d0c1b-9a8e-4d7c-6b5a-49382716f0e1"}}},
		IMAEnabled: true, AgentVersion: "v0.1.0"}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			HostFactsDigest(h)
		}
	})
	b.Run("json-round-trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			roundTripHostFacts(b, h)
		}
	})
}
