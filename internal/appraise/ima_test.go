package appraise

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/evidence"
)

// realIMALine is an ima-ng line as a Linux kernel wrote it; its template
// hash pins our template encoding to the kernel's.
const realIMALine = "10 bb24b135e1c911c97aad8f1c1863efc08cd44c11 ima-ng sha256:d41dd4adacf5a35df426461dd8a92d7bdd5ba29bb61a1c3531bec0ada386f8dd /usr/lib/x86_64-linux-gnu/libresolv.so.2"

func TestTemplateHashMatchesTheKernel(t *testing.T) {
	e, err := ParseIMALine(realIMALine)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(e.templateData())
	if !bytes.Equal(sum[:], e.TemplateHash) {
		t.Fatalf("template hash %x, the kernel wrote %x", sum, e.TemplateHash)
	}
}

func TestParseIMALine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want IMAEntry
	}{
		{"an ima-ng line is read field by field", realIMALine, IMAEntry{PCR: 10, Template: "ima-ng", FileHashAlg: "sha256",
			Path: "/usr/lib/x86_64-linux-gnu/libresolv.so.2"}},
		{"a path with spaces is kept whole", "10 " + strings.Repeat("ab", 20) + " ima-ng sha1:" + strings.Repeat("cd", 20) + " /opt/my app/run me",
			IMAEntry{PCR: 10, Template: "ima-ng", FileHashAlg: "sha1", Path: "/opt/my app/run me"}},
		{"a legacy ima line has a sha1 file hash", "10 " + strings.Repeat("ab", 20) + " ima " + strings.Repeat("cd", 20) + " boot_aggregate",
			IMAEntry{PCR: 10, Template: "ima", FileHashAlg: "sha1", Path: "boot_aggregate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseIMALine(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if e.PCR != tt.want.PCR || e.Template != tt.want.Template || e.FileHashAlg != tt.want.FileHashAlg || e.Path != tt.want.Path ||
				len(e.TemplateHash) != 20 || len(e.FileHash) == 0 {
				t.Fatalf("entry = %+v, want %+v", e, tt.want)
			}
		})
	}
}

func TestParseIMALineRefusesMalformedLines(t *testing.T) {
	th := strings.Repeat("ab", 20)
	fh := "sha256:" + strings.Repeat("cd", 32)
	for _, tt := range []struct{ name, line string }{
		{"an empty line", ""},
		{"a line without a path", "10 " + th + " ima-ng " + fh},
		{"a line with an empty path", "10 " + th + " ima-ng " + fh + " "},
		{"a PCR that is not a number", "ten " + th + " ima-ng " + fh + " /bin/sh"},
		{"a PCR out of range", "24 " + th + " ima-ng " + fh + " /bin/sh"},
		{"a PCR with a sign", "+10 " + th + " ima-ng " + fh + " /bin/sh"},
		{"a template hash that is not hex", "10 " + strings.Repeat("zz", 20) + " ima-ng " + fh + " /bin/sh"},
		{"a template hash of odd size", "10 abcd ima-ng " + fh + " /bin/sh"},
		{"an unknown template", "10 " + th + " ima-sig " + fh + " /bin/sh"},
		{"a file hash without algorithm", "10 " + th + " ima-ng " + strings.Repeat("cd", 32) + " /bin/sh"},
		{"an unknown file hash algorithm", "10 " + th + " ima-ng md5:" + strings.Repeat("cd", 16) + " /bin/sh"},
		{"a file hash of the wrong size", "10 " + th + " ima-ng sha256:" + strings.Repeat("cd", 20) + " /bin/sh"},
		{"a legacy line with a long path", "10 " + th + " ima " + strings.Repeat("cd", 20) + " /" + strings.Repeat("a", 300)},
	} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := ParseIMALine(tt.line)
			var le *IMALineError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want an *IMALineError", err)
			}
		})
	}
}

