package appraise

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// testAK is a software attestation key with its TPMT_PUBLIC.
type testAK struct {
	signer  crypto.Signer
	public  []byte
	name    []byte
	sigAlg  tpm2.TPMAlgID
	hashAlg tpm2.TPMAlgID
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// newAK makes an AK: "ecc-p256", "ecc-p384", "rsassa" or "rsapss".
func newAK(t testing.TB, kind string) *testAK {
	t.Helper()
	ak := &testAK{hashAlg: tpm2.TPMAlgSHA256}
	pub := tpm2.TPMTPublic{
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: true, SignEncrypt: true},
	}
	switch kind {
	case "ecc-p256", "ecc-p384":
		curve, curveID := elliptic.P256(), tpm2.TPMECCNistP256
		if kind == "ecc-p384" {
			curve, curveID, ak.hashAlg = elliptic.P384(), tpm2.TPMECCNistP384, tpm2.TPMAlgSHA384
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ak.signer, ak.sigAlg = k, tpm2.TPMAlgECDSA
		pub.Type = tpm2.TPMAlgECC
		pub.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: ak.hashAlg})},
			CurveID: curveID,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		})
		size := (curve.Params().BitSize + 7) / 8
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, size))},
			Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, size))},
		})
	case "rsassa", "rsapss":
		k := rsaKey()
		ak.signer, ak.sigAlg = k, tpm2.TPMAlgRSASSA
		if kind == "rsapss" {
			ak.sigAlg = tpm2.TPMAlgRSAPSS
		}
		var details tpm2.TPMUAsymScheme
		if ak.sigAlg == tpm2.TPMAlgRSASSA {
			details = tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: ak.hashAlg})
		} else {
			details = tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSAPSS, &tpm2.TPMSSigSchemeRSAPSS{HashAlg: ak.hashAlg})
		}
		pub.Type = tpm2.TPMAlgRSA
		pub.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTRSAScheme{Scheme: ak.sigAlg, Details: details},
			KeyBits:   2048,
		})
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()})
	default:
		t.Fatalf("unknown AK kind %q", kind)
	}
	ak.public = tpm2.Marshal(&pub)
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		t.Fatal(err)
	}
	ak.name = name.Buffer
	return ak
}

func (ak *testAK) hash() crypto.Hash {
	h, _ := ak.hashAlg.Hash()
	return h
}

// sign makes the TPMT_SIGNATURE of an AK over data.
func (ak *testAK) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	d := ak.hash().New()
	d.Write(data)
	digest := d.Sum(nil)
	var sig tpm2.TPMTSignature
	switch ak.sigAlg {
	case tpm2.TPMAlgECDSA:
		r, s, err := ecdsa.Sign(rand.Reader, ak.signer.(*ecdsa.PrivateKey), digest)
		if err != nil {
			t.Fatal(err)
		}
		sig = tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSignatureECC{Hash: ak.hashAlg, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})}
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var opts crypto.SignerOpts = ak.hash()
		if ak.sigAlg == tpm2.TPMAlgRSAPSS {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: ak.hash()}
		}
		s, err := ak.signer.Sign(rand.Reader, digest, opts)
		if err != nil {
			t.Fatal(err)
		}
		sig = tpm2.TPMTSignature{SigAlg: ak.sigAlg, Signature: tpm2.NewTPMUSignature(ak.sigAlg,
			&tpm2.TPMSSignatureRSA{Hash: ak.hashAlg, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: s}})}
	}
	return tpm2.Marshal(&sig)
}

// quoteOptions change a quote before it is signed.
type quoteOptions struct {
	magic      tpm2.TPMGenerated
	typ        tpm2.TPMST
	resetCount uint32
	// digestPCRs, when set, are hashed into the quote instead of the reported ones.
	digestPCRs PCRs
	// extraData, when set, is quoted instead of QualifyingData(nonce, nil).
	extraData []byte
}

