package appraise

import (
	"bytes"
	"crypto"
	"crypto/sha1" //nolint:gosec // IMA's legacy template hash is SHA-1 by definition.
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	_ "crypto/sha256" // registers SHA-256 and SHA-384 for crypto.Hash.New
	_ "crypto/sha512"

	"trustedcompute.io/tc/internal/evidence"
)

// imaPCR is the PCR IMA extends unless its policy says otherwise.
const imaPCR = 10

// IMA template names.
const (
	TemplateIMANG     = "ima-ng"
	TemplateIMASig    = "ima-sig"
	TemplateIMAModsig = "ima-modsig"
	TemplateIMABuf    = "ima-buf"
	TemplateIMA       = "ima"
)

// imaLegacyNameSize is the padded size of the file name in the legacy "ima"
// template (IMA_EVENT_NAME_LEN_MAX + 1).
const imaLegacyNameSize = 256

// IMAEntry is one line of the IMA ascii runtime measurement log.
type IMAEntry struct {
	PCR int `json:"pcr"`
	// TemplateHash is the column of the log: the hash of the template data.
	TemplateHash []byte `json:"template_hash"`
	Template     string `json:"template"`
	// FileHashAlg is "sha1", "sha256", ... ("sha1" for the legacy template).
	FileHashAlg string `json:"file_hash_alg"`
	FileHash    []byte `json:"file_hash"`
	Path        string `json:"path"`
	// Signature is the ima-sig template's file signature (empty for an
	// unsigned file); nil for the other templates.
	Signature []byte `json:"signature,omitempty"`
	// ModsigHashAlg and ModsigHash are the ima-modsig template's digest of
	// the file without its appended signature, and Modsig that signature
	// (a PKCS#7 message); all empty for a file without one.
	ModsigHashAlg string `json:"modsig_hash_alg,omitempty"`
	ModsigHash    []byte `json:"modsig_hash,omitempty"`
	Modsig        []byte `json:"modsig,omitempty"`
	// Buffer is the ima-buf template's measured buffer (Path is then its
	// name, e.g. "kexec-cmdline" or a keyring's name).
	Buffer []byte `json:"buffer,omitempty"`
}

// Violation reports whether the entry is an IMA violation (a file measured
// while open for writing, or the reverse): its template hash is all zeros and
// the kernel extends the PCR with all ones.
func (e IMAEntry) Violation() bool {
	for _, b := range e.TemplateHash {
		if b != 0 {
			return false
		}
	}
	return true
}

// IMALineError says why an IMA log line does not decode.
type IMALineError struct {
	Line   string
	Reason string
}

func (e *IMALineError) Error() string {
	return fmt.Sprintf("ima line %q: %s", e.Line, e.Reason)
}

// IMAHashAlg returns the hash of an IMA digest algorithm name ("sha1",
// "sha256", "sha384", "sha512").
func IMAHashAlg(name string) (crypto.Hash, bool) {
	switch name {
	case "sha1":
		return crypto.SHA1, true
	case "sha256":
		return crypto.SHA256, true
	case "sha384":
		return crypto.SHA384, true
	case "sha512":
		return crypto.SHA512, true
	}
	return 0, false
}

// ParseIMALine decodes one line of ascii_runtime_measurements in the ima-ng
// or legacy ima template: "<pcr> <template-hash> <template> <file-hash> <path>".
// The path is the rest of the line and may hold spaces.
func ParseIMALine(line string) (IMAEntry, error) {
	var e IMAEntry
	if err := e.parseLine(line, nil); err != nil {
		return IMAEntry{}, err
	}
	return e, nil
}

