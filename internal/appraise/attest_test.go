package appraise

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// referenceQuoteAttest decodes a quote's TPMS_ATTEST as the appraisal did
// before decodeQuoteAttest: go-tpm's tpm2.Unmarshal, refused when the
// decoded structure does not re-encode to exactly the bytes' length.
func referenceQuoteAttest(raw []byte) (*quoteAttest, bool) {
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](raw)
	if err != nil || len(tpm2.Marshal(a)) != len(raw) {
		return nil, false
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return nil, false
	}
	out := &quoteAttest{
		qualifiedSigner: a.QualifiedSigner.Buffer,
		extraData:       a.ExtraData.Buffer,
		clockInfo: ClockInfo{Clock: a.ClockInfo.Clock, ResetCount: a.ClockInfo.ResetCount,
			RestartCount: a.ClockInfo.RestartCount, Safe: a.ClockInfo.Safe},
		firmwareVersion: a.FirmwareVersion,
		pcrDigest:       info.PCRDigest.Buffer,
	}
	for _, s := range info.PCRSelect.PCRSelections {
		out.selections = append(out.selections, pcrSelection{hash: s.Hash, mask: s.PCRSelect})
	}
	return out, true
}

func sameQuoteAttest(a, b *quoteAttest) bool {
	if !bytes.Equal(a.qualifiedSigner, b.qualifiedSigner) || !bytes.Equal(a.extraData, b.extraData) ||
		a.clockInfo != b.clockInfo || a.firmwareVersion != b.firmwareVersion ||
		!bytes.Equal(a.pcrDigest, b.pcrDigest) || len(a.selections) != len(b.selections) {
		return false
	}
	for i := range a.selections {
		if a.selections[i].hash != b.selections[i].hash || !bytes.Equal(a.selections[i].mask, b.selections[i].mask) {
			return false
		}
	}
	return true
}

// quoteHeader is the magic and type of a quote's TPMS_ATTEST, which
// parseAttest checks before it decodes the rest.
var quoteHeader = []byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18}

// FuzzDecodeQuoteAttest holds the hand-written decoder of a quote's
// TPMS_ATTEST to go-tpm's: on any bytes after the magic and type, both
// accept or both refuse, and what they accept decodes to the same fields.
func FuzzDecodeQuoteAttest(f *testing.F) {
	for _, kind := range []string{"ecc-p256", "ecc-p384", "rsassa"} {
		attest := buildQuote(f, newAK(f, kind), testNonce(), testPCRs(), quoteOptions{resetCount: 3}).Attest
		f.Add(attest[6:])
		f.Add(attest[6 : len(attest)-1])
		f.Add(append(bytes.Clone(attest[6:]), 0))
	}
	var dump gcpDump
	if err := json.Unmarshal(readFile(f, "testdata/gcp-windows-shielded-vm.json"), &dump); err != nil {
		f.Fatal(err)
	}
	f.Add(dump.Quote.Quote[6:])
	f.Add([]byte{})
	// The longest list of PCR selections go-tpm decodes, and one more.
	for _, n := range []int{maxPCRSelections, maxPCRSelections + 1} {
		body := make([]byte, 2+2+8+4+4+1+8)
		body = binary.BigEndian.AppendUint32(body, uint32(n))
		for range n {
			body = append(body, 0x00, 0x0b, 0)
		}
		f.Add(append(body, 0, 0))
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		raw := append(bytes.Clone(quoteHeader), body...)
		want, wantOK := referenceQuoteAttest(raw)
		got, err := decodeQuoteAttest(raw)
		if (err == nil) != wantOK {
			t.Fatalf("decodeQuoteAttest: %v; go-tpm accepts: %t", err, wantOK)
		}
		if wantOK && !sameQuoteAttest(got, want) {
			t.Fatalf("decoded %+v, go-tpm decodes %+v", got, want)
		}
	})
}

// BenchmarkDecodeQuoteAttest compares the decoders of a quote's
// TPMS_ATTEST.
func BenchmarkDecodeQuoteAttest(b *testing.B) {
	attest := buildQuote(b, newAK(b, "ecc-p256"), testNonce(), testPCRs(), quoteOptions{}).Attest
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeQuoteAttest(attest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tpm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := referenceQuoteAttest(attest); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// FuzzDecodeSignature holds the hand-written decoder of a TPMT_SIGNATURE
// to go-tpm's: what it decodes, go-tpm decodes to the same fields.
func FuzzDecodeSignature(f *testing.F) {
	for _, kind := range []string{"ecc-p256", "ecc-p384", "rsassa", "rsapss"} {
		sig := newAK(f, kind).sign(f, []byte("attest"))
		f.Add(sig)
		f.Add(sig[:len(sig)-1])
		f.Add(append(bytes.Clone(sig), 1, 2, 3))
	}
	var dump gcpDump
	if err := json.Unmarshal(readFile(f, "testdata/gcp-windows-shielded-vm.json"), &dump); err != nil {
		f.Fatal(err)
	}
	f.Add(dump.Quote.Signature)
	f.Add([]byte{0x00, 0x18, 0x00, 0x0b, 0x00})
	f.Add([]byte{0x00, 0x10})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := decodeSignatureByHand(raw)
		if !ok {
			return
		}
		want, err := decodeSignatureGoTPM(raw)
		if err != nil {
			t.Fatalf("decoded by hand as %+v, go-tpm refuses: %v", got, err)
		}
		if got.alg != want.alg || got.hash != want.hash || !bytes.Equal(got.sig, want.sig) ||
			!bytes.Equal(got.r, want.r) || !bytes.Equal(got.s, want.s) {
			t.Fatalf("decoded by hand as %+v, go-tpm decodes %+v", got, want)
		}
	})
}
