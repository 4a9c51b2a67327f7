package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// A backend is a kind of real TPM the suite runs against.
type backend struct {
	name string
	// open returns a fresh TPM, closed at test cleanup.
	open func(t *testing.T) *tpm.TPM
	// parallel backends give each test its own TPM process.
	parallel bool
}

func openSpec(t *testing.T, spec string) *tpm.TPM {
	t.Helper()
	tp, err := tpm.Open(spec)
	if errors.Is(err, tpm.ErrSimulatorUnavailable) && !tpmtest.Required("simulator") {
		t.Skipf("%v (set %s=simulator to make this a failure)", err, tpmtest.RequireEnv)
	}
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tp
}

var backends = []backend{
	{
		name:     "swtpm",
		open:     func(t *testing.T) *tpm.TPM { return openSpec(t, tpmtest.New(t).Spec()) },
		parallel: true,
	},
	{
		// The simulator is one per process: its tests run one after another.
		name: "simulator",
		open: func(t *testing.T) *tpm.TPM { return openSpec(t, "simulator") },
	},
}

// onEachTPM runs f once per backend, in parallel where the backend allows.
func onEachTPM(t *testing.T, f func(t *testing.T, open func(t *testing.T) *tpm.TPM)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.parallel {
				t.Parallel()
			}
			f(t, b.open)
		})
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		spec    func(t *testing.T) string
		wantErr error // nil: must open and answer
		anyErr  bool
	}{
		{name: "a swtpm unix socket opens", spec: func(t *testing.T) string { return tpmtest.New(t).Spec() }},
		{name: "a swtpm tcp socket opens", spec: func(t *testing.T) string { return tpmtest.NewTCP(t).Spec() }},
		{name: "the in-process simulator opens", spec: func(*testing.T) string { return "simulator" }},
		{name: "an unknown kind is rejected", spec: func(*testing.T) string { return "mssim:127.0.0.1:2321" }, wantErr: tpm.ErrBadSpec},
		{name: "an empty spec is rejected", spec: func(*testing.T) string { return "" }, wantErr: tpm.ErrBadSpec},
		{name: "swtpm without an address is rejected", spec: func(*testing.T) string { return "swtpm:" }, wantErr: tpm.ErrBadSpec},
		{name: "simulator with an argument is rejected", spec: func(*testing.T) string { return "simulator:x" }, wantErr: tpm.ErrBadSpec},
		{name: "a device that does not exist fails", spec: func(*testing.T) string { return "device:/nonexistent/tpm0" }, anyErr: true},
		{name: "a swtpm socket nobody listens on fails", spec: func(t *testing.T) string { return "swtpm:unix:" + t.TempDir() + "/none.sock" }, anyErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec(t)
			tp, err := tpm.Open(spec)
			switch {
			case tc.wantErr != nil || tc.anyErr:
				if err == nil {
					_ = tp.Close()
					t.Fatalf("Open(%q) succeeded, want an error", spec)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open(%q) = %v, want %v", spec, err, tc.wantErr)
				}
			case errors.Is(err, tpm.ErrSimulatorUnavailable) && !tpmtest.Required("simulator"):
				t.Skip(err)
			case err != nil:
				t.Fatalf("Open(%q): %v", spec, err)
			default:
				defer tp.Close()
				if _, err := tp.ResetCount(); err != nil {
					t.Fatalf("the opened tpm does not answer: %v", err)
				}
			}
		})
	}
}

func TestOpenContextGivesUpWhenTheContextEnds(t *testing.T) {
	spec := tpmtest.New(t).Spec()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tp, err := tpm.OpenContext(ctx, spec)
	if err == nil {
		_ = tp.Close()
		t.Fatalf("OpenContext(%q) with an ended context succeeded", spec)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenContext(%q) = %v, want context.Canceled", spec, err)
	}
}

