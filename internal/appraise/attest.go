package appraise

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// quoteAttest is the TPMS_ATTEST of a quote (TPM 2.0 Part 2, 10.12.12),
// decoded by decodeQuoteAttest. Its byte slices are sub-slices of the
// decoded bytes.
type quoteAttest struct {
	qualifiedSigner []byte // TPM2B_NAME
	extraData       []byte // TPM2B_DATA
	clockInfo       ClockInfo
	firmwareVersion uint64
	// selections and pcrDigest are the TPMS_QUOTE_INFO.
	selections []pcrSelection
	pcrDigest  []byte // TPM2B_DIGEST
}

// pcrSelection is one TPMS_PCR_SELECTION: a bank and its bit mask of PCRs.
type pcrSelection struct {
	hash tpm2.TPMAlgID
	mask []byte
}

// maxPCRSelections is the longest TPML_PCR_SELECTION go-tpm decodes (its
// maxListLength); a longer one is refused, as it was when go-tpm decoded
// the quote.
const maxPCRSelections = 4096

// decodeQuoteAttest decodes the TPMS_ATTEST of a quote whose magic and type
// the caller checked, by hand: go-tpm's decoder works by reflection and
// cost a tenth of a steady report. It accepts exactly what go-tpm's
// tpm2.Unmarshal[tpm2.TPMSAttest] decodes with no byte left over, and
// gives the same fields (FuzzDecodeQuoteAttest holds it to that).
// Trailing bytes are refused: the signature covers them, but nothing
// should be signed that is not read.
func decodeQuoteAttest(raw []byte) (*quoteAttest, error) {
	r := logReader{b: raw, big: true}
	r.bytes(4 + 2) // magic, type
	a := &quoteAttest{
		qualifiedSigner: r.bytes(int(r.u16())), // TPM2B: a 16-bit size, then the bytes
		extraData:       r.bytes(int(r.u16())),
		clockInfo: ClockInfo{
			Clock:        r.u64(),
			ResetCount:   r.u32(),
			RestartCount: r.u32(),
			Safe:         r.u8() != 0, // TPMI_YES_NO, read as go-tpm reads a bool
		},
		firmwareVersion: r.u64(),
	}
	count := r.u32()
	if r.err != "" {
		return nil, errors.New(r.err)
	}
	if count > maxPCRSelections {
		return nil, fmt.Errorf("a list of %d PCR selections (at most %d)", count, maxPCRSelections)
	}
	// Each selection takes at least 3 bytes: the count cannot reserve
	// more than the bytes hold.
	a.selections = make([]pcrSelection, 0, min(int(count), (len(raw)-r.off)/3))
	for range count {
		sel := pcrSelection{hash: tpm2.TPMAlgID(r.u16()), mask: r.bytes(int(r.u8()))}
		if r.err != "" {
			return nil, errors.New(r.err)
		}
		a.selections = append(a.selections, sel)
	}
	a.pcrDigest = r.bytes(int(r.u16()))
	if r.err != "" {
		return nil, errors.New(r.err)
	}
	if n := len(raw) - r.off; n > 0 {
		return nil, fmt.Errorf("TPMS_ATTEST of %d bytes carries %d trailing bytes", len(raw)-n, n)
	}
	return a, nil
}

// quoteSignature is a TPMT_SIGNATURE (TPM 2.0 Part 2, 11.3.4): its scheme,
// its hash and, for the schemes VerifyQuote verifies, the signature.
type quoteSignature struct {
	alg, hash tpm2.TPMAlgID
	sig       []byte // RSASSA and RSAPSS
	r, s      []byte // ECDSA
}

// decodeSignature decodes a TPMT_SIGNATURE as go-tpm's tpm2.Unmarshal
// does, bytes after it ignored: RSASSA, RSAPSS and ECDSA signatures by
// hand (decodeSignatureByHand), any other scheme, and bytes that end
// inside a field, by go-tpm, so that each gets the faults it got before.
func decodeSignature(raw []byte) (*quoteSignature, error) {
	if s, ok := decodeSignatureByHand(raw); ok {
		return s, nil
	}
	return decodeSignatureGoTPM(raw)
}

// decodeSignatureByHand decodes an RSASSA, RSAPSS or ECDSA TPMT_SIGNATURE
// whose fields the bytes hold whole, and is false for anything else.
// FuzzDecodeSignature holds it to go-tpm's decoder.
func decodeSignatureByHand(raw []byte) (*quoteSignature, bool) {
	r := logReader{b: raw, big: true}
	out := &quoteSignature{alg: tpm2.TPMAlgID(r.u16()), hash: tpm2.TPMAlgID(r.u16())}
	switch out.alg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		out.sig = r.bytes(int(r.u16()))
	case tpm2.TPMAlgECDSA:
		out.r = r.bytes(int(r.u16()))
		out.s = r.bytes(int(r.u16()))
	default:
		return nil, false
	}
	return out, r.err == ""
}

// decodeSignatureGoTPM decodes a TPMT_SIGNATURE with go-tpm.
func decodeSignatureGoTPM(raw []byte) (*quoteSignature, error) {
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](raw)
	if err != nil {
		return nil, fmt.Errorf("decode TPMT_SIGNATURE: %w", err)
	}
	out := &quoteSignature{alg: sig.SigAlg}
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var s *tpm2.TPMSSignatureRSA
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			s, err = sig.Signature.RSASSA()
		} else {
			s, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return nil, fmt.Errorf("rsa signature: %w", err)
		}
		out.hash, out.sig = s.Hash, s.Sig.Buffer
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return nil, fmt.Errorf("ecdsa signature: %w", err)
		}
		out.hash, out.r, out.s = s.Hash, s.SignatureR.Buffer, s.SignatureS.Buffer
	}
	return out, nil
}
