package appraise

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// PCRs holds PCR values by bank name (evidence.BankSHA256, ...) and index.
type PCRs map[string]map[int][]byte

// ClockInfo is the TPMS_CLOCK_INFO of a quote. ResetCount changes when the
// TPM resets, that is at every reboot.
type ClockInfo struct {
	Clock        uint64 `json:"clock"`
	ResetCount   uint32 `json:"reset_count"`
	RestartCount uint32 `json:"restart_count"`
	Safe         bool   `json:"safe"`
}

// Quote is a verified quote. Every field comes from the signed attest
// structure or was checked against it.
type Quote struct {
	// PCRs are the reported PCR values the quote's digest covers, and only those.
	PCRs            PCRs
	ClockInfo       ClockInfo
	FirmwareVersion uint64
	// QualifiedSigner is the qualified name of the AK, as the TPM stated it.
	QualifiedSigner []byte
	// DigestBank names the hash of the PCR digest and of the signature.
	DigestBank string
}

// tpmGeneratedValue is TPM_GENERATED_VALUE, the magic of every TPMS_ATTEST.
const tpmGeneratedValue = 0xff544347

var bankAlgs = map[string]tpm2.TPMAlgID{
	evidence.BankSHA1:   tpm2.TPMAlgSHA1,
	evidence.BankSHA256: tpm2.TPMAlgSHA256,
	evidence.BankSHA384: tpm2.TPMAlgSHA384,
}

// bankName returns the wire bank name of a TPM hash algorithm, or "".
func bankName(alg tpm2.TPMAlgID) string {
	for name, a := range bankAlgs {
		if a == alg {
			return name
		}
	}
	return ""
}

// bankHash returns the hash function of a bank name.
func bankHash(bank string) (crypto.Hash, bool) {
	switch bank {
	case evidence.BankSHA1:
		return crypto.SHA1, true
	case evidence.BankSHA256:
		return crypto.SHA256, true
	case evidence.BankSHA384:
		return crypto.SHA384, true
	}
	return 0, false
}

// VerifyQuote checks a quote against the enrolled AK (akPublic holds its
// TPMT_PUBLIC wire bytes) and the verifier's nonce. It returns the verified
// quote only when there is no fault; every independent check runs, so the
// faults name everything that is wrong.
func VerifyQuote(akPublic, nonce []byte, q *evidence.QuoteResponse) (*Quote, []Fault) {
	return verifyQuote(akPublic, nil, nonce, q)
}

// verifyQuote is VerifyQuote with the AK parsed already (parsed, when it
// is not nil and its public area is akPublic byte for byte).
func verifyQuote(akPublic []byte, parsed *AK, nonce []byte, q *evidence.QuoteResponse) (*Quote, []Fault) {
	if q == nil {
		return nil, []Fault{fault(FaultEvidenceMissing, "no quote response")}
	}
	if q.Error != nil {
		return nil, []Fault{fault(FaultEvidenceMissing, "the agent could not quote: %s", q.Error.Error())}
	}
	var faults []Fault
	if len(q.Attest) == 0 {
		faults = append(faults, fault(FaultEvidenceMissing, "the quote has no attest structure"))
	}
	if len(q.Signature) == 0 {
		faults = append(faults, fault(FaultEvidenceMissing, "the quote has no signature"))
	}
	if len(nonce) == 0 {
		faults = append(faults, fault(FaultQuoteNonce, "the verifier supplied no nonce"))
	}
	var ak *attestKey
	var err error
	if parsed != nil && bytes.Equal(parsed.public, akPublic) {
		ak = parsed.key
	} else if ak, err = parseAK(akPublic); err != nil {
		faults = append(faults, fault(FaultAKInvalid, "enrolled AK: %v", err))
	}
	if len(faults) > 0 {
		return nil, faults
	}
	if len(q.AKName) > 0 && !bytes.Equal(q.AKName, ak.name) {
		faults = append(faults, fault(FaultAKMismatch, "the agent signed with AK %x, the enrolled AK is %x", q.AKName, ak.name))
	}

	attest, f := parseAttest(q.Attest)
	if f != nil {
		return nil, append(faults, *f)
	}
	hash, f := verifySignature(ak, q.Attest, q.Signature)
	if f != nil {
		faults = append(faults, *f)
	}
	if subtle.ConstantTimeCompare(attest.extraData, nonce) != 1 {
		faults = append(faults, fault(FaultQuoteNonce, "the quote's extraData is not the verifier's nonce"))
	}
	var pcrs PCRs
	if hash != 0 {
		var pf []Fault
		pcrs, pf = verifyPCRs(attest.selections, attest.pcrDigest, hash, q.PCRs)
		faults = append(faults, pf...)
	}
	if len(faults) > 0 {
		return nil, faults
	}
	return &Quote{
		PCRs:            pcrs,
		ClockInfo:       attest.clockInfo,
		FirmwareVersion: attest.firmwareVersion,
		QualifiedSigner: bytes.Clone(attest.qualifiedSigner),
		DigestBank:      hashBank(hash),
	}, nil
}

