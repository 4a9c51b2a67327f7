package softtpm_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/verifier/enroll"
)

func newTPM(t *testing.T, ca *softtpm.EKCA) *softtpm.TPM {
	t.Helper()
	tp, err := softtpm.New(ca, softtpm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func newCA(t *testing.T) *softtpm.EKCA {
	t.Helper()
	ca, err := softtpm.NewEKCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestQuoteIsAcceptedByTheVerifiersQuoteCheck(t *testing.T) {
	tp := newTPM(t, newCA(t))
	digest := sha256.Sum256([]byte("kernel"))
	if err := tp.Extend(10, evidence.BankSHA256, digest[:]); err != nil {
		t.Fatal(err)
	}
	tp.Reset() // resetCount 2, PCRs cleared
	if err := tp.Extend(4, evidence.BankSHA256, digest[:]); err != nil {
		t.Fatal(err)
	}
	info, err := tp.KeyInfo()
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	q, err := tp.Quote(nonce, []int{0, 4, 10, 17}, []string{evidence.BankSHA256, evidence.BankSHA384})
	if err != nil {
		t.Fatal(err)
	}
	got, faults := appraise.VerifyQuote(info.AKPublic, nonce, q)
	if len(faults) > 0 {
		t.Fatalf("VerifyQuote faults: %+v", faults)
	}
	if got.ClockInfo.ResetCount != 2 {
		t.Errorf("resetCount = %d, want 2 after one reset", got.ClockInfo.ResetCount)
	}
	want4 := sha256.Sum256(append(make([]byte, 32), digest[:]...))
	if !bytes.Equal(got.PCRs[evidence.BankSHA256][4], want4[:]) {
		t.Errorf("pcr 4 = %x, want %x", got.PCRs[evidence.BankSHA256][4], want4)
	}
	if v := got.PCRs[evidence.BankSHA256][10]; !bytes.Equal(v, make([]byte, 32)) {
		t.Errorf("pcr 10 = %x after the reset, want zeros", v)
	}
	if v := got.PCRs[evidence.BankSHA256][17]; !bytes.Equal(v, bytes.Repeat([]byte{0xff}, 32)) {
		t.Errorf("pcr 17 = %x, want all ones", v)
	}
}

func TestAlteredQuotesAreRefused(t *testing.T) {
	tp := newTPM(t, newCA(t))
	other := newTPM(t, newCA(t))
	info, _ := tp.KeyInfo()
	otherInfo, _ := other.KeyInfo()
	nonce := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name            string
		akPublic, nonce []byte
		alter           func(q *evidence.QuoteResponse)
		wantFault       string
	}{
		{"a reported pcr value that is not the quoted one is a pcr digest fault", info.AKPublic, nonce,
			func(q *evidence.QuoteResponse) { q.PCRs[0].Value[0] ^= 1 }, appraise.FaultQuotePCRDigest},
		{"a flipped byte of the attest structure breaks the signature", info.AKPublic, nonce,
			func(q *evidence.QuoteResponse) { q.Attest[len(q.Attest)-1] ^= 1 }, appraise.FaultQuoteSignature},
		{"another nonce is a nonce fault", info.AKPublic, bytes.Repeat([]byte{8}, 32),
			func(*evidence.QuoteResponse) {}, appraise.FaultQuoteNonce},
		{"another tpm's ak does not verify the signature", otherInfo.AKPublic, nonce,
			func(q *evidence.QuoteResponse) { q.AKName = nil }, appraise.FaultQuoteSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tp.Quote(nonce, []int{0, 7}, []string{evidence.BankSHA256})
			if err != nil {
				t.Fatal(err)
			}
			tt.alter(q)
			_, faults := appraise.VerifyQuote(tt.akPublic, tt.nonce, q)
			for _, f := range faults {
				if f.Name == tt.wantFault {
					return
				}
			}
			t.Fatalf("faults %+v, want %s", faults, tt.wantFault)
		})
	}
}

func TestActivateCredentialRecoversOnlyItsOwnSecret(t *testing.T) {
	ca := newCA(t)
	tp := newTPM(t, ca)
	other := newTPM(t, ca)
	info, _ := tp.KeyInfo()
	otherInfo, _ := other.KeyInfo()
	secret := bytes.Repeat([]byte{0x5a}, 32)
	tests := []struct {
		name             string
		ekPublic, akName []byte
		alter            func(blob, enc []byte)
		wantErr          bool
	}{
		{"a credential sealed to this ek and ak name is recovered", info.EKPublic, info.AKName, nil, false},
		{"a credential sealed to another ak name is refused", info.EKPublic, otherInfo.AKName, nil, true},
		{"a credential sealed to another tpm's ek is refused", otherInfo.EKPublic, info.AKName, nil, true},
		{"an altered encrypted credential fails the integrity check", info.EKPublic, info.AKName,
			func(blob, _ []byte) { blob[len(blob)-1] ^= 1 }, true},
		{"an altered seed fails the integrity check", info.EKPublic, info.AKName,
			func(_, enc []byte) { enc[len(enc)-1] ^= 1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob, enc, err := credential.MakeCredential(tt.ekPublic, tt.akName, secret)
			if err != nil {
				t.Fatal(err)
			}
			if tt.alter != nil {
				tt.alter(blob, enc)
			}
			got, err := tp.ActivateCredential(blob, enc)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ActivateCredential recovered %x, want a refusal", got)
				}
				if !errors.Is(err, softtpm.ErrActivation) {
					t.Fatalf("error %v, want ErrActivation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("recovered %x, want %x", got, secret)
			}
		})
	}
}

func TestEKCertificateChainsToTheSimulatorCAAndCertifiesTheEK(t *testing.T) {
	ca := newCA(t)
	tp := newTPM(t, ca)
	info, _ := tp.KeyInfo()
	cert, err := enroll.VerifyEKCertificate(info.EKCertificate, ca.Pool(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](info.EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(key) {
		t.Fatal("the ek certificate certifies another key than the ek public area")
	}
	if _, err := enroll.VerifyEKCertificate(info.EKCertificate, newCA(t).Pool(), nil, time.Now()); err == nil {
		t.Fatal("the ek certificate verified against another ca")
	}
}