// parseLine is ParseIMALine into e, which must be zero, and is left
// partly filled when the line does not decode. The template hash and the
// file hash are cut from hashes (ReplayIMA decodes a whole log into a few
// blocks); with a nil slab they take one allocation. The strings are
// slices of line.
func (e *IMAEntry) parseLine(line string, hashes *slab[byte]) error {
	fail := func(format string, args ...any) error {
		return &IMALineError{Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	// The fields as strings.SplitN(line, " ", 5) cuts them, without
	// allocating.
	var fields [5]string
	n, rest := 0, line
	for ; n < 4; n++ {
		f, r, ok := strings.Cut(rest, " ")
		if !ok {
			break
		}
		fields[n], rest = f, r
	}
	fields[n] = rest
	if n++; n != 5 {
		return fail("has %d of 5 fields", n)
	}
	pcr, err := strconv.Atoi(fields[0])
	if err != nil || pcr < 0 || pcr > maxPCRIndex || fields[0] != strconv.Itoa(pcr) {
		return fail("pcr %q is not an index from 0 to %d", fields[0], maxPCRIndex)
	}
	e.PCR, e.Template, e.Path = pcr, fields[2], fields[4]
	// The template hash is decoded here, kept until the file hash is
	// checked too.
	column := fields[1]
	var templateHash [maxDigestSize]byte
	switch len(column) {
	case 2 * crypto.SHA1.Size(), 2 * crypto.SHA256.Size(), 2 * crypto.SHA384.Size(), 2 * crypto.SHA512.Size():
		if !unhex(templateHash[:len(column)/2], column) {
			return fail("template hash: %v", hexError(column))
		}
	default:
		if err := hexError(column); err != nil {
			return fail("template hash: %v", err)
		}
		return fail("template hash has %d bytes", len(column)/2)
	}
	if e.Path == "" {
		return fail("has no path")
	}
	if strings.IndexByte(e.Path, 0) >= 0 || strings.IndexByte(e.Path, '\n') >= 0 {
		return fail("path holds a NUL or newline")
	}
	var digest string
	switch e.Template {
	case TemplateIMASig, TemplateIMAModsig, TemplateIMABuf:
		// The last fields are hex (signature, modsig digest, modsig,
		// buffer), each empty when the kernel recorded nothing (the
		// line then ends in a space); the path is what is before them.
		var last []string
		switch e.Template {
		case TemplateIMASig:
			last = []string{"signature"}
		case TemplateIMAModsig:
			last = []string{"signature", "modsig digest", "modsig"}
		case TemplateIMABuf:
			last = []string{"buffer"}
		}
		tail := make([]string, len(last))
		for i := len(last) - 1; i >= 0; i-- {
			j := strings.LastIndexByte(e.Path, ' ')
			if j < 0 {
				return fail("%s line has no %s field", e.Template, last[i])
			}
			e.Path, tail[i] = e.Path[:j], e.Path[j+1:]
		}
		if e.Path == "" {
			return fail("has no path")
		}
		if err := e.decodeTail(tail); err != nil {
			return fail("%v", err)
		}
		fallthrough
	case TemplateIMANG:
		alg, d, ok := strings.Cut(fields[3], ":")
		if !ok {
			return fail("file hash %q has no algorithm", fields[3])
		}
		e.FileHashAlg, digest = alg, d
	case TemplateIMA:
		e.FileHashAlg, digest = "sha1", fields[3]
		if len(e.Path) >= imaLegacyNameSize {
			return fail("path of %d bytes is too long for the ima template", len(e.Path))
		}
	default:
		return fail("template %q is not supported", e.Template)
	}
	h, ok := IMAHashAlg(e.FileHashAlg)
	if !ok {
		return fail("file hash algorithm %q is not supported", e.FileHashAlg)
	}
	if len(digest) != 2*h.Size() {
		if err := hexError(digest); err != nil {
			return fail("file hash: %v", err)
		}
		return fail("%s file hash has %d bytes", e.FileHashAlg, len(digest)/2)
	}
	// One slice holds the template hash and the file hash.
	both := hashes.take(len(column)/2 + h.Size())
	e.TemplateHash = both[: len(column)/2 : len(column)/2]
	e.FileHash = both[len(column)/2:]
	copy(e.TemplateHash, templateHash[:])
	if !unhex(e.FileHash, digest) {
		return fail("file hash: %v", hexError(digest))
	}
	return nil
}

// hexValue maps an ASCII byte to its value as a hex digit, or to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = byte(10 + i)
	}
	return t
}()