func TestReplayIMAReachesTheKernelsPCR10(t *testing.T) {
	log := imaLog(20)
	for _, bank := range []string{evidence.BankSHA256, evidence.BankSHA384} {
		t.Run("the "+bank+" bank replays", func(t *testing.T) {
			res, faults := ReplayIMA(log, nil, bank)
			if len(faults) > 0 {
				t.Fatalf("faults: %v", faults)
			}
			want := extendIMA(t, log, bank)
			if !bytes.Equal(res.Value, want) {
				t.Fatalf("PCR 10 = %x, want %x", res.Value, want)
			}
			covered, faults := CompareIMA(res, PCRs{bank: {10: want}})
			if len(faults) > 0 || covered != 21 {
				t.Fatalf("covered %d faults %v, want all 21 entries", covered, faults)
			}
			if res.Entries[0].Path != "boot_aggregate" {
				t.Errorf("first entry %+v", res.Entries[0])
			}
		})
	}
}

func TestReplayIMALegacyTemplate(t *testing.T) {
	digest := bytes.Repeat([]byte{0x11}, 20)
	data := append(bytes.Clone(digest), make([]byte, imaLegacyNameSize)...)
	copy(data[20:], "boot_aggregate")
	th := sha1.Sum(data)
	line := "10 " + hex.EncodeToString(th[:]) + " ima " + hex.EncodeToString(digest) + " boot_aggregate"
	res, faults := ReplayIMA(line, nil, evidence.BankSHA1)
	if len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	want := sha1.Sum(append(make([]byte, 20), th[:]...))
	if !bytes.Equal(res.Value, want[:]) {
		t.Fatalf("PCR 10 = %x, want %x", res.Value, want)
	}
}

func TestReplayIMAViolationsExtendAllOnes(t *testing.T) {
	violation := "10 " + strings.Repeat("00", 20) + " ima-ng sha256:" + strings.Repeat("00", 32) + " /var/log/app.log"
	res, faults := ReplayIMA(violation, nil, evidence.BankSHA256)
	if len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	d := sha256Sum(append(make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)...))
	if !bytes.Equal(res.Value, d) || !res.Entries[0].Violation() {
		t.Fatalf("PCR 10 = %x, want %x", res.Value, d)
	}
}

func TestReplayIMANamesTamperedFiles(t *testing.T) {
	good := imaLog(3)
	quoted := PCRs{evidence.BankSHA256: {10: extendIMA(t, good, evidence.BankSHA256)}}
	tests := []struct {
		name     string
		log      string
		file     string
		unparsed bool
	}{
		{"a renamed file", strings.Replace(good, "lib1.so.1", "lib1.so.2", 1), "/usr/lib/x86_64-linux-gnu/lib1.so.2", false},
		{"a changed file hash", strings.Replace(good, "sha256:"+hex.EncodeToString(sha256Sum([]byte{2, 0})), "sha256:"+strings.Repeat("00", 32), 1),
			"/usr/lib/x86_64-linux-gnu/lib2.so.1", false},
		{"an unparsable line", strings.Replace(good, "ima-ng", "ima-xx", 1), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a fault", func(t *testing.T) {
			res, faults := ReplayIMA(tt.log, nil, evidence.BankSHA256)
			if len(faults) != 1 || faults[0].Name != FaultIMAUnparsable || faults[0].File != tt.file {
				t.Fatalf("faults = %+v, want one %s naming %q", faults, FaultIMAUnparsable, tt.file)
			}
			if _, faults := CompareIMA(res, quoted); !slices.Equal(faultNames(faults), []string{FaultIMAReplay}) {
				t.Fatalf("compare faults = %v, want %s", faults, FaultIMAReplay)
			}
		})
	}
}

func TestCompareIMA(t *testing.T) {
	log := imaLog(5)
	res, faults := ReplayIMA(log, nil, evidence.BankSHA256)
	if len(faults) > 0 {
		t.Fatal(faults)
	}
	lines := strings.SplitAfter(log, "\n")
	atQuote := extendIMA(t, strings.Join(lines[:4], ""), evidence.BankSHA256)
	tests := []struct {
		name    string
		pcrs    PCRs
		covered int
		fault   bool
	}{
		{"entries appended after the quote are not covered", PCRs{evidence.BankSHA256: {10: atQuote}}, 4, false},
		{"a quoted value the log never reaches is a fault", PCRs{evidence.BankSHA256: {10: bytes.Repeat([]byte{3}, 32)}}, 0, true},
		{"a quote without PCR 10 is a fault", PCRs{evidence.BankSHA256: {7: atQuote}}, 0, true},
		{"a quote of another bank is a fault", PCRs{evidence.BankSHA384: {10: atQuote}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covered, faults := CompareIMA(res, tt.pcrs)
			if covered != tt.covered || (len(faults) > 0) != tt.fault {
				t.Fatalf("covered %d faults %v, want %d and fault %t", covered, faults, tt.covered, tt.fault)
			}
			if tt.fault && faults[0].Name != FaultIMAReplay {
				t.Fatalf("fault %v, want %s", faults[0], FaultIMAReplay)
			}
		})
	}
}

