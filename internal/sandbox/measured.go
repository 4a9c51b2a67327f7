// Package sandbox gives simulated nodes a measured boot (a real firmware
// event log replayed into their TPM) and an IMA log whose entries are
// extended into PCR 10, exactly as firmware and the kernel would. The agent's
// and the verifier's tests use it; the whole local fleet that `tcctl sandbox`
// runs on top of it is package fleet (internal/sandbox/fleet).
package sandbox

import (
	"crypto"
	"crypto/sha1"     //nolint:gosec // the IMA template hash column is SHA-1 by definition
	_ "crypto/sha256" // registers SHA-256 and SHA-384 for crypto.Hash.New
	_ "crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
)

// PCRExtender is the part of a TPM that extends a PCR.
type PCRExtender interface {
	Extend(pcr int, bank string, digest []byte) error
}

// Extender is the part of a TPM a measured boot needs.
type Extender interface {
	PCRExtender
	ActiveBanks() ([]string, error)
}

// ReplayEventLog extends every event of a TCG event log into the TPM, bank by
// bank, for the banks both the log and the TPM have. It returns those banks.
func ReplayEventLog(t Extender, raw []byte) ([]string, error) {
	log, err := appraise.ParseEventLog(raw)
	if err != nil {
		return nil, err
	}
	active, err := t.ActiveBanks()
	if err != nil {
		return nil, err
	}
	var banks []string
	for _, bank := range log.Banks() {
		if !contains(active, bank) {
			continue
		}
		banks = append(banks, bank)
		for _, ev := range log.Events(bank) {
			if ev.Index < 0 || ev.Index > 23 {
				continue // firmware's "no PCR" events
			}
			d, err := hex.DecodeString(ev.Digest)
			if err != nil {
				return nil, fmt.Errorf("event log digest %q: %w", ev.Digest, err)
			}
			if err := t.Extend(ev.Index, bank, d); err != nil {
				return nil, fmt.Errorf("extend pcr %d %s: %w", ev.Index, bank, err)
			}
		}
	}
	if len(banks) == 0 {
		return nil, fmt.Errorf("the event log's banks %v are not active on the TPM (%v)", log.Banks(), active)
	}
	return banks, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

var bankHash = map[string]crypto.Hash{
	evidence.BankSHA1:   crypto.SHA1,
	evidence.BankSHA256: crypto.SHA256,
	evidence.BankSHA384: crypto.SHA384,
}

// IMAPCR is the PCR IMA extends.
const IMAPCR = 10

// IMAEntry makes the ima-ng template data of a file measurement and the
// ascii log line the kernel would print for it.
func IMAEntry(path string, fileSHA256 []byte) (line string, templateData []byte) {
	digestField := append([]byte("sha256:\x00"), fileSHA256...)
	nameField := append([]byte(path), 0)
	templateData = binary.LittleEndian.AppendUint32(nil, uint32(len(digestField)))
	templateData = append(templateData, digestField...)
	templateData = binary.LittleEndian.AppendUint32(templateData, uint32(len(nameField)))
	templateData = append(templateData, nameField...)
	th := sha1.Sum(templateData) //nolint:gosec // see the import
	line = fmt.Sprintf("%d %x ima-ng sha256:%x %s\n", IMAPCR, th, fileSHA256, path)
	return line, templateData
}

// MeasureFile extends PCR 10 of every given bank with the template hash of
// the file's IMA entry, as the kernel does, and returns the log line.
func MeasureFile(t PCRExtender, banks []string, path string, fileSHA256 []byte) (string, error) {
	line, data := IMAEntry(path, fileSHA256)
	if err := extendData(t, banks, IMAPCR, data); err != nil {
		return "", err
	}
	return line, nil
}

// ExtendUnlogged extends pcr of every given bank with a digest no event log
// explains, as an unmeasured change to the platform would.
func ExtendUnlogged(t PCRExtender, banks []string, pcr int) error {
	return extendData(t, banks, pcr, fmt.Appendf(nil, "unlogged change %d to pcr %d", time.Now().UnixNano(), pcr))
}

// extendData extends pcr of every given bank with the bank's digest of data.
func extendData(t PCRExtender, banks []string, pcr int, data []byte) error {
	for _, bank := range banks {
		h, ok := bankHash[strings.ToUpper(bank)]
		if !ok {
			return fmt.Errorf("extend pcr %d: unknown bank %q", pcr, bank)
		}
		hh := h.New()
		hh.Write(data)
		if err := t.Extend(pcr, bank, hh.Sum(nil)); err != nil {
			return fmt.Errorf("extend pcr %d %s: %w", pcr, bank, err)
		}
	}
	return nil
}