// buildQuote makes a signed quote over pcrs (every bank, every index given),
// reported in bank then index order, as an agent would: its qualifying data
// is evidence.QualifyingData(nonce, nil) (no host facts).
func buildQuote(t testing.TB, ak *testAK, nonce []byte, pcrs PCRs, opt quoteOptions) *evidence.QuoteResponse {
	t.Helper()
	if opt.magic == 0 {
		opt.magic = tpm2.TPMGeneratedValue
	}
	if opt.typ == 0 {
		opt.typ = tpm2.TPMSTAttestQuote
	}
	if opt.digestPCRs == nil {
		opt.digestPCRs = pcrs
	}
	extraData := evidence.QualifyingData(nonce, nil)
	if opt.extraData != nil {
		extraData = opt.extraData
	}
	rsp := &evidence.QuoteResponse{Version: evidence.Version, AKName: ak.name}
	var sel tpm2.TPMLPCRSelection
	d := ak.hash().New()
	for _, bank := range sortedBanks(pcrs) {
		mask := make([]byte, 3)
		for _, i := range sortedIndexes(pcrs[bank]) {
			mask[i/8] |= 1 << (i % 8)
			rsp.PCRs = append(rsp.PCRs, evidence.PCRValue{Bank: bank, Index: i, Value: pcrs[bank][i]})
			d.Write(opt.digestPCRs[bank][i])
		}
		sel.PCRSelections = append(sel.PCRSelections, tpm2.TPMSPCRSelection{Hash: bankAlgs[bank], PCRSelect: mask})
	}
	attest := tpm2.TPMSAttest{
		Magic:           opt.magic,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: append([]byte{0x00, 0x0b}, bytes.Repeat([]byte{0x5a}, 32)...)},
		ExtraData:       tpm2.TPM2BData{Buffer: extraData},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 123456, ResetCount: opt.resetCount, RestartCount: 2, Safe: true},
		FirmwareVersion: 0x2000_0001,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: sel, PCRDigest: tpm2.TPM2BDigest{Buffer: d.Sum(nil)}}),
	}
	rsp.Attest = tpm2.Marshal(&attest)
	if opt.typ != tpm2.TPMSTAttestQuote {
		binary.BigEndian.PutUint16(rsp.Attest[4:], uint16(opt.typ))
	}
	rsp.Signature = ak.sign(t, rsp.Attest)
	return rsp
}

func sortedBanks(p PCRs) []string {
	banks := make([]string, 0, len(p))
	for b := range p {
		banks = append(banks, b)
	}
	sort.Strings(banks)
	return banks
}

func testNonce() []byte { return bytes.Repeat([]byte{0x42}, evidence.NonceSize) }

// boundNonce is the qualifying data buildQuote quotes for testNonce and no
// host facts, which VerifyQuote checks the quote's extraData against.
func boundNonce() []byte { return evidence.QualifyingData(testNonce(), nil) }

// --- TCG event log builder ---

// logBuilder writes a crypto-agile TCG event log and tracks the PCR values
// a TPM would hold after the events.
type logBuilder struct {
	banks []string
	buf   bytes.Buffer
	pcrs  PCRs
}

func newLogBuilder(banks ...string) *logBuilder {
	b := &logBuilder{banks: banks, pcrs: PCRs{}}
	for _, bank := range banks {
		b.pcrs[bank] = map[int][]byte{}
	}
	var spec bytes.Buffer
	spec.WriteString(specIDSignature)
	le(&spec, uint32(0))           // platformClass
	spec.Write([]byte{0, 2, 0, 2}) // version 2.0 errata 0, uintnSize 2 (UINT64)
	le(&spec, uint32(len(banks)))
	for _, bank := range banks {
		h, _ := bankHash(bank)
		le(&spec, uint16(bankAlgs[bank]))
		le(&spec, uint16(h.Size()))
	}
	spec.WriteByte(0) // vendorInfoSize
	le(&b.buf, uint32(0))
	le(&b.buf, uint32(evNoAction))
	b.buf.Write(make([]byte, 20))
	le(&b.buf, uint32(spec.Len()))
	b.buf.Write(spec.Bytes())
	return b
}

func le(w *bytes.Buffer, v any) {
	if err := binary.Write(w, binary.LittleEndian, v); err != nil {
		panic(err)
	}
}

// measure logs an event whose digest is the hash of its data.
func (b *logBuilder) measure(pcr int, typ uint32, data []byte) *logBuilder {
	return b.measureOf(pcr, typ, data, data)
}

// measureOf logs an event with data whose digest is the hash of content
// (a boot application's image, say, while the data is its device path).
func (b *logBuilder) measureOf(pcr int, typ uint32, data, content []byte) *logBuilder {
	le(&b.buf, uint32(pcr))
	le(&b.buf, typ)
	le(&b.buf, uint32(len(b.banks)))
	for _, bank := range b.banks {
		h, _ := bankHash(bank)
		d := h.New()
		d.Write(content)
		digest := d.Sum(nil)
		le(&b.buf, uint16(bankAlgs[bank]))
		b.buf.Write(digest)
		if typ != evNoAction {
			old, ok := b.pcrs[bank][pcr]
			if !ok {
				old = make([]byte, h.Size())
			}
			d.Reset()
			d.Write(old)
			d.Write(digest)
			b.pcrs[bank][pcr] = d.Sum(nil)
		}
	}
	le(&b.buf, uint32(len(data)))
	b.buf.Write(data)
	return b
}

