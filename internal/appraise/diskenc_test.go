package appraise

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

// cryptsetupLog writes systemd's measure log as systemd does (one RS, one
// JSON object, one LF per record) and tracks the PCR 15 values the same
// extends give, bank by bank.
type cryptsetupLog struct {
	banks []string
	buf   bytes.Buffer
	pcr15 map[string][]byte
}

func newCryptsetupLog(banks ...string) *cryptsetupLog {
	l := &cryptsetupLog{banks: banks, pcr15: map[string][]byte{}}
	for _, b := range banks {
		h, _ := bankHash(b)
		l.pcr15[b] = make([]byte, h.Size())
	}
	return l
}

var celNames = map[string]string{evidence.BankSHA1: "sha1", evidence.BankSHA256: "sha256", evidence.BankSHA384: "sha384"}

// record appends a record of PCR pcr whose digest in each bank is digest(h);
// extend says whether it also goes into the tracked PCR 15.
func (l *cryptsetupLog) record(pcr int, eventType, description string, digest func(h crypto.Hash) []byte, extend bool) {
	type dig struct {
		HashAlg string `json:"hashAlg"`
		Digest  string `json:"digest"`
	}
	var digests []dig
	for _, b := range l.banks {
		h, _ := bankHash(b)
		d := digest(h)
		digests = append(digests, dig{celNames[b], hex.EncodeToString(d)})
		if extend && pcr == 15 {
			x := h.New()
			x.Write(l.pcr15[b])
			x.Write(d)
			l.pcr15[b] = x.Sum(nil)
		}
	}
	rec := map[string]any{"pcr": pcr, "digests": digests, "content_type": "systemd",
		"content": map[string]any{"string": description, "bootId": "0123456789abcdef0123456789abcdef", "timestamp": 1234567, "eventType": eventType}}
	body, _ := json.Marshal(rec)
	l.buf.WriteByte(0x1e)
	l.buf.Write(body)
	l.buf.WriteByte('\n')
}

// volumeKey records systemd-cryptsetup's measurement of a volume:
// HMAC(volume key, "cryptsetup:<name>:<uuid>") in every bank.
func (l *cryptsetupLog) volumeKey(name, uuid string, key []byte, extend bool) {
	s := "cryptsetup:" + name + ":" + uuid
	l.record(15, "volume-key", s, func(h crypto.Hash) []byte {
		m := hmac.New(h.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}, extend)
}

// plain records a measurement whose digest is the hash of its description
// (machine-id, file systems, boot phases).
func (l *cryptsetupLog) plain(pcr int, eventType, s string) {
	l.record(pcr, eventType, s, func(h crypto.Hash) []byte { x := h.New(); x.Write([]byte(s)); return x.Sum(nil) }, true)
}

func (l *cryptsetupLog) pcrs() PCRs {
	p := PCRs{}
	for b, v := range l.pcr15 {
		p[b] = map[int][]byte{15: v}
	}
	return p
}

const rootUUID = "3f2d0c1b-9a8e-4d7c-6b5a-49382716f0e1"

var rootClaim = evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
	Volumes: []evidence.CryptVolume{{Name: "root", UUID: rootUUID}}}

func TestAppraiseDiskEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{0x5e}, 64)
	booted := func() *cryptsetupLog {
		l := newCryptsetupLog(evidence.BankSHA256, evidence.BankSHA384)
		l.plain(11, "phase", "enter-initrd")
		l.volumeKey("root", rootUUID, key, true)
		l.plain(11, "phase", "leave-initrd")
		l.plain(15, "machine-id", "machine-id:0123456789abcdef0123456789abcdef")
		l.plain(15, "filesystem", "file-system:ext4:uuid:label:part:type:name")
		return l
	}
	tests := []struct {
		name       string
		log        func() ([]byte, PCRs)
		claim      evidence.DiskEncryption
		wantStatus string
		wantFaults []string
		wantReason string
	}{
		{
			name:       "a log that replays to PCR 15 with the root volume's key measured is measured",
			log:        func() ([]byte, PCRs) { l := booted(); return l.buf.Bytes(), l.pcrs() },
			claim:      rootClaim,
			wantStatus: DiskEncryptionMeasured,
		},
		{
			name: "a forged volume key record that was never extended into PCR 15 is a fault",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.plain(15, "machine-id", "machine-id:0123456789abcdef0123456789abcdef")
				l.volumeKey("root", rootUUID, key, false)
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantFaults: []string{FaultMeasureLogReplay},
		},
		{
			name: "a log whose PCR 15 was never extended at all is a fault",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.volumeKey("root", rootUUID, key, false)
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantFaults: []string{FaultMeasureLogReplay},
		},
		{
			name:       "a claim without any log is claimed",
			log:        func() ([]byte, PCRs) { return nil, PCRs{evidence.BankSHA256: {15: make([]byte, 32)}} },
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantReason: "sent no systemd measure log",
		},
		{
			name:       "no claim and no log is none",
			log:        func() ([]byte, PCRs) { return nil, PCRs{evidence.BankSHA256: {15: make([]byte, 32)}} },
			wantStatus: DiskEncryptionNone,
		},
		{
			name: "a replayed log without a volume key record is only claimed",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.plain(15, "machine-id", "machine-id:0123456789abcdef0123456789abcdef")
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantReason: `no volume key measurement in PCR 15 for the root volume "root"`,
		},
		{
			name: "a measured volume other than the root's leaves the root claimed",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.volumeKey("var", "aaaaaaaa-9a8e-4d7c-6b5a-49382716f0e1", key, true)
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantReason: "for the root volume",
		},
		{
			name: "the root volume's name with another LUKS UUID is not the root volume",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.volumeKey("root", "00000000-0000-4000-8000-000000000000", key, true)
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
		},
		{
			name: "a volume key measurement in another PCR does not count",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.record(14, "volume-key", "cryptsetup:root:"+rootUUID, func(h crypto.Hash) []byte { return make([]byte, h.Size()) }, false)
				l.plain(15, "machine-id", "machine-id:0123456789abcdef0123456789abcdef")
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
		},
		{
			name:       "a measured volume without the agent's claim is none",
			log:        func() ([]byte, PCRs) { l := booted(); return l.buf.Bytes(), l.pcrs() },
			claim:      evidence.DiskEncryption{RootDevice: "sda2", Reason: "not dm-crypt"},
			wantStatus: DiskEncryptionNone,
		},
		{
			name:       "a claim that names no volume is only claimed",
			log:        func() ([]byte, PCRs) { l := booted(); return l.buf.Bytes(), l.pcrs() },
			claim:      evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2"},
			wantStatus: DiskEncryptionClaimed,
			wantReason: "names no dm-crypt volume",
		},
		{
			name: "a log of a bank that is not quoted proves nothing",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA384)
				l.volumeKey("root", rootUUID, key, true)
				return l.buf.Bytes(), PCRs{evidence.BankSHA256: {15: make([]byte, 32)}}
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantFaults: []string{FaultMeasureLogReplay},
		},
		{
			name: "a log without a quoted PCR 15 proves nothing",
			log: func() ([]byte, PCRs) {
				l := booted()
				return l.buf.Bytes(), PCRs{evidence.BankSHA256: {7: make([]byte, 32)}}
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantFaults: []string{FaultMeasureLogReplay},
		},
		{
			name: "a log that does not decode is a fault",
			log: func() ([]byte, PCRs) {
				return []byte("{\"pcr\":15}\n"), PCRs{evidence.BankSHA256: {15: make([]byte, 32)}}
			},
			claim:      rootClaim,
			wantStatus: DiskEncryptionClaimed,
			wantFaults: []string{FaultMeasureLogUnparsable},
		},
		{
			name: "a volume name with an escaped colon is unescaped",
			log: func() ([]byte, PCRs) {
				l := newCryptsetupLog(evidence.BankSHA256)
				l.volumeKey(`a\x3ab`, rootUUID, key, true)
				return l.buf.Bytes(), l.pcrs()
			},
			claim:      evidence.DiskEncryption{Enabled: true, Volumes: []evidence.CryptVolume{{Name: "a:b", UUID: rootUUID}}},
			wantStatus: DiskEncryptionMeasured,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, pcrs := tt.log()
			st, faults := AppraiseDiskEncryption(raw, tt.claim, pcrs)
			if st.Status != tt.wantStatus {
				t.Errorf("status = %q (%s), want %q", st.Status, st.Reason, tt.wantStatus)
			}
			if got := faultNames(faults); !slices.Equal(got, tt.wantFaults) {
				t.Errorf("faults = %v, want %v", faults, tt.wantFaults)
			}
			if !strings.Contains(st.Reason, tt.wantReason) {
				t.Errorf("reason %q does not contain %q", st.Reason, tt.wantReason)
			}
			if st.Status == DiskEncryptionMeasured && (len(faults) > 0 || len(st.Banks) == 0) {
				t.Errorf("measured with faults %v or no replayed bank %v", faults, st.Banks)
			}
		})
	}
}