func TestOpenSimulatorTwiceFails(t *testing.T) {
	first := openSpec(t, "simulator")
	if first == nil {
		return
	}
	if _, err := tpm.Open("simulator"); !errors.Is(err, tpm.ErrSimulatorInUse) {
		t.Fatalf("second Open(simulator) = %v, want ErrSimulatorInUse", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := tpm.Open("simulator")
	if err != nil {
		t.Fatalf("Open(simulator) after Close: %v", err)
	}
	_ = again.Close()
}

func TestEKWithCertificates(t *testing.T) {
	t.Parallel()
	sw := tpmtest.NewWithEKCert(t)
	tp := openSpec(t, sw.Spec())
	ca := testca.ReadCert(t, tpmtest.LocalCACert)

	tests := []struct {
		name     string
		alg      tpm.KeyAlgorithm
		wantCert bool
	}{
		{name: "the rsa ek has a certificate from the local ca", alg: tpm.RSA2048, wantCert: true},
		{name: "the ecc p-384 ek has a certificate from the local ca", alg: tpm.ECCP384, wantCert: true},
		{name: "the ecc p-256 ek has no certificate and that is no error", alg: tpm.ECCP256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ek, err := tp.EK(tc.alg)
			if err != nil {
				t.Fatalf("EK(%s): %v", tc.alg, err)
			}
			checkEKPublic(t, ek)
			if !tc.wantCert {
				if ek.Certificate != nil {
					t.Fatalf("EK(%s) has a certificate of %d bytes, want none", tc.alg, len(ek.Certificate))
				}
				return
			}
			cert, err := x509.ParseCertificate(ek.Certificate)
			if err != nil {
				t.Fatalf("parse ek certificate: %v", err)
			}
			if !publicKeysEqual(cert.PublicKey, ek.Key) {
				t.Errorf("certificate key %T differs from the ek created from the default template", cert.PublicKey)
			}
			if err := cert.CheckSignatureFrom(ca); err != nil {
				t.Errorf("ek certificate not signed by %s: %v", tpmtest.LocalCACert, err)
			}
		})
	}

	t.Run("the preferred ek is the certified rsa ek", func(t *testing.T) {
		ek, err := tp.PreferredEK()
		if err != nil {
			t.Fatal(err)
		}
		if ek.Algorithm != tpm.RSA2048 || ek.Certificate == nil {
			t.Fatalf("PreferredEK = %s with %d certificate bytes, want rsa2048 with a certificate", ek.Algorithm, len(ek.Certificate))
		}
	})
	t.Run("only the sha256 bank is active after swtpm_setup", func(t *testing.T) {
		banks, err := tp.ActiveBanks()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(banks, []string{evidence.BankSHA256}) {
			t.Fatalf("ActiveBanks = %v, want [SHA256]", banks)
		}
	})
}

func TestEKWithoutCertificate(t *testing.T) {
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		tp := open(t)
		for _, alg := range []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256, tpm.ECCP384} {
			ek, err := tp.EK(alg)
			if err != nil {
				t.Fatalf("EK(%s): %v", alg, err)
			}
			checkEKPublic(t, ek)
			if ek.Certificate != nil {
				t.Errorf("EK(%s) has a certificate on a tpm without one", alg)
			}
			again, err := tp.EK(alg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Public, ek.Public) {
				t.Errorf("EK(%s) is not deterministic", alg)
			}
		}
		if _, err := tp.EK("dsa"); err == nil {
			t.Error("EK(dsa) succeeded, want an error")
		}
	})
}

// checkEKPublic checks that the EK's wire public area, name and key agree.
func checkEKPublic(t *testing.T, ek *tpm.EK) {
	t.Helper()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatalf("ek public does not parse: %v", err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(key, ek.Key) {
		t.Error("ek Key differs from the key in Public")
	}
	name, err := credential.Name(ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(name, ek.Name) {
		t.Errorf("ek Name %x, computed %x", ek.Name, name)
	}
	if !pub.ObjectAttributes.Restricted || !pub.ObjectAttributes.Decrypt {
		t.Error("ek is not a restricted decryption key")
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

func TestAK(t *testing.T) {
	tests := []struct {
		name string
		opts tpm.AKOptions
		want tpm.KeyAlgorithm
	}{
		{name: "the default ak is ecc p-256", opts: tpm.AKOptions{}, want: tpm.ECCP256},
		{name: "an rsa ak can be chosen", opts: tpm.AKOptions{Algorithm: tpm.RSA2048, Handle: 0x81000101}, want: tpm.RSA2048},
	}
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tp := open(t)
				ak, err := tp.LoadOrCreateAK(tc.opts)
				if err != nil {
					t.Fatalf("LoadOrCreateAK: %v", err)
				}
				checkAK(t, ak, tc.want)
				again, err := tp.LoadOrCreateAK(tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again.Name, ak.Name) {
					t.Fatalf("second LoadOrCreateAK gave name %x, want %x", again.Name, ak.Name)
				}
			})
		}
	})
}