func TestReplayIMAContinuesFromAStartValue(t *testing.T) {
	log := imaLog(5)
	lines := strings.SplitAfter(log, "\n")
	head, tail := strings.Join(lines[:3], ""), strings.Join(lines[3:], "")
	start, _ := ReplayIMA(head, nil, evidence.BankSHA256)
	res, faults := ReplayIMA(tail, start.Value, evidence.BankSHA256)
	if len(faults) > 0 {
		t.Fatal(faults)
	}
	if want := extendIMA(t, log, evidence.BankSHA256); !bytes.Equal(res.Value, want) {
		t.Fatalf("PCR 10 = %x, want %x", res.Value, want)
	}
	if _, faults := ReplayIMA(tail, make([]byte, 20), evidence.BankSHA256); len(faults) != 1 {
		t.Fatalf("a start value of the wrong size: faults %v", faults)
	}
}

// imaSigLine builds an ima-sig line the way the kernel prints it, encoding
// the template data independently of the package: d-ng, n-ng and sig fields,
// each with a little-endian u32 length.
func imaSigLine(path string, fileSHA256, sig []byte) (string, []byte) {
	field := func(b []byte) []byte {
		out := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	data := field(append([]byte("sha256:\x00"), fileSHA256...))
	data = append(data, field(append([]byte(path), 0))...)
	data = append(data, field(sig)...)
	th := sha1.Sum(data)
	return fmt.Sprintf("10 %x ima-sig sha256:%x %s %x", th, fileSHA256, path, sig), data
}

func TestIMASigLinesReplay(t *testing.T) {
	file := sha256.Sum256([]byte("x"))
	unsigned, _ := imaSigLine("/usr/bin/a b", file[:], nil)
	signed, _ := imaSigLine("/usr/bin/c", file[:], []byte{0x03, 0x02, 0x01})
	if !strings.HasSuffix(unsigned, " ") {
		t.Fatalf("an unsigned ima-sig line ends in a space: %q", unsigned)
	}
	for _, line := range []string{unsigned, signed} {
		e, err := ParseIMALine(line)
		if err != nil {
			t.Fatalf("ParseIMALine(%q): %v", line, err)
		}
		if e.Template != TemplateIMASig || e.FileHashAlg != "sha256" {
			t.Fatalf("entry %+v", e)
		}
	}
	if e, _ := ParseIMALine(unsigned); e.Path != "/usr/bin/a b" || len(e.Signature) != 0 {
		t.Fatalf("unsigned entry path %q signature %x", e.Path, e.Signature)
	}
	res, faults := ReplayIMA(unsigned+"\n"+signed+"\n", nil, evidence.BankSHA256)
	if len(faults) != 0 || len(res.Entries) != 2 {
		t.Fatalf("replay faults %v, entries %d", faults, len(res.Entries))
	}
}

// TestIMAReplayAcceptsTheKernelsPaddedSHA1Fallback: a kernel without the
// bank's hash algorithm extends that bank with the SHA-1 template hash padded
// with zeros; the quoted value is then explained by that replay, and by
// nothing else.
func TestIMAReplayAcceptsTheKernelsPaddedSHA1Fallback(t *testing.T) {
	file := sha256.Sum256([]byte("y"))
	line, data := imaSigLine("/usr/bin/d", file[:], nil)
	th := sha1.Sum(data)
	ext := make([]byte, sha512.Size384)
	copy(ext, th[:])
	h := sha512.New384()
	h.Write(make([]byte, sha512.Size384))
	h.Write(ext)
	pcr10 := h.Sum(nil)
	res, faults := ReplayIMA(line+"\n", nil, evidence.BankSHA384)
	if len(faults) != 0 {
		t.Fatal(faults)
	}
	if covered, faults := CompareIMA(res, PCRs{evidence.BankSHA384: {10: pcr10}}); len(faults) != 0 || covered != 1 {
		t.Fatalf("padded SHA-1 PCR 10 refused: covered %d, %v", covered, faults)
	}
	pcr10[0] ^= 1
	if _, faults := CompareIMA(res, PCRs{evidence.BankSHA384: {10: pcr10}}); len(faults) == 0 {
		t.Fatal("a wrong PCR 10 was accepted")
	}
}

// kernelField encodes one template field as the kernel hashes it, apart
// from the package's encoder: a little-endian u32 length, then the bytes.
func kernelField(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// imaModsigLine builds an ima-modsig line (d-ng|n-ng|sig|d-modsig|modsig);
// the d-modsig and modsig fields are empty without a modsig.
func imaModsigLine(path string, fileSHA256, sig, modsigSHA256, modsig []byte) string {
	data := kernelField(append([]byte("sha256:\x00"), fileSHA256...))
	data = append(data, kernelField(append([]byte(path), 0))...)
	data = append(data, kernelField(sig)...)
	dModsig := ""
	if modsigSHA256 != nil {
		data = append(data, kernelField(append([]byte("sha256:\x00"), modsigSHA256...))...)
		dModsig = fmt.Sprintf("sha256:%x", modsigSHA256)
	} else {
		data = append(data, kernelField(nil)...)
	}
	data = append(data, kernelField(modsig)...)
	th := sha1.Sum(data)
	return fmt.Sprintf("10 %x ima-modsig sha256:%x %s %x %s %x", th, fileSHA256, path, sig, dModsig, modsig)
}

// imaBufLine builds an ima-buf line (d-ng|n-ng|buf): the buffer in hex.
func imaBufLine(name string, buf []byte) string {
	d := sha256.Sum256(buf)
	data := kernelField(append([]byte("sha256:\x00"), d[:]...))
	data = append(data, kernelField(append([]byte(name), 0))...)
	data = append(data, kernelField(buf)...)
	th := sha1.Sum(data)
	return fmt.Sprintf("10 %x ima-buf sha256:%x %s %x", th, d, name, buf)
}

func TestIMATemplatesParseAndReplay(t *testing.T) {
	file := sha256.Sum256([]byte("module"))
	stripped := sha256.Sum256([]byte("module without its signature"))
	signed, _ := imaSigLine("/usr/bin/signed one", file[:], []byte{0x03, 0x02, 0x04, 1, 2, 3, 4, 0, 1, 0xaa})
	for _, tt := range []struct {
		name  string
		line  string
		check func(IMAEntry) bool
	}{
		{"an ima-sig line keeps its signature", signed, func(e IMAEntry) bool {
			return e.Path == "/usr/bin/signed one" && len(e.Signature) == 10
		}},
		{"an ima-modsig line without a modsig has empty fields", imaModsigLine("/usr/lib/modules/a b.ko", file[:], nil, nil, nil), func(e IMAEntry) bool {
			return e.Path == "/usr/lib/modules/a b.ko" && len(e.Modsig) == 0 && e.ModsigHashAlg == "" && len(e.Signature) == 0
		}},
		{"an ima-modsig line with a modsig keeps its digest and signature", imaModsigLine("/usr/lib/modules/c.ko", file[:], []byte{3, 2}, stripped[:], []byte{0x30, 0x82, 1}), func(e IMAEntry) bool {
			return e.Path == "/usr/lib/modules/c.ko" && bytes.Equal(e.ModsigHash, stripped[:]) && e.ModsigHashAlg == "sha256" &&
				bytes.Equal(e.Modsig, []byte{0x30, 0x82, 1}) && bytes.Equal(e.Signature, []byte{3, 2})
		}},
		{"an ima-buf line keeps its name and buffer", imaBufLine("kexec-cmdline", []byte("root=/dev/vda1 ro ima_policy=tcb")), func(e IMAEntry) bool {
			return e.Path == "kexec-cmdline" && string(e.Buffer) == "root=/dev/vda1 ro ima_policy=tcb"
		}},
		{"an ima-buf line of a keyring keeps the key", imaBufLine(".ima", []byte{0x30, 0x81, 0x89}), func(e IMAEntry) bool {
			return e.Path == ".ima" && bytes.Equal(e.Buffer, []byte{0x30, 0x81, 0x89})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseIMALine(tt.line)
			if err != nil {
				t.Fatalf("ParseIMALine(%q): %v", tt.line, err)
			}
			if !tt.check(e) {
				t.Fatalf("entry %+v", e)
			}
			if _, faults := ReplayIMA(tt.line+"\n", nil, evidence.BankSHA256); len(faults) != 0 {
				t.Fatalf("replay faults %v", faults)
			}
		})
	}
}

// A forged line keeps its template hash column and changes a field the
// hash covers: the replay names it, whatever the template.
func TestAForgedLineFailsTheReplayForEveryTemplate(t *testing.T) {
	file := sha256.Sum256([]byte("f"))
	sigLine, _ := imaSigLine("/usr/bin/f", file[:], []byte{3, 2, 4, 0, 0, 0, 1, 0, 1, 0xaa})
	for _, tt := range []struct {
		name, line, from, to string
	}{
		{"an ima-ng line with another digest", imaLine("/usr/bin/f", []byte("f")), "ima-ng sha256:" + hex.EncodeToString(file[:1]), "ima-ng sha256:00"},
		{"an ima-sig line with another signature", sigLine, "010001aa", "010001ab"},
		{"an ima-modsig line with another modsig", imaModsigLine("/m.ko", file[:], nil, file[:], []byte{1, 2, 3}), " 010203", " 010204"},
		{"an ima-modsig line whose modsig was dropped", imaModsigLine("/m.ko", file[:], nil, file[:], []byte{1, 2, 3}), " sha256:" + hex.EncodeToString(file[:]) + " 010203", "  "},
		{"an ima-buf line with another buffer", imaBufLine("kexec-cmdline", []byte("ima_policy=tcb")), hex.EncodeToString([]byte("tcb")), hex.EncodeToString([]byte("tca"))},
	} {
		t.Run(tt.name+" is a fault", func(t *testing.T) {
			if _, faults := ReplayIMA(tt.line, nil, evidence.BankSHA256); len(faults) != 0 {
				t.Fatalf("the genuine line fails: %v", faults)
			}
			forged := strings.Replace(tt.line, tt.from, tt.to, 1)
			if forged == tt.line {
				t.Fatalf("%q is not in %q", tt.from, tt.line)
			}
			_, faults := ReplayIMA(forged, nil, evidence.BankSHA256)
			if len(faults) != 1 || faults[0].Name != FaultIMAUnparsable {
				t.Fatalf("faults of the forged line %q = %+v, want one %s", forged, faults, FaultIMAUnparsable)
			}
		})
	}
}

func TestParseIMALineRefusesMalformedTemplateFields(t *testing.T) {
	th := strings.Repeat("ab", 20)
	fh := "sha256:" + strings.Repeat("cd", 32)
	for _, tt := range []struct{ name, line string }{
		{"an ima-buf line without a buffer field", "10 " + th + " ima-buf " + fh + " kexec-cmdline"},
		{"an ima-buf buffer that is not hex", "10 " + th + " ima-buf " + fh + " kexec-cmdline zz"},
		{"an ima-modsig line with too few fields", "10 " + th + " ima-modsig " + fh + " /m.ko  "},
		{"an ima-modsig digest without a modsig", "10 " + th + " ima-modsig " + fh + " /m.ko  " + fh + " "},
		{"an ima-modsig modsig without a digest", "10 " + th + " ima-modsig " + fh + " /m.ko   0102"},
		{"an ima-modsig digest of an unknown algorithm", "10 " + th + " ima-modsig " + fh + " /m.ko  md5:00 0102"},
	} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if e, err := ParseIMALine(tt.line); err == nil {
				t.Fatalf("ParseIMALine(%q) = %+v, want an error", tt.line, e)
			}
		})
	}
}

