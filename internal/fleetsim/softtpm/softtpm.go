// Package softtpm is a TPM 2.0 in pure Go for the fleet simulator: just
// enough of a TPM for the trust agent (the agent.TPM interface), producing
// the structures a real TPM produces, so that the verifier checks them
// exactly as it checks a real one.
//
//   - an ECC P-256 endorsement key in the TCG EK template, whose certificate
//     a simulator EK CA (EKCA) issues when the TPM is manufactured;
//   - an ECC P-256 restricted signing AK in the trust agent's template;
//   - TPM2_Quote: a TPMS_ATTEST (TPM_GENERATED magic, TPM_ST_ATTEST_QUOTE,
//     qualifying data, clock info with resetCount) marshalled by go-tpm as
//     the TPM marshals it, signed by the AK (ECDSA over SHA-256), with the
//     PCR digest of the selection;
//   - TPM2_ActivateCredential with the TPM's math: the seed recovered from
//     the EK's ECDH encapsulation (KDFe, label "IDENTITY"), the integrity
//     HMAC checked (KDFa "INTEGRITY") before the credential is decrypted
//     (KDFa "STORAGE", AES-128-CFB);
//   - PCR banks that measured boot and IMA extend, and a TPM Reset that
//     clears them and counts resetCount up.
//
// It keeps no secret safe: the keys are ordinary Go values. It exists for
// load tests and must never be linked into the trust agent (test/deps).
package softtpm

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm"
)

// numPCRs is the number of PCRs of each bank (PC Client platform).
const numPCRs = 24

// firmwareVersion is the TPMS_ATTEST firmwareVersion of every soft TPM.
const firmwareVersion uint64 = 0x0001_0000_0000_0000

// bankAlgs maps the wire bank names the soft TPM supports to their hash.
var bankAlgs = map[string]struct {
	alg  tpm2.TPMAlgID
	hash crypto.Hash
}{
	evidence.BankSHA256: {tpm2.TPMAlgSHA256, crypto.SHA256},
	evidence.BankSHA384: {tpm2.TPMAlgSHA384, crypto.SHA384},
}

// ErrUnknownBank reports a bank the TPM does not have.
var ErrUnknownBank = errors.New("pcr bank not active")

// Options choose a soft TPM.
type Options struct {
	// Banks are the active PCR banks (default SHA256 only, as swtpm_setup
	// allocates them).
	Banks []string
	// Now is the clock the TPM's clockInfo.clock counts from (default time.Now).
	Now func() time.Time
}

// TPM is one soft TPM. It is safe for concurrent use.
type TPM struct {
	banks []string
	now   func() time.Time
	born  time.Time

	ek       *ecdsa.PrivateKey
	ekECDH   *ecdh.PrivateKey
	ekPublic tpm2.TPMTPublic
	ekName   []byte
	ekCert   []byte

	ak       *ecdsa.PrivateKey
	akPublic tpm2.TPMTPublic
	akName   []byte
	akQN     []byte

	mu         sync.Mutex
	pcrs       map[string]*[numPCRs][]byte
	resetCount uint32
}

// New manufactures a TPM: fresh EK and AK, an EK certificate from ca, and
// PCRs as after the first TPM Reset.
func New(ca *EKCA, opts Options) (*TPM, error) {
	if ca == nil {
		return nil, errors.New("softtpm: an ek ca is required")
	}
	if len(opts.Banks) == 0 {
		opts.Banks = []string{evidence.BankSHA256}
	}
	for _, b := range opts.Banks {
		if _, ok := bankAlgs[b]; !ok {
			return nil, fmt.Errorf("softtpm: %w: %q is not supported", ErrUnknownBank, b)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &TPM{banks: slices.Clone(opts.Banks), now: opts.Now, born: opts.Now()}
	var err error
	if t.ek, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("softtpm: endorsement key: %w", err)
	}
	if t.ekECDH, err = t.ek.ECDH(); err != nil {
		return nil, fmt.Errorf("softtpm: endorsement key: %w", err)
	}
	t.ekPublic = tpm2.ECCEKTemplate
	t.ekPublic.Unique = eccUnique(&t.ek.PublicKey)
	if t.ekName, err = name(&t.ekPublic); err != nil {
		return nil, err
	}
	if t.ekCert, err = ca.issue(&t.ek.PublicKey, t.born); err != nil {
		return nil, fmt.Errorf("softtpm: ek certificate: %w", err)
	}
	if t.ak, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("softtpm: attestation key: %w", err)
	}
	// The trust agent's own AK template, with this key.
	if t.akPublic, err = tpm.AKTemplate(tpm.ECCP256); err != nil {
		return nil, fmt.Errorf("softtpm: %w", err)
	}
	t.akPublic.Unique = eccUnique(&t.ak.PublicKey)
	if t.akName, err = name(&t.akPublic); err != nil {
		return nil, err
	}
	t.akQN = qualifiedName(t.akName)
	t.reset()
	return t, nil
}

