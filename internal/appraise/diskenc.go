package appraise

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"trustedcompute.io/tc/internal/evidence"
)

// Disk encryption is read from systemd's userspace measurement log. With
// tpm2-measure-pcr=yes in /etc/crypttab, systemd-cryptsetup extends PCR 15
// (the "system identity" PCR of the UAPI PCR registry) with
// HMAC(volume key, "cryptsetup:<volume name>:<LUKS UUID>") in every bank it
// measures, and appends a record to /run/log/systemd/tpm2-measure.log: an
// RFC 7464 JSON text sequence (each record is RS, a JSON object, LF) in the
// style of TCG CEL-JSON:
//
//	{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"<hex>"}],
//	 "content_type":"systemd",
//	 "content":{"string":"cryptsetup:root:<uuid>","bootId":"<hex>",
//	            "timestamp":<µs>,"eventType":"volume-key"}}
//
// The same log records systemd's other PCR 15 measurements (machine-id,
// file systems) and its PCR 11 boot phases.
//
// What the verifier can and cannot check: the log's PCR 15 records must
// replay to the quoted PCR 15, so every record there was really extended
// into this TPM during this boot. The digest of a volume key record is an
// HMAC keyed with the secret volume key: nobody but the node can recompute
// it, so the record's name and UUID are the words of whoever extended PCR
// 15, which root on the node may also do. "measured" therefore means: the
// TPM holds a volume key measurement for the volume the agent says the root
// file system rests on, and the log explains PCR 15 exactly. Pinning PCR 15
// in a flavor additionally ties it to the volume key seen at onboarding.

// Disk encryption statuses of a verdict.
const (
	// DiskEncryptionMeasured: the measure log replays to the quoted PCR 15
	// and holds a volume key measurement for every dm-crypt volume the
	// agent names under the root file system.
	DiskEncryptionMeasured = "measured"
	// DiskEncryptionClaimed: the agent says the root file system is
	// encrypted, but no replayed measurement shows it.
	DiskEncryptionClaimed = "claimed"
	// DiskEncryptionNone: neither the agent nor the measurements say the
	// root file system is encrypted.
	DiskEncryptionNone = "none"
)

// Fault names of the measure log.
const (
	// FaultMeasureLogUnparsable: systemd's measure log does not decode.
	FaultMeasureLogUnparsable = "MeasureLogUnparsable"
	// FaultMeasureLogReplay: systemd's measure log does not replay to the
	// quoted PCR 15.
	FaultMeasureLogReplay = "MeasureLogReplay"
)

// measureLogPCR is the PCR systemd-cryptsetup measures volume keys into.
const measureLogPCR = 15

// maxMeasureLogRecords bounds the records of one measure log.
const maxMeasureLogRecords = 4096

// Event types and content type of systemd's measure log records.
const (
	systemdContentType   = "systemd"
	eventTypeVolumeKey   = "volume-key"
	volumeKeyStringStart = "cryptsetup:"
)

// MeasureLogRecord is one record of systemd's measure log. Only PCR and
// Digests are covered by the replay; the content fields are what systemd
// wrote beside them.
type MeasureLogRecord struct {
	// PCR is the PCR the record extended; -1 for records that name no PCR
	// (NvPCR records of newer systemd), which the replay skips.
	PCR int
	// Digests holds the extended digest by bank (evidence.BankSHA256, ...);
	// banks outside evidence's are left out.
	Digests     map[string][]byte
	ContentType string
	// EventType is content.eventType ("volume-key", "phase", ...).
	EventType string
	// String is content.string, the measured description.
	String string
}

type celRecord struct {
	PCR     *int `json:"pcr"`
	Digests []struct {
		HashAlg string `json:"hashAlg"`
		Digest  string `json:"digest"`
	} `json:"digests"`
	ContentType string `json:"content_type"`
	Content     struct {
		String    string `json:"string"`
		EventType string `json:"eventType"`
	} `json:"content"`
}

// celBanks maps the CEL-JSON hashAlg names to wire bank names.
var celBanks = map[string]string{
	"sha1":   evidence.BankSHA1,
	"sha256": evidence.BankSHA256,
	"sha384": evidence.BankSHA384,
}