// The entries of a replay share a few blocks of memory: each hash is
// clipped, so that a caller appending to one cannot write into the next.
func TestReplayedEntriesDoNotShareTheirHashes(t *testing.T) {
	res, faults := ReplayIMA(imaLog(3), nil, evidence.BankSHA256)
	if len(faults) != 0 || len(res.Entries) != 4 {
		t.Fatalf("%d entries, faults %v", len(res.Entries), faults)
	}
	want := slices.Clone(res.Entries[1].TemplateHash)
	wantFile := slices.Clone(res.Entries[0].FileHash)
	_ = append(res.Entries[0].TemplateHash, 0xee)
	_ = append(res.Entries[0].FileHash, 0xee)
	if !bytes.Equal(res.Entries[0].FileHash, wantFile) || !bytes.Equal(res.Entries[1].TemplateHash, want) {
		t.Fatal("appending to one entry's hash changed another hash")
	}
}

// Replaying a log costs a few allocations, not some per line: the hashes
// and PCR values are cut from blocks, the strings are slices of the log.
func TestReplayIMAAllocatesPerBlockNotPerLine(t *testing.T) {
	log := imaLog(799)
	for _, bank := range []string{evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384} {
		allocs := testing.AllocsPerRun(5, func() {
			if _, faults := ReplayIMA(log, nil, bank); len(faults) != 0 {
				t.Fatal(faults)
			}
		})
		// 800 lines: the entry and value slices, 11 blocks of hashes
		// and 14 of PCR values at most, the hash state and its scratch.
		if allocs > 40 {
			t.Errorf("the %s replay of 800 lines takes %.0f allocations, want at most 40", bank, allocs)
		}
	}
}

