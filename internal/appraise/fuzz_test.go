package appraise

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// The fuzz tests feed arbitrary bytes to every parser of untrusted input.
// None may panic; where a parser accepts its input, the checks that follow
// must run on it without panicking either.

func FuzzParseEventLog(f *testing.F) {
	good := newBootLog(f, 1, 2).bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(newLogBuilder(evidence.BankSHA1, evidence.BankSHA256).measure(0, evPostCode, []byte("x")).bytes())
	legacy := []byte{0, 0, 0, 0, 1, 0, 0, 0}
	legacy = append(legacy, make([]byte, 20)...)
	f.Add(append(legacy, 1, 0, 0, 0, 'x'))
	f.Add([]byte{})
	for _, real := range []string{"testdata/ovmf/sb-on.bin", "testdata/sb-cert.eventlog"} {
		if raw, err := os.ReadFile(real); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		log, err := ParseEventLog(raw)
		if err != nil {
			return
		}
		// Quote exactly what the log replays to, so SecureBoot gets past
		// the replay and parses the PCR 7 events.
		pcrs := PCRs{}
		for _, bank := range log.Banks() {
			h, _ := bankHash(bank)
			pcrs[bank] = map[int][]byte{}
			for _, i := range []int{0, 4, 7, 9} {
				pcrs[bank][i] = log.replayPCR(log.bankIndex(bank), i, h)
			}
			log.Events(bank)
		}
		if len(pcrs) > 0 {
			if faults := log.Replay(pcrs); len(faults) > 0 {
				t.Fatalf("a log does not replay to its own values: %v", faults)
			}
		}
		SecureBoot(log, pcrs)
	})
}

func FuzzVerifyQuoteAttest(f *testing.F) {
	ak := newAK(f, "ecc-p256")
	rsp := buildQuote(f, ak, testNonce(), testPCRs(), quoteOptions{})
	f.Add(rsp.Attest)
	f.Add(rsp.Attest[:30])
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18})
	f.Fuzz(func(t *testing.T, attest []byte) {
		// Sign whatever the fuzzer made, so the parser behind the
		// signature check is reached.
		q := *rsp
		q.Attest = attest
		q.Signature = ak.sign(t, attest)
		quote, faults := VerifyQuote(ak.public, boundNonce(), &q)
		if (quote == nil) == (len(faults) == 0) {
			t.Fatalf("quote %v with faults %v", quote, faults)
		}
	})
}

func FuzzVerifyQuoteSignature(f *testing.F) {
	ak := newAK(f, "rsassa")
	rsp := buildQuote(f, ak, testNonce(), testPCRs(), quoteOptions{})
	f.Add(rsp.Signature)
	f.Add(newAK(f, "ecc-p384").sign(f, rsp.Attest))
	f.Add([]byte{0x00, 0x14, 0x00, 0x0b, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, sig []byte) {
		q := *rsp
		q.Signature = sig
		VerifyQuote(ak.public, boundNonce(), &q)
	})
}

func FuzzVerifyQuoteAKPublic(f *testing.F) {
	for _, kind := range []string{"ecc-p256", "ecc-p384", "rsapss"} {
		f.Add(newAK(f, kind).public)
	}
	ak := newAK(f, "ecc-p256")
	rsp := buildQuote(f, ak, testNonce(), testPCRs(), quoteOptions{})
	parsed, err := ParseAK(ak.public)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, public []byte) {
		_, want := VerifyQuote(public, boundNonce(), rsp)
		// ParseAK refuses exactly what an appraisal refuses, and a parsed
		// AK never stands in for other bytes.
		_, err := ParseAK(public)
		if invalid := slices.ContainsFunc(want, func(f Fault) bool { return f.Name == FaultAKInvalid }); invalid != (err != nil) {
			t.Fatalf("ParseAK: %v, but the appraisal's faults are %v", err, faultNames(want))
		}
		if _, got := verifyQuote(public, parsed, boundNonce(), rsp); !slices.Equal(faultNames(got), faultNames(want)) {
			t.Fatalf("with the parsed AK of other bytes: faults %v, want %v", faultNames(got), faultNames(want))
		}
		// The AK's name is the one tpm2.ObjectName gives its public area.
		if ak, err := parseAK(public); err == nil {
			pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
			if err != nil {
				t.Fatal(err)
			}
			name, err := tpm2.ObjectName(pub)
			if err != nil || !bytes.Equal(ak.name, name.Buffer) {
				t.Fatalf("name %x, tpm2.ObjectName gives %x (%v)", ak.name, name.Buffer, err)
			}
		}
	})
}