func hashBank(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return evidence.BankSHA1
	case crypto.SHA256:
		return evidence.BankSHA256
	case crypto.SHA384:
		return evidence.BankSHA384
	}
	return h.String()
}

// AK is an enrolled AK decoded and checked once by ParseAK, so that the
// appraisals of its quotes (Input.AK) need not decode it again. It holds
// its public area: an appraisal uses it only for that very public area.
type AK struct {
	public []byte
	key    *attestKey
}

// ParseAK decodes an AK's TPMT_PUBLIC and checks that it is a restricted
// signing key, as every appraisal does.
func ParseAK(public []byte) (*AK, error) {
	k, err := parseAK(public)
	if err != nil {
		return nil, err
	}
	return &AK{public: bytes.Clone(public), key: k}, nil
}

// Public is the TPMT_PUBLIC the AK was parsed from.
func (a *AK) Public() []byte { return a.public }

// attestKey is a parsed, usable AK.
type attestKey struct {
	typ  tpm2.TPMAlgID
	key  crypto.PublicKey
	name []byte
	// scheme and schemeHash are the key's fixed signing scheme, or TPMAlgNull.
	scheme, schemeHash tpm2.TPMAlgID
}

// parseAK decodes a TPMT_PUBLIC and checks it is a restricted signing key.
func parseAK(raw []byte) (*attestKey, error) {
	if len(raw) == 0 {
		return nil, errors.New("no public area")
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](raw)
	if err != nil {
		return nil, fmt.Errorf("decode TPMT_PUBLIC: %w", err)
	}
	encoded := tpm2.Marshal(pub)
	if n := len(encoded); n != len(raw) {
		return nil, fmt.Errorf("TPMT_PUBLIC of %d bytes carries %d trailing bytes", n, len(raw)-n)
	}
	attrs := pub.ObjectAttributes
	if !attrs.Restricted || !attrs.SignEncrypt || attrs.Decrypt {
		return nil, fmt.Errorf("not a restricted signing key (restricted=%t sign=%t decrypt=%t)",
			attrs.Restricted, attrs.SignEncrypt, attrs.Decrypt)
	}
	ak := &attestKey{typ: pub.Type, scheme: tpm2.TPMAlgNull}
	switch pub.Type {
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, fmt.Errorf("rsa parameters: %w", err)
		}
		n, err := pub.Unique.RSA()
		if err != nil {
			return nil, fmt.Errorf("rsa modulus: %w", err)
		}
		key, err := tpm2.RSAPub(parms, n)
		if err != nil {
			return nil, fmt.Errorf("rsa key: %w", err)
		}
		if key.N.BitLen() < 2048 || key.N.BitLen() != int(parms.KeyBits) {
			return nil, fmt.Errorf("rsa modulus of %d bits (key declares %d, need at least 2048)", key.N.BitLen(), parms.KeyBits)
		}
		ak.key = key
		ak.scheme, ak.schemeHash = schemeHash(parms.Scheme.Scheme, &parms.Scheme.Details)
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("ecc parameters: %w", err)
		}
		point, err := pub.Unique.ECC()
		if err != nil {
			return nil, fmt.Errorf("ecc point: %w", err)
		}
		key, err := ecdsaKey(parms.CurveID, point)
		if err != nil {
			return nil, err
		}
		ak.key = key
		ak.scheme, ak.schemeHash = schemeHash(parms.Scheme.Scheme, &parms.Scheme.Details)
	default:
		return nil, fmt.Errorf("unsupported key type %v", pub.Type)
	}
	// The name is tpm2.ObjectName's, from the encoding made above: the
	// name algorithm, then its hash of the encoded public area.
	nameHash, err := pub.NameAlg.Hash()
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	d := nameHash.New()
	d.Write(encoded)
	ak.name = d.Sum(binary.BigEndian.AppendUint16(make([]byte, 0, 2+nameHash.Size()), uint16(pub.NameAlg)))
	return ak, nil
}