// ParseMeasureLog decodes systemd's measure log: RFC 7464 JSON text
// sequences, each record a RS (0x1E) then one JSON object. It refuses a log
// that does not start with RS, a record that is not a JSON object with a
// PCR from 0 to 23 (or none) and digests of the right size, a bank named
// twice in one record, and more than maxMeasureLogRecords records. Digests
// of algorithms the verifier has no bank for (sha512, sm3_256) are left
// out. Unknown JSON fields are allowed: systemd adds some over time.
func ParseMeasureLog(raw []byte) ([]MeasureLogRecord, error) {
	const rs = 0x1e
	if len(raw) == 0 {
		return nil, errors.New("the measure log is empty")
	}
	if raw[0] != rs {
		return nil, errors.New("the measure log does not start with a record separator (RFC 7464)")
	}
	chunks := bytes.Split(raw[1:], []byte{rs})
	if len(chunks) > maxMeasureLogRecords {
		return nil, fmt.Errorf("the measure log has more than %d records", maxMeasureLogRecords)
	}
	records := make([]MeasureLogRecord, 0, len(chunks))
	for i, chunk := range chunks {
		rec, err := parseCELRecord(chunk)
		if err != nil {
			return nil, fmt.Errorf("measure log record %d: %w", i, err)
		}
		records = append(records, rec)
	}
	return records, nil
}

func parseCELRecord(chunk []byte) (MeasureLogRecord, error) {
	chunk = bytes.TrimSpace(chunk)
	if len(chunk) == 0 || chunk[0] != '{' {
		return MeasureLogRecord{}, errors.New("not a JSON object")
	}
	var c celRecord
	dec := json.NewDecoder(bytes.NewReader(chunk))
	if err := dec.Decode(&c); err != nil {
		return MeasureLogRecord{}, err
	}
	// Not dec.More, which says false before a stray "}" or "]".
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return MeasureLogRecord{}, errors.New("trailing data after the JSON object")
	}
	rec := MeasureLogRecord{PCR: -1, Digests: map[string][]byte{}, ContentType: c.ContentType,
		EventType: c.Content.EventType, String: c.Content.String}
	if c.PCR != nil {
		if *c.PCR < 0 || *c.PCR > 23 {
			return MeasureLogRecord{}, fmt.Errorf("pcr %d out of range 0-23", *c.PCR)
		}
		rec.PCR = *c.PCR
	}
	seen := map[string]bool{}
	for _, d := range c.Digests {
		alg := strings.ToLower(d.HashAlg)
		if seen[alg] {
			return MeasureLogRecord{}, fmt.Errorf("hash algorithm %q named twice", d.HashAlg)
		}
		seen[alg] = true
		bank, known := celBanks[alg]
		if !known {
			continue
		}
		h, _ := bankHash(bank)
		digest, err := hex.DecodeString(d.Digest)
		if err != nil {
			return MeasureLogRecord{}, fmt.Errorf("%s digest: %w", d.HashAlg, err)
		}
		if len(digest) != h.Size() {
			return MeasureLogRecord{}, fmt.Errorf("%s digest of %d bytes, want %d", d.HashAlg, len(digest), h.Size())
		}
		rec.Digests[bank] = digest
	}
	if rec.PCR >= 0 && len(c.Digests) == 0 {
		return MeasureLogRecord{}, errors.New("a pcr record without digests")
	}
	return rec, nil
}

// DiskEncryptionState is what the verdict says of disk encryption.
type DiskEncryptionState struct {
	// Status is DiskEncryptionMeasured, DiskEncryptionClaimed or
	// DiskEncryptionNone.
	Status string `json:"status"`
	// Banks are the quoted banks whose PCR 15 the measure log replayed to.
	Banks []string `json:"banks,omitempty"`
	// Volumes are the volumes with a volume key measurement among the
	// replayed PCR 15 records.
	Volumes []evidence.CryptVolume `json:"volumes,omitempty"`
	// Reason says why the status is not measured, when it is not.
	Reason string `json:"reason,omitempty"`
}