// hexError and unhex read hex as encoding/hex does, and hexError fails
// with its errors.
func FuzzDecodeHex(f *testing.F) {
	for _, s := range []string{"", "0", "00", "0g", "g0", "aBcDeF", "abc", "abz", strings.Repeat("ff", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := hex.DecodeString(s)
		if err := hexError(s); fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("hexError(%q) = %v, encoding/hex says %v", s, err, wantErr)
		}
		got := make([]byte, len(s)/2)
		if ok := unhex(got, s[:len(got)*2]); ok != (hexError(s[:len(got)*2]) == nil) {
			t.Fatalf("unhex(%q) = %t, hexError says %v", s, ok, hexError(s[:len(got)*2]))
		}
		if wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("unhex(%q) = %x, want %x", s, got, want)
		}
	})
}

// BenchmarkReplayIMA replays an 800-line IMA log in the bank the
// appraisal prefers (SHA-256) and in SHA-384, which it preferred before.
func BenchmarkReplayIMA(b *testing.B) {
	log := imaLog(799)
	for _, bank := range []string{evidence.BankSHA256, evidence.BankSHA384} {
		b.Run("bank="+bank, func(b *testing.B) {
			b.ReportAllocs()
			cpu := benchfloor.Start()
			for b.Loop() {
				if _, faults := ReplayIMA(log, nil, bank); len(faults) != 0 {
					b.Fatal(faults)
				}
			}
			cpu.Report(b)
			benchfloor.ReportRatio(b)
		})
	}
}

