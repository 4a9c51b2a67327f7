package appraise

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

func testPCRs() PCRs {
	return PCRs{
		evidence.BankSHA256: {0: bytes.Repeat([]byte{1}, 32), 7: bytes.Repeat([]byte{7}, 32), 10: bytes.Repeat([]byte{10}, 32)},
		evidence.BankSHA384: {0: bytes.Repeat([]byte{2}, 48), 7: bytes.Repeat([]byte{8}, 48)},
	}
}

func TestVerifyQuoteAcceptsGenuineQuotes(t *testing.T) {
	for _, kind := range []string{"ecc-p256", "ecc-p384", "rsassa", "rsapss"} {
		t.Run("a quote signed by an "+kind+" AK verifies", func(t *testing.T) {
			ak := newAK(t, kind)
			pcrs := testPCRs()
			rsp := buildQuote(t, ak, testNonce(), pcrs, quoteOptions{resetCount: 9})
			q, faults := VerifyQuote(ak.public, boundNonce(), rsp)
			if len(faults) > 0 {
				t.Fatalf("faults: %v", faults)
			}
			for bank, values := range pcrs {
				for i, v := range values {
					if !bytes.Equal(q.PCRs[bank][i], v) {
						t.Errorf("%s PCR %d = %x, want %x", bank, i, q.PCRs[bank][i], v)
					}
				}
				if len(q.PCRs[bank]) != len(values) {
					t.Errorf("%s has %d verified PCRs, want %d", bank, len(q.PCRs[bank]), len(values))
				}
			}
			if q.ClockInfo.ResetCount != 9 || q.ClockInfo.RestartCount != 2 || !q.ClockInfo.Safe || q.ClockInfo.Clock != 123456 {
				t.Errorf("clock info = %+v", q.ClockInfo)
			}
			if q.FirmwareVersion != 0x2000_0001 || len(q.QualifiedSigner) != 34 {
				t.Errorf("firmware %x signer %x", q.FirmwareVersion, q.QualifiedSigner)
			}
		})
	}
}