// eccUnique is the unique field of a P-256 public area: the point's
// coordinates, each 32 bytes.
func eccUnique(pub *ecdsa.PublicKey) tpm2.TPMUPublicID {
	raw, _ := pub.Bytes() // an uncompressed point: 0x04 || X || Y
	return tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: raw[33:65]},
	})
}

func name(pub *tpm2.TPMTPublic) ([]byte, error) {
	n, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("softtpm: object name: %w", err)
	}
	return n.Buffer, nil
}

// qualifiedName is the AK's qualified name as a child of the endorsement
// hierarchy: nameAlg || H(QN(TPM_RH_ENDORSEMENT) || name). (A real AK sits
// below a storage key; the verifier only records this field.)
func qualifiedName(akName []byte) []byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMRHEndorsement)))
	h.Write(akName)
	return h.Sum(binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMAlgSHA256)))
}

// reset is a TPM Reset: PCRs to their power-on values (PCRs 17 to 22, the
// dynamic ones, all ones; the rest zero), resetCount up by one. mu is held
// or the TPM is not shared yet.
func (t *TPM) reset() {
	t.pcrs = map[string]*[numPCRs][]byte{}
	for _, b := range t.banks {
		var bank [numPCRs][]byte
		size := bankAlgs[b].hash.Size()
		for i := range bank {
			bank[i] = make([]byte, size)
			if i >= 17 && i <= 22 {
				for j := range bank[i] {
					bank[i][j] = 0xff
				}
			}
		}
		t.pcrs[b] = &bank
	}
	t.resetCount++
}

// Reset is a platform reset (a reboot): TPM2_Startup(CLEAR) after power-on.
func (t *TPM) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reset()
}

// Extend is TPM2_PCR_Extend of one bank.
func (t *TPM) Extend(pcr int, bank string, digest []byte) error {
	b, ok := bankAlgs[bank]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownBank, bank)
	}
	if pcr < 0 || pcr >= numPCRs {
		return fmt.Errorf("pcr %d out of range", pcr)
	}
	if len(digest) != b.hash.Size() {
		return fmt.Errorf("extend %s pcr %d: digest of %d bytes, want %d", bank, pcr, len(digest), b.hash.Size())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	values, ok := t.pcrs[bank]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownBank, bank)
	}
	h := b.hash.New()
	h.Write(values[pcr])
	h.Write(digest)
	values[pcr] = h.Sum(nil)
	return nil
}

// ActiveBanks lists the allocated PCR banks.
func (t *TPM) ActiveBanks() ([]string, error) { return slices.Clone(t.banks), nil }

// PCR returns the value of one PCR.
func (t *TPM) PCR(pcr int, bank string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	values, ok := t.pcrs[bank]
	if !ok || pcr < 0 || pcr >= numPCRs {
		return nil, fmt.Errorf("%w: %s pcr %d", ErrUnknownBank, bank, pcr)
	}
	return slices.Clone(values[pcr]), nil
}

// ResetCount is clockInfo.resetCount.
func (t *TPM) ResetCount() (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resetCount, nil
}

// Info describes the TPM as the agent reports it.
func (t *TPM) Info() (evidence.TPMInfo, error) {
	return evidence.TPMInfo{
		Present:         true,
		Version:         "2.0",
		Manufacturer:    "FSIM",
		VendorString:    "fleetsim softtpm",
		FirmwareVersion: "1.0.0.0",
		SpecRevision:    "1.59",
		ActiveBanks:     slices.Clone(t.banks),
	}, nil
}

// KeyInfo is the key material the verifier enrolls.
func (t *TPM) KeyInfo() (evidence.AKInfo, error) {
	return evidence.AKInfo{
		Version:       evidence.Version,
		AKPublic:      tpm2.Marshal(&t.akPublic),
		AKName:        slices.Clone(t.akName),
		EKPublic:      tpm2.Marshal(&t.ekPublic),
		EKCertificate: slices.Clone(t.ekCert),
		PCRBanks:      slices.Clone(t.banks),
	}, nil
}