func FuzzParseIMALine(f *testing.F) {
	f.Add(realIMALine)
	f.Add(imaLine("/usr/bin/bash", []byte("bash")))
	f.Add("10 " + "0000000000000000000000000000000000000000" + " ima 0000000000000000000000000000000000000000 boot_aggregate")
	f.Add("10 00 ima-ng sha1: x")
	file := sha256Sum([]byte("m"))
	sigLine, _ := imaSigLine("/usr/bin/s", file, []byte{3, 2, 4, 0, 0, 0, 1, 0, 1, 0xaa})
	f.Add(sigLine)
	f.Add(imaModsigLine("/m.ko", file, nil, file, []byte{1, 2, 3}))
	f.Add(imaModsigLine("/m.ko", file, nil, nil, nil))
	f.Add(imaBufLine("kexec-cmdline", []byte("ro quiet")))
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseIMALine(line)
		if err == nil {
			e.templateData()
		}
		for _, bank := range []string{evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384} {
			res, _ := ReplayIMA(line+"\n"+line, nil, bank)
			CompareIMA(res, PCRs{bank: {10: res.Value}})
			// A replay decodes each line as ParseIMALine does, though
			// into shared blocks.
			if strings.ContainsRune(line, '\n') {
				continue
			}
			want := 0
			if err == nil {
				want = 2
			}
			if len(res.Entries) != want {
				t.Fatalf("the replay of two copies of the line has %d entries; ParseIMALine: %v", len(res.Entries), err)
			}
			for _, got := range res.Entries {
				if !reflect.DeepEqual(got, e) {
					t.Fatalf("the replay decodes %+v, ParseIMALine %+v", got, e)
				}
			}
		}
	})
}

func FuzzDecodeQuoteResponse(f *testing.F) {
	n := newNode(f, "ecc-p256", 1, 3)
	good, err := json.Marshal(n.rsp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":"tc/v1","attest":"/1RDR4AY","signature":"","pcrs":[{"bank":"SHA256","index":0,"value":""}]}`))
	f.Add([]byte(`{"version":"tc/v1","error":{"code":"INTERNAL","message":"x"}}`))
	f.Add([]byte(`{}`))
	memo := &mapMemo{m: map[[32]byte]*EventLogAppraisal{}}
	in := n.input()
	in.EventLogMemo = memo
	held := Appraise(in, testNow).EventLog
	if held == nil {
		f.Fatal("the genuine log names no held log")
	}
	left := *n.rsp
	left.EventLog, left.EventLogDigest = nil, held.Digest[:]
	if b, err := json.Marshal(&left); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rsp evidence.QuoteResponse
		if err := evidence.Decode(data, &rsp); err != nil {
			return
		}
		in := n.input()
		in.Response = &rsp
		v := Appraise(in, testNow)
		if v.Trusted() && v.Quote == nil {
			t.Fatal("a trusted verdict without a verified quote")
		}
		// The request named the genuine log, whose appraisal is held.
		in.Request.EventLogDigest, in.HeldEventLog, in.EventLogMemo = held.Digest[:], held, memo
		if v := Appraise(in, testNow); v.Trusted() && (v.Quote == nil || v.EventLog == nil || v.EventLog.Digest != held.Digest) {
			t.Fatalf("a trusted verdict whose event log is not the held one: %+v", v.EventLog)
		}
	})
}