func checkAK(t *testing.T, ak *tpm.AK, want tpm.KeyAlgorithm) {
	t.Helper()
	if ak.Algorithm != want {
		t.Errorf("ak algorithm %s, want %s", ak.Algorithm, want)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ak.Public)
	if err != nil {
		t.Fatalf("ak public does not parse: %v", err)
	}
	a := pub.ObjectAttributes
	if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		t.Errorf("ak attributes %+v are not those of a restricted signing key", a)
	}
	name, err := credential.Name(ak.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(name, ak.Name) {
		t.Errorf("ak Name %x, computed %x", ak.Name, name)
	}
	switch want {
	case tpm.ECCP256:
		if _, ok := ak.Key.(*ecdsa.PublicKey); !ok {
			t.Errorf("ak key is %T, want *ecdsa.PublicKey", ak.Key)
		}
	case tpm.RSA2048:
		if k, ok := ak.Key.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
			t.Errorf("ak key is %T, want a 2048-bit *rsa.PublicKey", ak.Key)
		}
	}
}

func TestAKSurvivesReboot(t *testing.T) {
	t.Parallel()
	sw := tpmtest.New(t)
	tp := openSpec(t, sw.Spec())
	ak, err := tp.LoadOrCreateAK(tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := tp.ResetCount()
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	sw.Restart()
	tp = openSpec(t, sw.Spec())
	again, err := tp.LoadOrCreateAK(tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Name, ak.Name) {
		t.Fatalf("after the reboot the ak name is %x, want %x", again.Name, ak.Name)
	}
	after, err := tp.ResetCount()
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("resetCount %d after the reboot, want %d", after, before+1)
	}
	t.Run("an ak of another kind at the same handle is refused", func(t *testing.T) {
		_, err := tp.LoadOrCreateAK(tpm.AKOptions{Algorithm: tpm.RSA2048})
		if !errors.Is(err, tpm.ErrAKMismatch) {
			t.Fatalf("LoadOrCreateAK(rsa) over an ecc ak = %v, want ErrAKMismatch", err)
		}
	})
	t.Run("a non-persistent handle is refused", func(t *testing.T) {
		if _, err := tp.LoadOrCreateAK(tpm.AKOptions{Handle: 0x80000001}); err == nil {
			t.Fatal("LoadOrCreateAK with a transient handle succeeded")
		}
	})
}

func TestActivateCredential(t *testing.T) {
	otherName := append([]byte{0x00, 0x0b}, bytes.Repeat([]byte{0x42}, 32)...)
	tests := []struct {
		name    string
		ek      tpm.KeyAlgorithm
		ak      tpm.AKOptions
		akName  func(ak *tpm.AK) []byte
		wantErr bool
	}{
		{name: "an rsa ek releases the secret for its ak", ek: tpm.RSA2048},
		{name: "an ecc p-256 ek releases the secret for its ak", ek: tpm.ECCP256},
		{name: "an ecc p-384 ek releases the secret for its ak", ek: tpm.ECCP384},
		{name: "an rsa ak works too", ek: tpm.RSA2048, ak: tpm.AKOptions{Algorithm: tpm.RSA2048, Handle: 0x81000101}},
		{name: "a credential for another ak name is refused", ek: tpm.RSA2048, akName: func(*tpm.AK) []byte { return otherName }, wantErr: true},
		{name: "a credential for another ak name is refused by an ecc ek", ek: tpm.ECCP256, akName: func(*tpm.AK) []byte { return otherName }, wantErr: true},
	}
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		tp := open(t) // one TPM for all cases: creating an RSA EK takes a while
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ek, err := tp.EK(tc.ek)
				if err != nil {
					t.Fatal(err)
				}
				ak, err := tp.LoadOrCreateAK(tc.ak)
				if err != nil {
					t.Fatal(err)
				}
				name := ak.Name
				if tc.akName != nil {
					name = tc.akName(ak)
				}
				secret := []byte("0123456789abcdef0123456789abcdef")
				blob, encSecret, err := credential.MakeCredential(ek.Public, name, secret)
				if err != nil {
					t.Fatalf("MakeCredential: %v", err)
				}
				got, err := tp.ActivateCredential(blob, encSecret)
				if tc.wantErr {
					if err == nil {
						t.Fatalf("ActivateCredential succeeded and returned %x, want an error", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("ActivateCredential: %v", err)
				}
				if !bytes.Equal(got, secret) {
					t.Fatalf("ActivateCredential = %x, want %x", got, secret)
				}
			})
		}
	})
}