func TestAppraiseReadsDiskEncryptionFromTheQuotedPCR15(t *testing.T) {
	n := newNode(t, "ecc-p256", 4, 2)
	l := newCryptsetupLog(evidence.BankSHA256, evidence.BankSHA384)
	l.volumeKey("root", rootUUID, bytes.Repeat([]byte{1}, 64), true)
	for bank, v := range l.pcr15 {
		n.pcrs[bank][15] = v
	}
	in := n.input()
	in.Request.PCRs = append(in.Request.PCRs, 15)
	facts := &evidence.HostInfo{Version: evidence.Version, HostName: "edge-1", DiskEncryption: rootClaim}
	in.Response = buildQuoteRaw(t, n.ak, evidence.QualifyingData(in.Request.Nonce, facts), n.pcrs)
	in.Response.EventLog = n.rsp.EventLog
	in.Response.IMALog = n.rsp.IMALog
	in.Response.IMAEntries = n.rsp.IMAEntries
	in.Response.HostInfo = facts
	in.Response.MeasureLog = l.buf.Bytes()

	v := Appraise(in, testNow)
	if !v.Trusted() || v.DiskEncryption.Status != DiskEncryptionMeasured {
		t.Fatalf("faults %v, disk encryption %+v", v.Faults, v.DiskEncryption)
	}

	t.Run("host facts changed after the quote fail the quote", func(t *testing.T) {
		lied := *facts
		lied.HostName = "another-host"
		in := in
		rsp := *in.Response
		rsp.HostInfo = &lied
		in.Response = &rsp
		v := Appraise(in, testNow)
		if got := faultNames(v.Faults); !slices.Equal(got, []string{FaultQuoteNonce}) {
			t.Fatalf("faults = %v, want only %s", v.Faults, FaultQuoteNonce)
		}
		if v.DiskEncryption.Status == DiskEncryptionMeasured {
			t.Fatal("disk encryption measured from facts the quote does not bind")
		}
	})
}

// buildQuoteRaw is buildQuote with the exact qualifying data given.
func buildQuoteRaw(t testing.TB, ak *testAK, qualifying []byte, pcrs PCRs) *evidence.QuoteResponse {
	t.Helper()
	return buildQuote(t, ak, nil, pcrs, quoteOptions{resetCount: 7, extraData: qualifying})
}

func FuzzParseMeasureLog(f *testing.F) {
	l := newCryptsetupLog(evidence.BankSHA256, evidence.BankSHA1)
	l.plain(11, "phase", "enter-initrd")
	l.volumeKey("root", rootUUID, []byte("k"), true)
	f.Add(l.buf.Bytes())
	f.Add([]byte("\x1e{}\n\x1e{\"pcr\":15,\"digests\":[{\"hashAlg\":\"sha512\",\"digest\":\"00\"}]}\n"))
	f.Add([]byte("\x1e{\"pcr\":15,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"zz\"}]}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		records, err := ParseMeasureLog(raw)
		if err != nil {
			return
		}
		for i, r := range records {
			if r.PCR < -1 || r.PCR > 23 {
				t.Fatalf("record %d: pcr %d", i, r.PCR)
			}
			for bank, d := range r.Digests {
				h, ok := bankHash(bank)
				if !ok || len(d) != h.Size() {
					t.Fatalf("record %d: %s digest of %d bytes", i, bank, len(d))
				}
			}
		}
		// Whatever decodes appraises without panicking, and a log no
		// quoted PCR 15 matches never reads measured.
		st, faults := AppraiseDiskEncryption(raw, rootClaim, PCRs{evidence.BankSHA256: {15: bytes.Repeat([]byte{0xab}, 32)}})
		if st.Status == DiskEncryptionMeasured && len(faults) > 0 {
			t.Fatalf("measured with faults %v", faults)
		}
		_ = fmt.Sprint(st)
	})
}

func TestParseMeasureLogRefusesARecordWithTrailingData(t *testing.T) {
	for _, tail := range []string{" {}", "}", "]"} {
		record := `{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"` + strings.Repeat("ab", 32) + `"}]}`
		if _, err := ParseMeasureLog([]byte("\x1e" + record + "\n")); err != nil {
			t.Fatalf("the record alone: %v", err)
		}
		raw := []byte("\x1e" + record + tail + "\n")
		if _, err := ParseMeasureLog(raw); err == nil || !strings.Contains(err.Error(), "trailing data") {
			t.Errorf("a record followed by %q: err = %v, want trailing data", tail, err)
		}
	}
}