// hexError returns nil when s is hex of whole bytes (as encoding/hex reads
// it, in either case), and encoding/hex's error for s otherwise. It
// allocates only for the error; a line's hex is decoded by unhex, and
// hexError says why it failed.
func hexError(s string) error {
	ok := len(s)%2 == 0
	for i := 0; ok && i < len(s); i++ {
		ok = hexValue[s[i]] != 0xff
	}
	if ok {
		return nil
	}
	if _, err := hex.DecodeString(s); err != nil {
		return err
	}
	return hex.ErrLength // not reached: DecodeString fails where the scan did
}

// unhex decodes s into dst of len(s)/2 bytes, in one pass, and reports
// whether s was all hex digits; dst holds garbage when it was not.
func unhex(dst []byte, s string) bool {
	var bad byte
	for i := range dst {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo
	}
	return bad <= 0xf
}

// decodeTail decodes the hex fields after the path of the ima-sig,
// ima-modsig and ima-buf templates.
func (e *IMAEntry) decodeTail(tail []string) error {
	var err error
	switch e.Template {
	case TemplateIMASig:
		if e.Signature, err = hex.DecodeString(tail[0]); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		if e.Signature == nil {
			e.Signature = []byte{}
		}
	case TemplateIMAModsig:
		if e.Signature, err = hex.DecodeString(tail[0]); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		if e.Signature == nil {
			e.Signature = []byte{}
		}
		if tail[1] != "" {
			alg, d, ok := strings.Cut(tail[1], ":")
			h, known := IMAHashAlg(alg)
			if !ok || !known {
				return fmt.Errorf("modsig digest %q has no supported algorithm", tail[1])
			}
			if e.ModsigHash, err = hex.DecodeString(d); err != nil || len(e.ModsigHash) != h.Size() {
				return fmt.Errorf("modsig digest %q is not a %s digest", tail[1], alg)
			}
			e.ModsigHashAlg = alg
		}
		if e.Modsig, err = hex.DecodeString(tail[2]); err != nil {
			return fmt.Errorf("modsig: %w", err)
		}
		if (e.ModsigHashAlg == "") != (len(e.Modsig) == 0) {
			return errors.New("a modsig digest without a modsig, or the reverse")
		}
	case TemplateIMABuf:
		if e.Buffer, err = hex.DecodeString(tail[0]); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		if e.Buffer == nil {
			e.Buffer = []byte{}
		}
	}
	return nil
}

// templateData returns the bytes the kernel hashes into the template hash
// (ima_calc_field_array_hash): for ima-ng each field with a little-endian
// u32 length prefix, the digest field as "<alg>:\0<digest>" and the name
// with its NUL; for the legacy ima template the bare SHA-1 digest and the
// name NUL-padded to 256 bytes.
func (e IMAEntry) templateData() []byte { return e.appendTemplateData(nil) }

// appendTemplateData appends the template data to b (ReplayIMA reuses one
// buffer for every line).
func (e IMAEntry) appendTemplateData(b []byte) []byte {
	if e.Template == TemplateIMA {
		name := e.Path[:min(len(e.Path), imaLegacyNameSize)]
		b = append(b, e.FileHash...)
		b = append(b, name...)
		return append(b, make([]byte, imaLegacyNameSize-len(name))...)
	}
	nLen := len(e.Path) + 1
	b = slices.Grow(b, 24+len(e.FileHashAlg)+2+len(e.FileHash)+nLen+len(e.Signature)+len(e.ModsigHashAlg)+2+len(e.ModsigHash)+len(e.Modsig)+len(e.Buffer))
	b = appendDigestField(b, e.FileHashAlg, e.FileHash)
	b = binary.LittleEndian.AppendUint32(b, uint32(nLen))
	b = append(b, e.Path...)
	b = append(b, 0)
	switch e.Template {
	case TemplateIMASig:
		b = appendField(b, e.Signature)
	case TemplateIMAModsig:
		b = appendField(b, e.Signature)
		if e.ModsigHashAlg == "" {
			b = binary.LittleEndian.AppendUint32(b, 0)
		} else {
			b = appendDigestField(b, e.ModsigHashAlg, e.ModsigHash)
		}
		b = appendField(b, e.Modsig)
	case TemplateIMABuf:
		b = appendField(b, e.Buffer)
	}
	return b
}