func TestActivateCredentialWithCertifiedEK(t *testing.T) {
	t.Parallel()
	tp := openSpec(t, tpmtest.NewWithEKCert(t).Spec())
	ek, err := tp.PreferredEK()
	if err != nil {
		t.Fatal(err)
	}
	ak, err := tp.LoadOrCreateAK(tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a secret for the certified ek")
	blob, encSecret, err := credential.MakeCredential(ek.Public, ak.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.ActivateCredential(blob, encSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("ActivateCredential = %q, want %q", got, secret)
	}
}

func TestActivateCredentialNeedsKeys(t *testing.T) {
	t.Parallel()
	tp := openSpec(t, tpmtest.New(t).Spec())
	if _, err := tp.ActivateCredential([]byte{1}, []byte{2}); !errors.Is(err, tpm.ErrNoEK) {
		t.Errorf("without an ek: %v, want ErrNoEK", err)
	}
	if _, err := tp.EK(tpm.RSA2048); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.ActivateCredential([]byte{1}, []byte{2}); !errors.Is(err, tpm.ErrNoAK) {
		t.Errorf("without an ak: %v, want ErrNoAK", err)
	}
}

func TestQuote(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xa5}, evidence.NonceSize)
	allBanks := []string{evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384}
	tests := []struct {
		name  string
		ak    tpm.AKOptions
		pcrs  []int
		banks []string
	}{
		{name: "an ecc ak quotes all active banks over all 24 pcrs", pcrs: seq(24), banks: allBanks},
		{name: "an rsa ak quotes the boot pcrs", ak: tpm.AKOptions{Algorithm: tpm.RSA2048}, pcrs: []int{0, 1, 2, 3, 4, 5, 6, 7, 10}, banks: allBanks},
		{name: "a single pcr of a single bank is quoted", pcrs: []int{10}, banks: []string{evidence.BankSHA256}},
		{name: "pcrs in any order are quoted", pcrs: []int{9, 23, 3, 17}, banks: []string{"sha256", "sha384"}},
	}
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tp := open(t)
				ak, err := tp.LoadOrCreateAK(tc.ak)
				if err != nil {
					t.Fatal(err)
				}
				// Make the PCRs differ from their reset values.
				if err := tp.Extend(tc.pcrs[0], evidence.BankSHA256, sha256Sum("quote test")); err != nil {
					t.Fatal(err)
				}
				active, err := tp.ActiveBanks()
				if err != nil {
					t.Fatal(err)
				}
				q, err := tp.Quote(nonce, tc.pcrs, tc.banks)
				if err != nil {
					t.Fatalf("Quote: %v", err)
				}
				checkQuote(t, q, ak, nonce, tc.pcrs, tc.banks, active)
			})
		}
	})
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// checkQuote verifies a quote the way the verifier will: signature by the
// AK, TPM_GENERATED magic, quote type, nonce, and the PCR digest recomputed
// from the reported values.
func checkQuote(t *testing.T, q *evidence.QuoteResponse, ak *tpm.AK, nonce []byte, pcrs []int, banks, active []string) {
	t.Helper()
	if q.Version != evidence.Version {
		t.Errorf("quote version %q, want %q", q.Version, evidence.Version)
	}
	if !bytes.Equal(q.AKName, ak.Name) {
		t.Errorf("quote ak name %x, want %x", q.AKName, ak.Name)
	}
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		t.Fatalf("attest does not parse: %v", err)
	}
	if attest.Magic != tpm2.TPMGeneratedValue {
		t.Errorf("magic %#x, want TPM_GENERATED", uint32(attest.Magic))
	}
	if attest.Type != tpm2.TPMSTAttestQuote {
		t.Errorf("attest type %#x, want ATTEST_QUOTE", uint16(attest.Type))
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		t.Errorf("extraData %x, want the nonce %x", attest.ExtraData.Buffer, nonce)
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		t.Fatal(err)
	}

	// The reported values: the requested active banks, every requested PCR.
	var wantBanks []string
	for _, b := range active {
		if slices.ContainsFunc(banks, func(r string) bool { return strings.EqualFold(r, b) }) {
			wantBanks = append(wantBanks, b)
		}
	}
	values := map[string]map[int][]byte{}
	for _, v := range q.PCRs {
		if values[v.Bank] == nil {
			values[v.Bank] = map[int][]byte{}
		}
		values[v.Bank][v.Index] = v.Value
	}
	if got := len(q.PCRs); got != len(wantBanks)*len(pcrs) {
		t.Errorf("%d pcr values reported, want %d (%v x %v)", got, len(wantBanks)*len(pcrs), wantBanks, pcrs)
	}
	if len(info.PCRSelect.PCRSelections) != len(wantBanks) {
		t.Errorf("quote selects %d banks, want %v", len(info.PCRSelect.PCRSelections), wantBanks)
	}
	h := sha256.New()
	for _, sel := range info.PCRSelect.PCRSelections {
		bank := map[tpm2.TPMAlgID]string{tpm2.TPMAlgSHA1: "SHA1", tpm2.TPMAlgSHA256: "SHA256", tpm2.TPMAlgSHA384: "SHA384"}[sel.Hash]
		for i := range 24 {
			if sel.PCRSelect[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			v, ok := values[bank][i]
			if !ok {
				t.Fatalf("quote covers %s pcr %d but no value was reported", bank, i)
			}
			h.Write(v)
		}
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		t.Errorf("pcr digest %x is not the hash of the reported values", info.PCRDigest.Buffer)
	}

	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
	if err != nil {
		t.Fatalf("signature does not parse: %v", err)
	}
	digest := sha256.Sum256(q.Attest)
	switch key := ak.Key.(type) {
	case *ecdsa.PublicKey:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)) {
			t.Error("ecdsa signature does not verify with the ak")
		}
	case *rsa.PublicKey:
		s, err := sig.Signature.RSASSA()
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], s.Sig.Buffer); err != nil {
			t.Errorf("rsa signature does not verify with the ak: %v", err)
		}
	default:
		t.Fatalf("unexpected ak key %T", ak.Key)
	}
	// A signature that verifies must not verify a changed attest.
	if key, ok := ak.Key.(*ecdsa.PublicKey); ok {
		s, _ := sig.Signature.ECDSA()
		changed := sha256.Sum256(append(bytes.Clone(q.Attest), 0))
		if ecdsa.Verify(key, changed[:], new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)) {
			t.Error("the signature also verifies a changed attest")
		}
	}
}