// EKPublicKey is the EK's public key.
func (t *TPM) EKPublicKey() crypto.PublicKey { return &t.ek.PublicKey }

// Quote is TPM2_Quote by the AK over the PCRs of the requested banks that
// are active, with nonce as qualifying data, and the PCR values it covers.
func (t *TPM) Quote(nonce []byte, pcrs []int, banks []string) (*evidence.QuoteResponse, error) {
	if n := len(nonce); n == 0 || n > evidence.MaxNonceSize {
		return nil, fmt.Errorf("nonce must be 1 to %d bytes, got %d", evidence.MaxNonceSize, n)
	}
	var sel pcrSelect
	for _, p := range pcrs {
		if p < 0 || p >= numPCRs {
			return nil, fmt.Errorf("pcr index %d out of range", p)
		}
		sel[p/8] |= 1 << (p % 8)
	}
	var quoted []string
	for _, b := range t.banks { // the TPM's order, as a TPM answers
		if slices.Contains(banks, b) {
			quoted = append(quoted, b)
		}
	}
	if len(quoted) == 0 {
		return nil, fmt.Errorf("%w: requested %v, active %v", ErrUnknownBank, banks, t.banks)
	}
	sorted := slices.Sorted(slices.Values(pcrs))
	sorted = slices.Compact(sorted)

	t.mu.Lock()
	selection := tpm2.TPMLPCRSelection{}
	digest := sha256.New() // the AK's signing hash
	out := &evidence.QuoteResponse{Version: evidence.Version, AKName: slices.Clone(t.akName)}
	for _, b := range quoted {
		selection.PCRSelections = append(selection.PCRSelections, tpm2.TPMSPCRSelection{Hash: bankAlgs[b].alg, PCRSelect: sel[:]})
		for _, p := range sorted {
			v := slices.Clone(t.pcrs[b][p])
			digest.Write(v)
			out.PCRs = append(out.PCRs, evidence.PCRValue{Bank: b, Index: p, Value: v})
		}
	}
	attest := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: t.akQN},
		ExtraData:       tpm2.TPM2BData{Buffer: slices.Clone(nonce)},
		ClockInfo: tpm2.TPMSClockInfo{
			Clock:      uint64(max(0, t.now().Sub(t.born).Milliseconds())),
			ResetCount: t.resetCount,
			Safe:       true,
		},
		FirmwareVersion: firmwareVersion,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: selection,
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest.Sum(nil)},
		}),
	}
	t.mu.Unlock()
	out.Attest = tpm2.Marshal(&attest)
	sig, err := t.sign(out.Attest)
	if err != nil {
		return nil, err
	}
	out.Signature = sig
	return out, nil
}

// pcrSelect is the 3-byte PCR bitmap of a PC Client TPM.
type pcrSelect [numPCRs / 8]byte

// sign is the AK's ECDSA signature over SHA-256(data) as a TPMT_SIGNATURE.
func (t *TPM) sign(data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	r, s, err := ecdsa.Sign(rand.Reader, t.ak, sum[:])
	if err != nil {
		return nil, fmt.Errorf("softtpm: sign quote: %w", err)
	}
	sig := tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, 32))},
		}),
	}
	return tpm2.Marshal(&sig), nil
}

// EKCA is the simulator's EK CA: the TPM manufacturer whose certificates
// the verifier is configured to trust (enrollment.ek_ca_files).
type EKCA struct {
	// Cert is the self-signed CA certificate.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey

	mu     sync.Mutex
	serial int64
}

// NewEKCA makes a CA valid from now for ten years.
func NewEKCA(now time.Time) (*EKCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ek ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"Trusted Compute fleet simulator"}, CommonName: "fleetsim EK CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ek ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ek ca certificate: %w", err)
	}
	return &EKCA{Cert: cert, key: key, serial: 1}, nil
}

// PEM is the CA certificate in PEM, for the verifier's ek_ca_files.
func (ca *EKCA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool is a pool holding the CA certificate.
func (ca *EKCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// issue certifies an EK public key.
func (ca *EKCA) issue(pub crypto.PublicKey, now time.Time) ([]byte, error) {
	ca.mu.Lock()
	ca.serial++
	serial := ca.serial
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{Organization: []string{"Trusted Compute fleet simulator"}, CommonName: fmt.Sprintf("fleetsim EK %d", serial)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageKeyAgreement,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
}