// appendDigestField appends a d-ng field: "<alg>:\0<digest>".
func appendDigestField(b []byte, alg string, digest []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(alg)+2+len(digest)))
	b = append(b, alg...)
	b = append(b, ':', 0)
	return append(b, digest...)
}

// appendField appends a field of raw bytes.
func appendField(b, data []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// IMAResult is the outcome of an IMA log replay for one bank.
type IMAResult struct {
	Bank    string     `json:"bank"`
	Entries []IMAEntry `json:"entries"`
	// Value is the PCR 10 value after the last entry; nil when a line did
	// not decode, so the replay cannot be trusted.
	Value []byte `json:"value"`
	// values holds PCR 10 after the first i entries at valueAt(i), one
	// value after another; CompareIMA looks for the quoted value there,
	// since entries may be appended between the quote and the log read.
	values []byte
}

// valueAt returns PCR 10 after the first i entries.
func (res IMAResult) valueAt(i int) []byte {
	h, _ := bankHash(res.Bank)
	return res.values[i*h.Size() : (i+1)*h.Size() : (i+1)*h.Size()]
}

// lastValue returns the last i at which values, one PCR value of size
// bytes after another, holds value.
func lastValue(values []byte, size int, value []byte) (int, bool) {
	for i := len(values)/max(size, 1) - 1; i >= 0; i-- {
		if bytes.Equal(values[i*size:(i+1)*size], value) {
			return i, true
		}
	}
	return 0, false
}

// ReplayIMA replays IMA log lines for one bank from startValue (nil for a
// log read from its first entry: PCR 10 starts at zero). Every entry's
// template hash column must be the hash of its template data; PCR 10 is
// extended with the template hash computed with the bank's algorithm, and
// with all ones for a violation entry.
func ReplayIMA(lines string, startValue []byte, bank string) (IMAResult, []Fault) {
	res := IMAResult{Bank: bank}
	h, ok := bankHash(bank)
	if !ok {
		return res, []Fault{fault(FaultIMAReplay, "IMA replay in unknown bank %q", bank)}
	}
	size := h.Size()
	if startValue != nil && len(startValue) != size {
		return res, []Fault{fault(FaultIMAReplay, "the %s start value has %d bytes", bank, len(startValue))}
	}
	var faults []Fault
	intact := true
	d := h.New()
	// One line's scratch (extend digest, template data) is reused for the
	// next; the entries' hashes, which the result keeps, are cut from a
	// few blocks, and the PCR values after each line are one slice.
	var extBuf [64]byte
	var data []byte
	var sums templateSums
	// Preallocation is bounded: a log of empty lines must not reserve
	// memory for entries it does not have.
	prealloc := min(strings.Count(lines, "\n")+1, 4096)
	res.Entries = make([]IMAEntry, 0, prealloc)
	res.values = make([]byte, size, (prealloc+1)*size)
	copy(res.values, startValue)
	value := res.values[:size:size]
	hashes := &slab[byte]{block: 4096}
	for n := 1; lines != ""; n++ {
		var line string
		line, lines, _ = strings.Cut(lines, "\n")
		if line == "" {
			continue
		}
		// The entry is decoded in its place (a zero one: a line that
		// does not decode leaves its place zeroed).
		res.Entries = slices.Grow(res.Entries, 1)[:len(res.Entries)+1]
		e := &res.Entries[len(res.Entries)-1]
		if err := e.parseLine(line, hashes); err != nil {
			*e = IMAEntry{}
			res.Entries = res.Entries[:len(res.Entries)-1]
			faults = append(faults, fault(FaultIMAUnparsable, "line %d: %v", n, err))
			intact = false
			continue
		}
		extend := extBuf[:size]
		if e.Violation() {
			for i := range extend {
				extend[i] = 0xff
			}
		} else {
			data = e.appendTemplateData(data[:0])
			if !sums.check(e.TemplateHash, data) {
				f := fault(FaultIMAUnparsable, "line %d: template hash mismatch", n)
				f.File = e.Path
				faults = append(faults, f)
			}
			d.Reset()
			d.Write(data)
			extend = d.Sum(extend[:0])
		}
		if e.PCR == imaPCR {
			d.Reset()
			d.Write(value)
			d.Write(extend)
			res.values = d.Sum(res.values)
		} else {
			res.values = append(res.values, value...)
		}
		value = res.values[len(res.values)-size : len(res.values) : len(res.values)]
	}
	if intact {
		res.Value = value
	}
	return res, faults
}

// paddedValues returns PCR 10 after each entry for a kernel that lacks the
// bank's hash algorithm (e.g. sha384 built as a module): it extends that
// bank with the SHA-1 template hash padded with zeros. CompareIMA computes
// it only when the quoted value is not on the bank's own chain.
func (res IMAResult) paddedValues() []byte {
	h, ok := bankHash(res.Bank)
	if !ok || len(res.values) == 0 {
		return nil
	}
	out := make([]byte, 0, len(res.values))
	padded := res.valueAt(0)
	out = append(out, padded...)
	d := h.New()
	ext := make([]byte, h.Size())
	var data []byte
	for _, e := range res.Entries {
		clear(ext)
		if e.Violation() {
			for i := range ext {
				ext[i] = 0xff
			}
		} else {
			data = e.appendTemplateData(data[:0])
			sum := sha1.Sum(data) //nolint:gosec // the kernel's fallback digest is SHA-1
			copy(ext, sum[:])
		}
		if e.PCR == imaPCR {
			d.Reset()
			d.Write(padded)
			d.Write(ext)
			padded = d.Sum(nil)
		}
		out = append(out, padded...)
	}
	return out
}

// templateSums checks template hash columns, with one digester per
// algorithm kept for the next line.
type templateSums [3]*digester // SHA-256, SHA-384, SHA-512, made when first needed

// check checks a template hash column; its length names the hash (SHA-1 in
// ascii_runtime_measurements, longer in the per-bank variants).
func (s *templateSums) check(column, data []byte) bool {
	var i int
	var h crypto.Hash
	switch len(column) {
	case sha1.Size:
		sum := sha1.Sum(data) //nolint:gosec // see import
		return bytes.Equal(sum[:], column)
	case crypto.SHA256.Size():
		i, h = 0, crypto.SHA256
	case crypto.SHA384.Size():
		i, h = 1, crypto.SHA384
	case crypto.SHA512.Size():
		i, h = 2, crypto.SHA512
	default:
		return false
	}
	if s[i] == nil {
		s[i] = newDigester(h)
	}
	return s[i].is(column, data)
}

// CompareIMA checks a replay against the quoted PCR 10 of its bank. Entries
// appended after the quote are allowed: the quote covers the first covered
// entries, which CompareIMA returns; later checks may use only those.
func CompareIMA(res IMAResult, pcrs PCRs) (covered int, faults []Fault) {
	quoted, ok := pcrs[res.Bank][imaPCR]
	if !ok {
		return 0, []Fault{fault(FaultIMAReplay, "the quote does not cover %s PCR 10", res.Bank)}
	}
	if res.Value == nil {
		return 0, []Fault{pcrFault(FaultIMAReplay, res.Bank, imaPCR, quoted, nil, "the IMA log has unparsable lines and cannot be replayed")}
	}
	size := len(res.Value)
	if i, ok := lastValue(res.values, size, quoted); ok {
		return i, nil
	}
	if res.Bank != evidence.BankSHA1 {
		if i, ok := lastValue(res.paddedValues(), size, quoted); ok {
			return i, nil
		}
	}
	return 0, []Fault{pcrFault(FaultIMAReplay, res.Bank, imaPCR, quoted, res.Value, "the IMA log does not replay to the quoted PCR 10")}
}