func TestQuoteRefusals(t *testing.T) {
	t.Parallel()
	sw := tpmtest.NewWithEKCert(t) // only sha256 is active
	tp := openSpec(t, sw.Spec())
	nonce := []byte("nonce")
	if _, err := tp.Quote(nonce, []int{0}, []string{evidence.BankSHA256}); !errors.Is(err, tpm.ErrNoAK) {
		t.Errorf("quote without an ak: %v, want ErrNoAK", err)
	}
	if _, err := tp.LoadOrCreateAK(tpm.AKOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		nonce   []byte
		pcrs    []int
		banks   []string
		wantErr error
	}{
		{name: "only inactive banks requested", nonce: nonce, pcrs: []int{0}, banks: []string{evidence.BankSHA1, evidence.BankSHA384}, wantErr: tpm.ErrNoActiveBank},
		{name: "an unknown bank", nonce: nonce, pcrs: []int{0}, banks: []string{"MD5"}},
		{name: "an empty nonce", pcrs: []int{0}, banks: []string{evidence.BankSHA256}},
		{name: "a nonce too long", nonce: make([]byte, 65), pcrs: []int{0}, banks: []string{evidence.BankSHA256}},
		{name: "no pcrs", nonce: nonce, banks: []string{evidence.BankSHA256}},
		{name: "a pcr out of range", nonce: nonce, pcrs: []int{24}, banks: []string{evidence.BankSHA256}},
		{name: "a pcr named twice", nonce: nonce, pcrs: []int{1, 1}, banks: []string{evidence.BankSHA256}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tp.Quote(tc.nonce, tc.pcrs, tc.banks)
			if err == nil {
				t.Fatal("Quote succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Quote = %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("inactive banks are skipped when an active one is requested", func(t *testing.T) {
		q, err := tp.Quote(nonce, []int{0, 7}, []string{evidence.BankSHA1, evidence.BankSHA256})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range q.PCRs {
			if v.Bank != evidence.BankSHA256 {
				t.Errorf("value of inactive bank %s reported", v.Bank)
			}
		}
	})
}

func TestExtend(t *testing.T) {
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		tp := open(t)
		before, err := tp.ReadPCRs(evidence.BankSHA256, []int{16, 23})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256Sum("event")
		if err := tp.Extend(16, evidence.BankSHA256, digest); err != nil {
			t.Fatal(err)
		}
		after, err := tp.ReadPCRs(evidence.BankSHA256, []int{16, 23})
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(append(bytes.Clone(before[16]), digest...))
		if !bytes.Equal(after[16], want[:]) {
			t.Errorf("pcr 16 after extend = %x, want %x", after[16], want)
		}
		if !bytes.Equal(after[23], before[23]) {
			t.Error("pcr 23 changed though only 16 was extended")
		}
		if err := tp.Extend(16, evidence.BankSHA256, digest[:20]); err == nil {
			t.Error("extending sha256 with a 20-byte digest succeeded")
		}
		if err := tp.Extend(24, evidence.BankSHA256, digest); err == nil {
			t.Error("extending pcr 24 succeeded")
		}
	})
}