// schemeHash returns a key's signing scheme and its hash, both TPMAlgNull
// when the key leaves the scheme open.
func schemeHash(scheme tpm2.TPMAlgID, details *tpm2.TPMUAsymScheme) (tpm2.TPMAlgID, tpm2.TPMAlgID) {
	var h *tpm2.TPMSSchemeHash
	switch scheme {
	case tpm2.TPMAlgRSASSA:
		if s, err := details.RSASSA(); err == nil {
			h = (*tpm2.TPMSSchemeHash)(s)
		}
	case tpm2.TPMAlgRSAPSS:
		if s, err := details.RSAPSS(); err == nil {
			h = (*tpm2.TPMSSchemeHash)(s)
		}
	case tpm2.TPMAlgECDSA:
		if s, err := details.ECDSA(); err == nil {
			h = (*tpm2.TPMSSchemeHash)(s)
		}
	}
	if h == nil {
		return scheme, tpm2.TPMAlgNull
	}
	return scheme, h.HashAlg
}

func ecdsaKey(curveID tpm2.TPMECCCurve, p *tpm2.TPMSECCPoint) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch curveID {
	case tpm2.TPMECCNistP256:
		curve = elliptic.P256()
	case tpm2.TPMECCNistP384:
		curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("unsupported ecc curve %v", curveID)
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(p.X.Buffer) > size || len(p.Y.Buffer) > size {
		return nil, fmt.Errorf("ecc point coordinates longer than %d bytes", size)
	}
	point := make([]byte, 1+2*size)
	point[0] = 4
	copy(point[1+size-len(p.X.Buffer):1+size], p.X.Buffer)
	copy(point[1+2*size-len(p.Y.Buffer):], p.Y.Buffer)
	key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("ecc point: %w", err)
	}
	return key, nil
}

// parseAttest checks the magic and type and decodes the TPMS_ATTEST of a
// quote.
func parseAttest(raw []byte) (*quoteAttest, *Fault) {
	if len(raw) < 6 {
		f := fault(FaultEvidenceUnparsable, "attest structure of %d bytes is too short", len(raw))
		return nil, &f
	}
	if m := binary.BigEndian.Uint32(raw); m != tpmGeneratedValue {
		f := fault(FaultQuoteMagic, "attest magic is %#08x, not TPM_GENERATED_VALUE", m)
		return nil, &f
	}
	if t := tpm2.TPMST(binary.BigEndian.Uint16(raw[4:])); t != tpm2.TPMSTAttestQuote {
		f := fault(FaultQuoteType, "attest type is %#04x, not TPM_ST_ATTEST_QUOTE", uint16(t))
		return nil, &f
	}
	attest, err := decodeQuoteAttest(raw)
	if err != nil {
		f := fault(FaultEvidenceUnparsable, "decode TPMS_ATTEST: %v", err)
		return nil, &f
	}
	return attest, nil
}