// BenchmarkReplayIMAHashesAlone is the least an 800-line replay in SHA-256
// costs: per line, the SHA-256 of its template data and the extend of PCR
// 10, nothing parsed, checked or kept. Its ratio to the floor bounds how
// near a first report, which replays the whole log, can come to it.
func BenchmarkReplayIMAHashesAlone(b *testing.B) {
	res, faults := ReplayIMA(imaLog(799), nil, evidence.BankSHA256)
	if len(faults) != 0 {
		b.Fatal(faults)
	}
	datas := make([][]byte, len(res.Entries))
	for i, e := range res.Entries {
		datas[i] = e.templateData()
	}
	d := sha256.New()
	var value, extend [sha256.Size]byte
	cpu := benchfloor.Start()
	for b.Loop() {
		clear(value[:])
		for _, data := range datas {
			d.Reset()
			d.Write(data)
			d.Sum(extend[:0])
			d.Reset()
			d.Write(value[:])
			d.Write(extend[:])
			d.Sum(value[:0])
		}
	}
	if !bytes.Equal(value[:], res.Value) {
		b.Fatalf("PCR 10 %x, the replay's %x", value, res.Value)
	}
	cpu.Report(b)
	benchfloor.ReportRatio(b)
	b.ReportMetric(float64(len(datas)), "lines")
}