// AppraiseDiskEncryption reads disk encryption from systemd's measure log
// (raw, nil when the node sent none), the agent's claim (bound to the quote
// by its qualifying data) and the verified quote's PCRs:
//
//   - A log must replay: for every quoted bank with PCR 15 in which every
//     PCR 15 record has a digest, the records replay from zero to the
//     quoted value, and at least one bank does. Otherwise it is a fault
//     (FaultMeasureLogUnparsable, FaultMeasureLogReplay) and proves nothing.
//   - The status is measured when the log replayed, the agent claims the
//     root file system encrypted, names its dm-crypt volumes, and each has a
//     volume key record ("cryptsetup:<name>:<uuid>", matched by name and by
//     LUKS UUID when the agent names one) among the PCR 15 records. It is
//     claimed when only the agent says so, and none when the agent does
//     not claim encryption.
func AppraiseDiskEncryption(raw []byte, claim evidence.DiskEncryption, pcrs PCRs) (DiskEncryptionState, []Fault) {
	st := DiskEncryptionState{Status: DiskEncryptionNone}
	if claim.Enabled {
		st.Status = DiskEncryptionClaimed
	}
	if len(raw) == 0 {
		st.Reason = "the node sent no systemd measure log (crypttab tpm2-measure-pcr=yes)"
		return st, nil
	}
	records, err := ParseMeasureLog(raw)
	if err != nil {
		st.Reason = "the systemd measure log does not decode"
		return st, []Fault{fault(FaultMeasureLogUnparsable, "%v", err)}
	}
	banks, faults := replayMeasureLog(records, pcrs)
	if len(faults) > 0 || len(banks) == 0 {
		st.Reason = "the systemd measure log does not replay to the quoted PCR 15"
		return st, faults
	}
	st.Banks = banks
	for _, rec := range records {
		if v, ok := volumeKeyRecord(rec); ok {
			st.Volumes = append(st.Volumes, v)
		}
	}
	switch {
	case !claim.Enabled:
		st.Reason = "the agent does not report the root file system on dm-crypt"
	case len(claim.Volumes) == 0:
		st.Reason = "the agent names no dm-crypt volume under the root file system"
	default:
		for _, want := range claim.Volumes {
			if !slices.ContainsFunc(st.Volumes, func(got evidence.CryptVolume) bool { return sameVolume(want, got) }) {
				st.Reason = fmt.Sprintf("no volume key measurement in PCR 15 for the root volume %q", want.Name)
				return st, nil
			}
		}
		st.Status, st.Reason = DiskEncryptionMeasured, ""
	}
	return st, nil
}

// replayMeasureLog replays the PCR 15 records in every quoted bank that
// all of them have a digest for. It returns the banks that matched, sorted,
// and a fault per bank that did not; a log no quoted bank can be replayed
// in is a fault too.
func replayMeasureLog(records []MeasureLogRecord, pcrs PCRs) ([]string, []Fault) {
	var matched []string
	var faults []Fault
	for _, bank := range []string{evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384} {
		quoted, ok := pcrs[bank][measureLogPCR]
		if !ok {
			continue
		}
		h, _ := bankHash(bank)
		value, covered := replayPCR15(records, bank, h)
		if !covered {
			continue
		}
		if !bytes.Equal(value, quoted) {
			faults = append(faults, pcrFault(FaultMeasureLogReplay, bank, measureLogPCR, quoted, value,
				"the systemd measure log does not replay to the quoted PCR value"))
			continue
		}
		matched = append(matched, bank)
	}
	if len(matched) == 0 && len(faults) == 0 {
		faults = append(faults, fault(FaultMeasureLogReplay,
			"no quoted bank holds PCR 15 with a digest in every PCR 15 record of the systemd measure log"))
	}
	return matched, faults
}

// replayPCR15 extends the digests of the PCR 15 records in bank from the
// reset value; covered is false when a record has no digest in bank.
func replayPCR15(records []MeasureLogRecord, bank string, h crypto.Hash) (value []byte, covered bool) {
	value = make([]byte, h.Size())
	d := h.New()
	for _, rec := range records {
		if rec.PCR != measureLogPCR {
			continue
		}
		digest, ok := rec.Digests[bank]
		if !ok {
			return nil, false
		}
		d.Reset()
		d.Write(value)
		d.Write(digest)
		value = d.Sum(value[:0])
	}
	return value, true
}

// volumeKeyRecord reads the volume of a systemd-cryptsetup volume key
// record in PCR 15.
func volumeKeyRecord(rec MeasureLogRecord) (evidence.CryptVolume, bool) {
	if rec.PCR != measureLogPCR || rec.ContentType != systemdContentType || rec.EventType != eventTypeVolumeKey {
		return evidence.CryptVolume{}, false
	}
	rest, ok := strings.CutPrefix(rec.String, volumeKeyStringStart)
	if !ok {
		return evidence.CryptVolume{}, false
	}
	// systemd escapes ":" in the name (\x3a), so the last ":" ends it.
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return evidence.CryptVolume{}, false
	}
	name, ok := unescapeVolumeName(rest[:i])
	if !ok || name == "" {
		return evidence.CryptVolume{}, false
	}
	return evidence.CryptVolume{Name: name, UUID: strings.ToLower(rest[i+1:])}, true
}

// unescapeVolumeName undoes systemd's xescape: \xNN stands for the byte NN.
func unescapeVolumeName(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) || s[i+1] != 'x' {
			return "", false
		}
		n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), true
}

// sameVolume matches the agent's volume with a measured one: the same name,
// and the same LUKS UUID when the agent read one.
func sameVolume(claimed, measured evidence.CryptVolume) bool {
	if claimed.Name != measured.Name {
		return false
	}
	return claimed.UUID == "" || strings.EqualFold(claimed.UUID, measured.UUID)
}