// verifySignature checks a TPMT_SIGNATURE over signed with the AK and
// returns the signature's hash, which also hashes the quoted PCRs. It
// returns hash 0 when the signature cannot even be decoded.
func verifySignature(ak *attestKey, signed, raw []byte) (crypto.Hash, *Fault) {
	fail := func(name, format string, args ...any) (crypto.Hash, *Fault) {
		f := fault(name, format, args...)
		return 0, &f
	}
	sig, err := decodeSignature(raw)
	if err != nil {
		return fail(FaultEvidenceUnparsable, "%v", err)
	}
	hashAlg := sig.hash
	var verify func(digest []byte, h crypto.Hash) bool
	switch sig.alg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		key, ok := ak.key.(*rsa.PublicKey)
		if !ok {
			return fail(FaultAKMismatch, "an RSA signature cannot come from the enrolled %v AK", ak.typ)
		}
		verify = func(digest []byte, h crypto.Hash) bool {
			if sig.alg == tpm2.TPMAlgRSASSA {
				return rsa.VerifyPKCS1v15(key, h, digest, sig.sig) == nil
			}
			return rsa.VerifyPSS(key, h, digest, sig.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
	case tpm2.TPMAlgECDSA:
		key, ok := ak.key.(*ecdsa.PublicKey)
		if !ok {
			return fail(FaultAKMismatch, "an ECDSA signature cannot come from the enrolled %v AK", ak.typ)
		}
		r := new(big.Int).SetBytes(sig.r)
		ss := new(big.Int).SetBytes(sig.s)
		verify = func(digest []byte, _ crypto.Hash) bool { return ecdsa.Verify(key, digest, r, ss) }
	default:
		return fail(FaultQuoteSignature, "unsupported signature scheme %v", sig.alg)
	}
	if ak.scheme != tpm2.TPMAlgNull && (ak.scheme != sig.alg || ak.schemeHash != hashAlg) {
		return fail(FaultQuoteSignature, "signature scheme %v/%v differs from the AK's fixed scheme %v/%v",
			sig.alg, hashAlg, ak.scheme, ak.schemeHash)
	}
	var h crypto.Hash
	switch hashAlg {
	case tpm2.TPMAlgSHA256:
		h = crypto.SHA256
	case tpm2.TPMAlgSHA384:
		h = crypto.SHA384
	default:
		return fail(FaultQuoteSignature, "unsupported signature hash %v", hashAlg)
	}
	d := h.New()
	d.Write(signed)
	if !verify(d.Sum(nil), h) {
		// The hash is still returned: the PCR digest check does not depend
		// on the signature and its fault is worth reporting too.
		f := fault(FaultQuoteSignature, "the signature does not verify with the enrolled AK")
		return h, &f
	}
	return h, nil
}

// verifyPCRs checks that the reported values cover the quote's PCR selection
// exactly once each and hash to its digest; it returns the covered values.
func verifyPCRs(selections []pcrSelection, digest []byte, h crypto.Hash, reported []evidence.PCRValue) (PCRs, []Fault) {
	type key struct {
		bank  string
		index int
	}
	byKey := make(map[key][][]byte, len(reported))
	for _, p := range reported {
		k := key{p.Bank, p.Index}
		byKey[k] = append(byKey[k], p.Value)
	}
	var faults []Fault
	pcrs := PCRs{}
	d := h.New()
	selected := 0
	for _, sel := range selections {
		bank := bankName(sel.hash)
		if bank == "" {
			faults = append(faults, fault(FaultQuotePCRSelection, "the quote selects PCRs of unsupported bank %v", sel.hash))
			continue
		}
		if pcrs[bank] != nil {
			faults = append(faults, fault(FaultQuotePCRSelection, "the quote selects bank %s twice", bank))
			continue
		}
		bh, _ := bankHash(bank)
		pcrs[bank] = map[int][]byte{}
		for i := 0; i < 8*len(sel.mask); i++ {
			if sel.mask[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			selected++
			values := byKey[key{bank, i}]
			switch {
			case len(values) == 0:
				faults = append(faults, pcrFault(FaultQuotePCRSelection, bank, i, nil, nil, "the quoted PCR is not reported"))
				continue
			case len(values) > 1:
				faults = append(faults, pcrFault(FaultQuotePCRSelection, bank, i, nil, nil, "the quoted PCR is reported %d times", len(values)))
				continue
			case len(values[0]) != bh.Size():
				faults = append(faults, pcrFault(FaultQuotePCRSelection, bank, i, nil, values[0], "the reported value has %d bytes, not %d", len(values[0]), bh.Size()))
				continue
			}
			d.Write(values[0])
			pcrs[bank][i] = values[0]
		}
	}
	if selected == 0 {
		faults = append(faults, fault(FaultQuotePCRSelection, "the quote covers no PCR"))
	}
	if len(faults) > 0 {
		return nil, faults
	}
	if got := d.Sum(nil); !bytes.Equal(got, digest) {
		f := fault(FaultQuotePCRDigest, "the reported PCR values do not hash to the quoted PCR digest")
		f.Expected = hex.EncodeToString(digest)
		f.Actual = hex.EncodeToString(got)
		return nil, []Fault{f}
	}
	return pcrs, nil
}

// sortedIndexes returns the PCR indexes of one bank in ascending order.
func sortedIndexes(m map[int][]byte) []int {
	idx := make([]int, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}