func TestVerifyQuoteNamesEachFault(t *testing.T) {
	otherAK := newAK(t, "ecc-p256")
	rsaAK := newAK(t, "rsassa")
	tests := []struct {
		name   string
		kind   string
		opt    quoteOptions
		ak     func(ak *testAK) []byte // the enrolled AK; the signer when nil
		nonce  []byte
		mutate func(rsp *evidence.QuoteResponse)
		want   []string
	}{
		{name: "an attest without TPM_GENERATED_VALUE is refused", opt: quoteOptions{magic: 0x12345678},
			want: []string{FaultQuoteMagic}},
		{name: "an attest that is not a quote is refused", opt: quoteOptions{typ: tpm2.TPMSTAttestCertify},
			want: []string{FaultQuoteType}},
		{name: "a quote over another nonce is refused", nonce: bytes.Repeat([]byte{9}, 32),
			want: []string{FaultQuoteNonce}},
		{name: "a quote checked without a nonce is refused", nonce: []byte{},
			want: []string{FaultQuoteNonce}},
		{name: "a signature with one flipped byte is refused",
			mutate: func(r *evidence.QuoteResponse) { r.Signature[len(r.Signature)-1] ^= 1 },
			want:   []string{FaultQuoteSignature}},
		{name: "an attest with one flipped byte after signing is refused",
			mutate: func(r *evidence.QuoteResponse) { r.Attest[len(r.Attest)-1] ^= 1 },
			want:   []string{FaultQuoteSignature, FaultQuotePCRDigest}},
		{name: "a quote signed by another AK of the same type is refused",
			ak:   func(*testAK) []byte { return otherAK.public },
			want: []string{FaultAKMismatch, FaultQuoteSignature}},
		{name: "an ECDSA quote checked against an RSA AK is refused",
			ak:   func(*testAK) []byte { return rsaAK.public },
			want: []string{FaultAKMismatch, FaultAKMismatch}},
		{name: "an RSA quote checked against an ECC AK is refused", kind: "rsassa",
			ak:   func(*testAK) []byte { return otherAK.public },
			want: []string{FaultAKMismatch, FaultAKMismatch}},
		{name: "a PCR value changed after the quote is refused",
			mutate: func(r *evidence.QuoteResponse) { r.PCRs[1].Value = bytes.Repeat([]byte{0xee}, 32) },
			want:   []string{FaultQuotePCRDigest}},
		{name: "a quoted PCR that is not reported is refused",
			mutate: func(r *evidence.QuoteResponse) { r.PCRs = r.PCRs[1:] },
			want:   []string{FaultQuotePCRSelection}},
		{name: "a quoted PCR reported twice is refused",
			mutate: func(r *evidence.QuoteResponse) { r.PCRs = append(r.PCRs, r.PCRs[0]) },
			want:   []string{FaultQuotePCRSelection}},
		{name: "a reported PCR value of the wrong size is refused",
			mutate: func(r *evidence.QuoteResponse) { r.PCRs[0].Value = r.PCRs[0].Value[:20] },
			want:   []string{FaultQuotePCRSelection}},
		{name: "values that were not the ones quoted are refused even when well formed",
			opt:  quoteOptions{digestPCRs: PCRs{evidence.BankSHA256: {0: make([]byte, 32), 7: make([]byte, 32), 10: make([]byte, 32)}, evidence.BankSHA384: {0: make([]byte, 48), 7: make([]byte, 48)}}},
			want: []string{FaultQuotePCRDigest}},
		{name: "a missing attest is missing evidence", mutate: func(r *evidence.QuoteResponse) { r.Attest = nil },
			want: []string{FaultEvidenceMissing}},
		{name: "a missing signature is missing evidence", mutate: func(r *evidence.QuoteResponse) { r.Signature = nil },
			want: []string{FaultEvidenceMissing}},
		{name: "an agent error is missing evidence",
			mutate: func(r *evidence.QuoteResponse) {
				r.Error = &evidence.Error{Code: evidence.CodeTPMUnavailable, Message: "no TPM"}
			},
			want: []string{FaultEvidenceMissing}},
		{name: "a truncated attest is unparsable", mutate: func(r *evidence.QuoteResponse) { r.Attest = r.Attest[:20] },
			want: []string{FaultEvidenceUnparsable}},
		{name: "an attest with trailing bytes is unparsable", mutate: func(r *evidence.QuoteResponse) { r.Attest = append(r.Attest, 0) },
			want: []string{FaultEvidenceUnparsable}},
		{name: "a truncated signature is unparsable", mutate: func(r *evidence.QuoteResponse) { r.Signature = r.Signature[:3] },
			want: []string{FaultEvidenceUnparsable}},
		{name: "an enrolled AK that does not decode is invalid", ak: func(ak *testAK) []byte { return ak.public[:10] },
			want: []string{FaultAKInvalid}},
		{name: "an enrolled AK that is not restricted is invalid", ak: func(ak *testAK) []byte {
			pub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ak.public)
			pub.ObjectAttributes.Restricted = false
			return tpm2.Marshal(pub)
		}, want: []string{FaultAKInvalid}},
		{name: "an enrolled AK that can decrypt is invalid", ak: func(ak *testAK) []byte {
			pub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ak.public)
			pub.ObjectAttributes.Decrypt = true
			return tpm2.Marshal(pub)
		}, want: []string{FaultAKInvalid}},
		{name: "a quote with no PCR selected proves nothing", mutate: nil, kind: "empty",
			want: []string{FaultQuotePCRSelection}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, pcrs := tt.kind, testPCRs()
			if kind == "empty" {
				kind, pcrs = "", PCRs{}
			}
			if kind == "" {
				kind = "ecc-p256"
			}
			ak := newAK(t, kind)
			rsp := buildQuote(t, ak, testNonce(), pcrs, tt.opt)
			if tt.mutate != nil {
				tt.mutate(rsp)
			}
			enrolled := ak.public
			if tt.ak != nil {
				enrolled = tt.ak(ak)
			}
			nonce := boundNonce()
			if tt.nonce != nil {
				nonce = tt.nonce
			}
			q, faults := VerifyQuote(enrolled, nonce, rsp)
			if q != nil {
				t.Errorf("VerifyQuote returned a verified quote with faults %v", faults)
			}
			if got := faultNames(faults); !slices.Equal(got, tt.want) {
				t.Errorf("faults = %v, want %v", faults, tt.want)
			}
		})
	}
}

