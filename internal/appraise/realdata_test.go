package appraise

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// Tests over real event logs and quotes; testdata/README.md says where
// each file comes from.

// readPCRs reads {"SHA256":{"0":"<hex>",...},...}.
func readPCRs(t testing.TB, path string) PCRs {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pcrs := PCRs{}
	for bank, values := range m {
		pcrs[bank] = map[int][]byte{}
		for idx, v := range values {
			i, err := strconv.Atoi(idx)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if pcrs[bank][i], err = hex.DecodeString(v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
	}
	return pcrs
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// only keeps the given PCR indexes of every bank.
func only(p PCRs, indexes ...int) PCRs {
	out := PCRs{}
	for bank, values := range p {
		out[bank] = map[int][]byte{}
		for _, i := range indexes {
			out[bank][i] = values[i]
		}
	}
	return out
}

const snakeoil = "O=SnakeOil,L=Fort Collins,ST=Colorado,C=US"

func TestOVMFCapturesReplayAndShowSecureBoot(t *testing.T) {
	logs, err := filepath.Glob("testdata/ovmf/*.bin")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no OVMF captures in testdata/ovmf (%v)", err)
	}
	for _, path := range logs {
		name := strings.TrimSuffix(filepath.Base(path), ".bin")
		t.Run(name+" replays to the PCRs read in the same boot", func(t *testing.T) {
			pcrs := readPCRs(t, strings.TrimSuffix(path, ".bin")+".pcrs.json")
			log := mustParse(t, readFile(t, path))
			if got := log.Banks(); !slices.Equal(got, []string{evidence.BankSHA256, evidence.BankSHA384}) {
				t.Errorf("banks %v", got)
			}
			// All 24 PCRs: 10 (IMA) and 17-22 have no firmware events and are skipped.
			if faults := log.Replay(pcrs); len(faults) > 0 {
				t.Fatalf("faults: %v", faults)
			}
			st, faults := SecureBoot(log, pcrs)
			if len(faults) > 0 {
				t.Fatalf("secure boot faults: %v", faults)
			}
			want := SecureBootState{Bank: evidence.BankSHA384}
			if strings.HasPrefix(name, "sb-on") {
				want = SecureBootState{Enabled: true, PK: []string{snakeoil}, KEK: []string{snakeoil}, DB: []string{snakeoil},
					DBX: st.DBX, Authorities: []string{snakeoil}, Bank: evidence.BankSHA384}
				if len(st.DBX) != 1 || !strings.HasPrefix(st.DBX[0], "sha256:") {
					t.Errorf("dbx %v, want one hash", st.DBX)
				}
			}
			if !equalState(st, want) {
				t.Errorf("state %+v\nwant   %+v", st, want)
			}
		})
	}
}

// TestOVMFCapturesTellBootsApart replays the log of every capture against
// the PCRs of every other one: the replay must fault exactly at the PCRs
// whose values differ (PCR 10, IMA's, has no firmware events and is never
// replayed), and Secure Boot must be unreadable exactly when PCR 7 differs.
func TestOVMFCapturesTellBootsApart(t *testing.T) {
	logs, err := filepath.Glob("testdata/ovmf/*.bin")
	if err != nil || len(logs) < 2 {
		t.Fatalf("need two OVMF captures in testdata/ovmf (%v)", err)
	}
	sawPCR7 := false
	for _, logPath := range logs {
		for _, quotePath := range logs {
			if logPath == quotePath {
				continue
			}
			name := func(p string) string { return strings.TrimSuffix(filepath.Base(p), ".bin") }
			t.Run("the log of "+name(logPath)+" against the PCRs of "+name(quotePath), func(t *testing.T) {
				own := readPCRs(t, strings.TrimSuffix(logPath, ".bin")+".pcrs.json")
				quoted := readPCRs(t, strings.TrimSuffix(quotePath, ".bin")+".pcrs.json")
				var want []string
				for _, bank := range sortedBanks(quoted) {
					for _, i := range sortedIndexes(quoted[bank]) {
						if i != imaPCR && !bytes.Equal(own[bank][i], quoted[bank][i]) {
							want = append(want, bank+"/"+strconv.Itoa(i))
						}
					}
				}
				log := mustParse(t, readFile(t, logPath))
				var got []string
				for _, f := range log.Replay(quoted) {
					got = append(got, f.PCRBank+"/"+strconv.Itoa(*f.PCRIndex))
				}
				if !slices.Equal(got, want) {
					t.Errorf("replay faults at %v, want %v", got, want)
				}
				pcr7Differs := !bytes.Equal(own[evidence.BankSHA384][7], quoted[evidence.BankSHA384][7])
				sawPCR7 = sawPCR7 || pcr7Differs
				if _, faults := SecureBoot(log, quoted); (len(faults) > 0) != pcr7Differs {
					t.Errorf("secure boot faults %v, want faults %t", faults, pcr7Differs)
				}
			})
		}
	}
	if !sawPCR7 {
		t.Error("no two captures differ in PCR 7; the Secure Boot on/off pair is missing")
	}
}

func TestAppraiseARealOVMFBoot(t *testing.T) {
	pcrs := only(readPCRs(t, "testdata/ovmf/sb-on.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11)
	ak := newAK(t, "ecc-p256")
	rsp := buildQuote(t, ak, testNonce(), pcrs, quoteOptions{resetCount: 1})
	rsp.EventLog = readFile(t, "testdata/ovmf/sb-on.bin")
	v := Appraise(Input{AKPublic: ak.public, Request: evidence.QuoteRequest{Nonce: testNonce()}, Response: rsp}, testNow)
	if !v.Trusted() || !v.SecureBoot.Enabled {
		t.Fatalf("faults %v, secure boot %+v", v.Faults, v.SecureBoot)
	}
	var pcr7 []string
	for _, ev := range v.Events[evidence.BankSHA256] {
		if ev.Index == 7 {
			pcr7 = append(pcr7, ev.TypeName+" "+ev.Description)
		}
	}
	if len(pcr7) < 6 || pcr7[0] != "EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot" || !slices.Contains(pcr7, "EV_EFI_VARIABLE_AUTHORITY db") {
		t.Errorf("PCR 7 events %q", pcr7)
	}
}

// TestGoAttestationFirmwareLogs replays the real firmware logs that
// go-attestation tests with, and reads their Secure Boot state.
func TestGoAttestationFirmwareLogs(t *testing.T) {
	tests := []struct {
		name        string
		log         string
		pcrs        string // "" replays the log against itself
		enabled     bool
		authorities int
	}{
		{"a GCE shielded VM log with Secure Boot certificates", "testdata/sb-cert.eventlog", "testdata/sb-cert.pcrs.json", true, 3},
		{"a log with an option ROM verified by db", "testdata/option-rom.eventlog", "testdata/option-rom.pcrs.json", true, 2},
		{"an Ubuntu 21.04 shielded VM log without Secure Boot", "testdata/ubuntu-2104-no-secure-boot.eventlog", "", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := mustParse(t, readFile(t, tt.log))
			var pcrs PCRs
			if tt.pcrs != "" {
				pcrs = readPCRs(t, tt.pcrs)
			} else {
				pcrs = PCRs{}
				for _, bank := range log.Banks() {
					h, _ := bankHash(bank)
					pcrs[bank] = map[int][]byte{}
					for i := 0; i <= 9; i++ {
						pcrs[bank][i] = log.replayPCR(log.bankIndex(bank), i, h)
					}
				}
			}
			if faults := log.Replay(pcrs); len(faults) > 0 {
				t.Fatalf("faults: %v", faults)
			}
			st, faults := SecureBoot(log, pcrs)
			if len(faults) > 0 {
				t.Fatalf("secure boot faults: %v", faults)
			}
			if st.Enabled != tt.enabled || len(st.Authorities) != tt.authorities {
				t.Errorf("state %+v, want enabled %t with %d authorities", st, tt.enabled, tt.authorities)
			}
		})
	}
}

// gcpDump is the shape of go-attestation's windows_gcp_shielded_vm.json.
type gcpDump struct {
	AK struct {
		Public []byte
	}
	Quote struct {
		Nonce, Quote, Signature []byte
	}
	Log struct {
		PCRs []struct {
			Index     int
			Digest    []byte
			DigestAlg int
		}
		Raw []byte
	}
}

// TestARealVTPMQuoteAndLogVerify checks a quote a real (GCE) vTPM made with
// an RSA AK. It was taken without a nonce and signed with RSASSA-SHA1, both
// of which VerifyQuote refuses, so the test runs the checks one by one: the
// AK and attest decode, the signature verifies with SHA-1 by hand, and the
// PCR digest, the log replay and Secure Boot hold.
func TestARealVTPMQuoteAndLogVerify(t *testing.T) {
	var dump gcpDump
	if err := json.Unmarshal(readFile(t, "testdata/gcp-windows-shielded-vm.json"), &dump); err != nil {
		t.Fatal(err)
	}
	rsp := &evidence.QuoteResponse{Attest: dump.Quote.Quote, Signature: dump.Quote.Signature, EventLog: dump.Log.Raw}
	for _, p := range dump.Log.PCRs {
		bank := map[int]string{3: evidence.BankSHA1, 5: evidence.BankSHA256}[p.DigestAlg]
		rsp.PCRs = append(rsp.PCRs, evidence.PCRValue{Bank: bank, Index: p.Index, Value: p.Digest})
	}
	if _, faults := VerifyQuote(dump.AK.Public, dump.Quote.Nonce, rsp); !slices.Equal(faultNames(faults), []string{FaultQuoteNonce}) {
		t.Fatalf("faults = %v, want only %s for the missing nonce", faults, FaultQuoteNonce)
	}
	ak, err := parseAK(dump.AK.Public)
	if err != nil {
		t.Fatal(err)
	}
	attest, f := parseAttest(rsp.Attest)
	if f != nil {
		t.Fatal(f)
	}
	if _, f := verifySignature(ak, rsp.Attest, rsp.Signature); f == nil || f.Name != FaultQuoteSignature {
		t.Fatalf("a SHA-1 signature gives %v, want %s", f, FaultQuoteSignature)
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](rsp.Signature)
	if err != nil {
		t.Fatal(err)
	}
	rsaSig, err := sig.Signature.RSASSA()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha1.Sum(rsp.Attest)
	if err := rsa.VerifyPKCS1v15(ak.key.(*rsa.PublicKey), crypto.SHA1, digest[:], rsaSig.Sig.Buffer); err != nil {
		t.Fatalf("the parsed AK does not verify the real signature: %v", err)
	}
	h := crypto.SHA1
	pcrs, faults := verifyPCRs(attest.selections, attest.pcrDigest, h, rsp.PCRs)
	if len(faults) > 0 {
		t.Fatal(faults)
	}
	log := mustParse(t, rsp.EventLog)
	if faults := log.Replay(pcrs); len(faults) > 0 {
		t.Fatalf("replay faults: %v", faults)
	}
	if st, faults := SecureBoot(log, pcrs); len(faults) > 0 || !st.Enabled {
		t.Fatalf("secure boot %+v faults %v", st, faults)
	}
}