func (b *logBuilder) bytes() []byte { return bytes.Clone(b.buf.Bytes()) }

// quoted returns the PCR values of the given indexes, zero for untouched PCRs.
func (b *logBuilder) quoted(indexes ...int) PCRs {
	p := PCRs{}
	for _, bank := range b.banks {
		h, _ := bankHash(bank)
		p[bank] = map[int][]byte{}
		for _, i := range indexes {
			v, ok := b.pcrs[bank][i]
			if !ok {
				v = make([]byte, h.Size())
			}
			p[bank][i] = v
		}
	}
	return p
}

// imageLoad encodes an UEFI_IMAGE_LOAD_EVENT whose device path is one
// file path node and the end node.
func imageLoad(path string) []byte {
	name := ucs2(path + "\x00")
	var dp bytes.Buffer
	dp.Write([]byte{0x04, 0x04})
	le(&dp, uint16(4+len(name)))
	dp.Write(name)
	dp.Write([]byte{0x7f, 0xff, 0x04, 0x00})
	var b bytes.Buffer
	le(&b, uint64(0x7e000000)) // ImageLocationInMemory
	le(&b, uint64(0x10000))    // ImageLengthInMemory
	le(&b, uint64(0))          // ImageLinkTimeAddress
	le(&b, uint64(dp.Len()))
	b.Write(dp.Bytes())
	return b.Bytes()
}

func ucs2(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// variable encodes a UEFI_VARIABLE_DATA.
func variable(guid efiGUID, name string, data []byte) []byte {
	var b bytes.Buffer
	b.Write(guid[:])
	le(&b, uint64(len([]rune(name))))
	le(&b, uint64(len(data)))
	b.Write(ucs2(name))
	b.Write(data)
	return b.Bytes()
}

var testOwner = mustGUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")

// sigList encodes one EFI_SIGNATURE_LIST of equally sized entries.
func sigList(typ efiGUID, entries ...[]byte) []byte {
	var b bytes.Buffer
	size := 16 + len(entries[0])
	b.Write(typ[:])
	le(&b, uint32(28+size*len(entries)))
	le(&b, uint32(0))
	le(&b, uint32(size))
	for _, e := range entries {
		b.Write(testOwner[:])
		b.Write(e)
	}
	return b.Bytes()
}

// testCert makes a self-signed DER certificate with the given common name.
func testCert(t testing.TB, cn string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Trusted Compute Test"}},
		NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// bootLog is a firmware log shaped like OVMF's with Secure Boot on: PCR 0
// firmware blobs, PCR 7 policy, separators in PCRs 0-7, a boot
// application verified by the db certificate, grub and kernel in PCRs 8, 9.
type bootLog struct {
	*logBuilder
	pk, kek, db []byte // certificates
}

func newBootLog(t testing.TB, secureBoot byte, extraEvents int) *bootLog {
	t.Helper()
	l := &bootLog{logBuilder: newLogBuilder(evidence.BankSHA256, evidence.BankSHA384),
		pk: testCert(t, "Test Platform Key"), kek: testCert(t, "Test KEK"), db: testCert(t, "Test DB Signer")}
	l.measure(0, evSCRTMVersion, ucs2("edk2-stable202408\x00"))
	l.measureOf(0, evEFIPlatformFirmwareBlob, make([]byte, 16), []byte("firmware volume"))
	l.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{secureBoot}))
	l.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "PK", sigList(efiCertX509, l.pk)))
	l.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "KEK", sigList(efiCertX509, l.kek)))
	l.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "db", sigList(efiCertX509, l.db)))
	revoked := bytes.Repeat([]byte{0xdb}, 32)
	l.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "dbx", sigList(efiCertSHA256, revoked)))
	l.measure(1, evEFIVariableBoot, variable(efiGlobalVariable, "BootOrder", []byte{0, 0}))
	for i := 0; i < extraEvents; i++ {
		l.measureOf(2, evEFIBootServicesDriver, imageLoad(fmt.Sprintf("\\OptionRom%d.efi", i)), []byte{byte(i), byte(i >> 8)})
	}
	for pcr := 0; pcr <= 7; pcr++ {
		l.measure(pcr, evSeparator, []byte{0, 0, 0, 0})
	}
	l.measure(4, evEFIAction, []byte("Calling EFI Application from Boot Option"))
	l.measure(7, evEFIVariableAuthority, variable(efiImageSecurityDB, "db", append(testOwner[:], l.db...)))
	l.measureOf(4, evEFIBootServicesApplication, imageLoad("\\EFI\\BOOT\\BOOTX64.EFI"), []byte("shim image"))
	l.measure(8, evIPL, []byte("grub_cmd: linux /vmlinuz root=/dev/mapper/root ima_policy=tcb\x00"))
	l.measure(8, evIPL, []byte("kernel_cmdline: /vmlinuz root=/dev/mapper/root ima_policy=tcb\x00"))
	l.measureOf(9, evIPL, []byte("/vmlinuz\x00"), []byte("kernel image"))
	return l
}