func TestVerifyQuoteReportsDigestValues(t *testing.T) {
	ak := newAK(t, "ecc-p256")
	rsp := buildQuote(t, ak, testNonce(), testPCRs(), quoteOptions{})
	rsp.PCRs[0].Value = bytes.Repeat([]byte{0xee}, 32)
	_, faults := VerifyQuote(ak.public, boundNonce(), rsp)
	if len(faults) != 1 || faults[0].Expected == "" || faults[0].Actual == "" || faults[0].Expected == faults[0].Actual {
		t.Fatalf("faults = %+v, want one digest fault with distinct expected and actual values", faults)
	}
}

func TestVerifyQuoteIgnoresReportedValuesOutsideTheSelection(t *testing.T) {
	ak := newAK(t, "ecc-p256")
	rsp := buildQuote(t, ak, testNonce(), testPCRs(), quoteOptions{})
	rsp.PCRs = append(rsp.PCRs, evidence.PCRValue{Bank: evidence.BankSHA256, Index: 14, Value: make([]byte, 32)})
	q, faults := VerifyQuote(ak.public, boundNonce(), rsp)
	if len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	if _, ok := q.PCRs[evidence.BankSHA256][14]; ok {
		t.Error("an unquoted PCR value was reported as verified")
	}
}

func TestVerifyQuoteRefusesAWrongAKName(t *testing.T) {
	ak := newAK(t, "ecc-p256")
	rsp := buildQuote(t, ak, testNonce(), testPCRs(), quoteOptions{})
	rsp.AKName = newAK(t, "ecc-p256").name
	if _, faults := VerifyQuote(ak.public, boundNonce(), rsp); !slices.Equal(faultNames(faults), []string{FaultAKMismatch}) {
		t.Fatalf("faults = %v, want only %s", faults, FaultAKMismatch)
	}
}

// A caller keeps parsed AKs to spare decoding one at every appraisal. A
// parsed AK must vouch only for the public area it was parsed from: if an
// appraisal took it for another host's AK, or for a re-enrolled host's new
// one, a quote signed by the old key would verify.
func TestAParsedAKIsUsedOnlyForItsOwnPublicArea(t *testing.T) {
	signer := newAK(t, "ecc-p256")
	other := newAK(t, "ecc-p256")
	parsed, err := ParseAK(signer.public)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(signer.public)
	flipped[len(flipped)-1] ^= 1 // the last byte of the public point
	rsp := buildQuote(t, signer, testNonce(), testPCRs(), quoteOptions{})
	tests := []struct {
		name     string
		enrolled []byte
		trusted  bool
	}{
		{"the signer's own public area verifies with its parsed AK", signer.public, true},
		{"another host's AK is parsed anew and refuses the signer's quote", other.public, false},
		{"the signer's public area with one changed byte is parsed anew", flipped, false},
		{"an enrolled AK that does not decode is invalid whatever was parsed", signer.public[:12], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, want := VerifyQuote(tt.enrolled, boundNonce(), rsp)
			_, got := verifyQuote(tt.enrolled, parsed, boundNonce(), rsp)
			if !slices.Equal(faultNames(got), faultNames(want)) {
				t.Fatalf("with the parsed AK: faults %v; parsing the enrolled bytes: %v", faultNames(got), faultNames(want))
			}
			if (len(got) == 0) != tt.trusted {
				t.Fatalf("faults %v, want trusted %v", faultNames(got), tt.trusted)
			}
			in := Input{AKPublic: tt.enrolled, AK: parsed, Request: evidence.QuoteRequest{Nonce: testNonce()}, Response: rsp}
			if v := Appraise(in, testNow); v.Quote != nil && !tt.trusted {
				t.Fatalf("Appraise verified the quote with the AK of other bytes: faults %v", faultNames(v.Faults))
			}
		})
	}
	if !bytes.Equal(parsed.Public(), signer.public) {
		t.Fatal("the parsed AK does not hold its public area")
	}
}

func TestParseAKRefusesWhatAnAppraisalRefuses(t *testing.T) {
	ak := newAK(t, "rsassa")
	if _, err := ParseAK(ak.public[:len(ak.public)-1]); err == nil {
		t.Fatal("a truncated public area parsed")
	}
	if _, err := ParseAK(append(bytes.Clone(ak.public), 0)); err == nil {
		t.Fatal("a public area with a trailing byte parsed")
	}
	if _, err := ParseAK(nil); err == nil {
		t.Fatal("no public area parsed")
	}
}