func TestReadPCRsBeyondEightPerCall(t *testing.T) {
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		tp := open(t)
		// PCRs 17-22 belong to the dynamic root of trust: locality 0 cannot extend them.
		for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23} {
			if err := tp.Extend(i, evidence.BankSHA256, sha256Sum(string(rune('a'+i)))); err != nil {
				t.Fatal(err)
			}
		}
		values, err := tp.ReadPCRs(evidence.BankSHA256, seq(24))
		if err != nil {
			t.Fatal(err)
		}
		if len(values) != 24 {
			t.Fatalf("read %d pcrs, want 24", len(values))
		}
		for i := range 24 {
			one, err := tp.ReadPCRs(evidence.BankSHA256, []int{i})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(one[i], values[i]) || len(values[i]) != 32 {
				t.Errorf("pcr %d read alone %x, in the batch %x", i, one[i], values[i])
			}
		}
	})
}

func TestInfo(t *testing.T) {
	onEachTPM(t, func(t *testing.T, open func(*testing.T) *tpm.TPM) {
		tp := open(t)
		info, err := tp.Info()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", info)
		if !info.Present || info.Version != "2.0" {
			t.Errorf("Present=%v Version=%q, want true 2.0", info.Present, info.Version)
		}
		if n := len(info.Manufacturer); n == 0 || n > 4 {
			t.Errorf("manufacturer %q is not a 1-4 character id", info.Manufacturer)
		}
		if !strings.HasPrefix(info.SpecRevision, "1.") {
			t.Errorf("spec revision %q, want 1.xx", info.SpecRevision)
		}
		if !slices.Contains(info.ActiveBanks, evidence.BankSHA256) {
			t.Errorf("active banks %v lack SHA256", info.ActiveBanks)
		}
	})
}

func BenchmarkQuote(b *testing.B) {
	tp, err := tpm.Open(tpmtest.New(b).Spec())
	if err != nil {
		b.Fatal(err)
	}
	defer tp.Close()
	if _, err := tp.LoadOrCreateAK(tpm.AKOptions{}); err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, evidence.NonceSize)
	pcrs := seq(24)
	b.ResetTimer()
	for b.Loop() {
		if _, err := tp.Quote(nonce, pcrs, []string{evidence.BankSHA256}); err != nil {
			b.Fatal(err)
		}
	}
}