// --- IMA fixtures ---

// imaLine makes an ima-ng line for a file with the given content.
func imaLine(path string, content []byte) string {
	sum := sha256Sum(content)
	e := IMAEntry{PCR: 10, Template: TemplateIMANG, FileHashAlg: "sha256", FileHash: sum, Path: path}
	th := sha1.Sum(e.templateData())
	return fmt.Sprintf("10 %x ima-ng sha256:%x %s", th, sum, path)
}

func sha256Sum(b []byte) []byte {
	d := crypto.SHA256.New()
	d.Write(b)
	return d.Sum(nil)
}

// imaLog makes a boot_aggregate entry followed by n file entries.
func imaLog(n int) string {
	var b bytes.Buffer
	b.WriteString(imaLine("boot_aggregate", []byte("aggregate of PCRs 0-9")) + "\n")
	for i := 0; i < n; i++ {
		b.WriteString(imaLine(fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d.so.1", i), []byte{byte(i), byte(i >> 8)}) + "\n")
	}
	return b.String()
}

// extendIMA computes PCR 10 over ima-ng lines independently of ReplayIMA:
// each bank's extend value is that bank's hash of the template data.
func extendIMA(t testing.TB, log string, bank string) []byte {
	t.Helper()
	h, _ := bankHash(bank)
	pcr := make([]byte, h.Size())
	for _, line := range bytes.Split([]byte(log), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var pcrIdx int
		var th, tmpl, fh, path string
		if _, err := fmt.Sscanf(string(line), "%d %s %s %s %s", &pcrIdx, &th, &tmpl, &fh, &path); err != nil {
			t.Fatalf("fixture line %q: %v", line, err)
		}
		alg, digestHex, _ := bytes.Cut([]byte(fh), []byte(":"))
		digest, _ := hex.DecodeString(string(digestHex))
		var data bytes.Buffer
		le(&data, uint32(len(alg)+2+len(digest)))
		data.Write(alg)
		data.Write([]byte{':', 0})
		data.Write(digest)
		le(&data, uint32(len(path)+1))
		data.WriteString(path)
		data.WriteByte(0)
		d := h.New()
		d.Write(data.Bytes())
		ext := d.Sum(nil)
		d.Reset()
		d.Write(pcr)
		d.Write(ext)
		pcr = d.Sum(nil)
	}
	return pcr
}

// node is a whole consistent set of evidence: boot log, IMA log, quote.
type node struct {
	ak   *testAK
	boot *bootLog
	req  evidence.QuoteRequest
	rsp  *evidence.QuoteResponse
	pcrs PCRs
}

func newNode(t testing.TB, akKind string, bootEvents, imaEntries int) *node {
	t.Helper()
	n := &node{ak: newAK(t, akKind), boot: newBootLog(t, 1, bootEvents)}
	ima := imaLog(imaEntries)
	n.pcrs = n.boot.quoted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, bank := range n.boot.banks {
		n.pcrs[bank][10] = extendIMA(t, ima, bank)
	}
	n.req = evidence.QuoteRequest{Version: evidence.Version, Nonce: testNonce(), PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		Banks: []string{evidence.BankSHA256, evidence.BankSHA384}, IMAMeasureEnabled: true, EventLog: true}
	n.rsp = buildQuote(t, n.ak, n.req.Nonce, n.pcrs, quoteOptions{resetCount: 7})
	n.rsp.EventLog = n.boot.bytes()
	n.rsp.IMALog = ima
	n.rsp.IMAEntries = imaEntries + 1
	return n
}

func (n *node) input() Input {
	return Input{AKPublic: n.ak.public, Request: n.req, Response: n.rsp}
}

// faultNames lists the names of faults, for comparisons.
func faultNames(faults []Fault) []string {
	names := make([]string, 0, len(faults))
	for _, f := range faults {
		names = append(names, f.Name)
	}
	return names
}
