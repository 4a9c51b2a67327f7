package tpm

import (
	"crypto"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// numPCRs is the number of PCRs of a PC Client TPM.
const numPCRs = 24

// banks lists the PCR banks this package knows, in the order it reports
// and quotes them.
var banks = []struct {
	name string
	alg  tpm2.TPMAlgID
	hash crypto.Hash
}{
	{evidence.BankSHA1, tpm2.TPMAlgSHA1, crypto.SHA1},
	{evidence.BankSHA256, tpm2.TPMAlgSHA256, crypto.SHA256},
	{evidence.BankSHA384, tpm2.TPMAlgSHA384, crypto.SHA384},
}

// bankAlg maps a bank name (case-insensitive) to its TPM algorithm.
func bankAlg(name string) (tpm2.TPMAlgID, crypto.Hash, error) {
	for _, b := range banks {
		if strings.EqualFold(b.name, name) {
			return b.alg, b.hash, nil
		}
	}
	return 0, 0, fmt.Errorf("unknown pcr bank %q", name)
}

func bankName(alg tpm2.TPMAlgID) string {
	for _, b := range banks {
		if b.alg == alg {
			return b.name
		}
	}
	return fmt.Sprintf("alg-%#x", uint16(alg))
}

// ActiveBanks returns the known PCR banks the TPM has allocated (at least
// one PCR selected), as evidence bank names in the order SHA1, SHA256, SHA384.
func (t *TPM) ActiveBanks() ([]string, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("get pcr allocation: %w", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("decode pcr allocation: %w", err)
	}
	var active []string
	for _, b := range banks {
		for _, s := range sel.PCRSelections {
			if s.Hash == b.alg && slices.ContainsFunc(s.PCRSelect, func(c byte) bool { return c != 0 }) {
				active = append(active, b.name)
			}
		}
	}
	return active, nil
}

func checkPCRs(pcrs []int) error {
	if len(pcrs) == 0 {
		return fmt.Errorf("no pcr selected")
	}
	seen := map[int]bool{}
	for _, p := range pcrs {
		if p < 0 || p >= numPCRs {
			return fmt.Errorf("pcr index %d out of range 0-%d", p, numPCRs-1)
		}
		if seen[p] {
			return fmt.Errorf("pcr index %d named twice", p)
		}
		seen[p] = true
	}
	return nil
}

func pcrSelect(pcrs []int) []byte {
	sel := make([]byte, 3)
	for _, p := range pcrs {
		sel[p/8] |= 1 << (p % 8)
	}
	return sel
}

func selected(sel []byte) []int {
	var pcrs []int
	for i, b := range sel {
		for bit := range 8 {
			if b&(1<<bit) != 0 {
				pcrs = append(pcrs, i*8+bit)
			}
		}
	}
	return pcrs
}

// ReadPCRs reads PCR values of one bank. The values are consistent: all
// read under the same PCR update counter.
func (t *TPM) ReadPCRs(bank string, pcrs []int) (map[int][]byte, error) {
	alg, _, err := bankAlg(bank)
	if err != nil {
		return nil, err
	}
	if err := checkPCRs(pcrs); err != nil {
		return nil, err
	}
	values, _, err := t.readBank(alg, pcrs)
	return values, err
}

// maxReadAttempts bounds the retries when PCRs change while being read.
const maxReadAttempts = 5

// readBank reads the PCRs of one bank. TPM2_PCR_Read returns at most 8
// digests per call, so it loops; when the update counter moves between
// calls it starts over.
func (t *TPM) readBank(alg tpm2.TPMAlgID, pcrs []int) (map[int][]byte, uint32, error) {
	for range maxReadAttempts {
		values := map[int][]byte{}
		var counter uint32
		consistent := true
		for first := true; len(values) < len(pcrs); first = false {
			var rest []int
			for _, p := range pcrs {
				if _, ok := values[p]; !ok {
					rest = append(rest, p)
				}
			}
			rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{
				PCRSelections: []tpm2.TPMSPCRSelection{{Hash: alg, PCRSelect: pcrSelect(rest)}},
			}}.Execute(t.t)
			if err != nil {
				return nil, 0, fmt.Errorf("read %s pcrs %v: %w", bankName(alg), rest, err)
			}
			if !first && rsp.PCRUpdateCounter != counter {
				consistent = false
				break
			}
			counter = rsp.PCRUpdateCounter
			var got []int
			for _, s := range rsp.PCRSelectionOut.PCRSelections {
				if s.Hash == alg {
					got = append(got, selected(s.PCRSelect)...)
				}
			}
			if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
				return nil, 0, fmt.Errorf("read %s pcrs %v: tpm returned %d values for %d selected pcrs", bankName(alg), rest, len(rsp.PCRValues.Digests), len(got))
			}
			for i, p := range got {
				if !slices.Contains(rest, p) {
					return nil, 0, fmt.Errorf("read %s pcrs %v: tpm returned unrequested pcr %d", bankName(alg), rest, p)
				}
				values[p] = rsp.PCRValues.Digests[i].Buffer
			}
		}
		if consistent {
			return values, counter, nil
		}
	}
	return nil, 0, fmt.Errorf("read %s pcrs: pcrs kept changing during %d attempts", bankName(alg), maxReadAttempts)
}

// Extend extends one PCR of one bank with a digest of that bank's size.
func (t *TPM) Extend(pcr int, bank string, digest []byte) error {
	alg, h, err := bankAlg(bank)
	if err != nil {
		return err
	}
	if err := checkPCRs([]int{pcr}); err != nil {
		return err
	}
	if len(digest) != h.Size() {
		return fmt.Errorf("extend %s pcr %d: digest is %d bytes, want %d", bank, pcr, len(digest), h.Size())
	}
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: alg, Digest: digest}}},
	}.Execute(t.t)
	if err != nil {
		return fmt.Errorf("extend %s pcr %d: %w", bank, pcr, err)
	}
	return nil
}
