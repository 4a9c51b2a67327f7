package tpm

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// quoteHash is the hash of the AK signing schemes, which the TPM also uses
// for the quoted PCR digest.
const quoteHash = crypto.SHA256

// Quote has the AK sign the PCRs of the requested banks that are active on
// the TPM, over the nonce, and returns the signed TPMS_ATTEST, the
// TPMT_SIGNATURE and the PCR values the quote covers. The values are read
// around the quote and the read is repeated when a PCR changed meanwhile,
// so the returned values always hash to the quoted PCR digest.
func (t *TPM) Quote(nonce []byte, pcrs []int, banks []string) (*evidence.QuoteResponse, error) {
	if t.ak == nil {
		return nil, ErrNoAK
	}
	if n := len(nonce); n == 0 || n > evidence.MaxNonceSize {
		return nil, fmt.Errorf("nonce must be 1 to %d bytes, got %d", evidence.MaxNonceSize, n)
	}
	if err := checkPCRs(pcrs); err != nil {
		return nil, err
	}
	algs, err := t.quoteBanks(banks)
	if err != nil {
		return nil, err
	}
	sel := tpm2.TPMLPCRSelection{}
	for _, alg := range algs {
		sel.PCRSelections = append(sel.PCRSelections, tpm2.TPMSPCRSelection{Hash: alg, PCRSelect: pcrSelect(pcrs)})
	}
	for range maxReadAttempts {
		values := map[tpm2.TPMAlgID]map[int][]byte{}
		var before []uint32
		for _, alg := range algs {
			v, counter, err := t.readBank(alg, pcrs)
			if err != nil {
				return nil, err
			}
			values[alg] = v
			before = append(before, counter)
		}
		rsp, err := tpm2.Quote{
			SignHandle:     tpm2.AuthHandle{Handle: tpm2.TPMHandle(t.ak.Handle), Name: tpm2.TPM2BName{Buffer: t.ak.Name}, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: nonce},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			PCRSelect:      sel,
		}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("quote: %w", err)
		}
		_, after, err := t.readBank(algs[0], pcrs[:1])
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(before, func(c uint32) bool { return c != after }) {
			continue // a PCR changed while we read and quoted
		}
		attest := rsp.Quoted.Bytes()
		match, err := digestMatches(attest, values)
		if err != nil {
			return nil, err
		}
		if !match {
			continue
		}
		out := &evidence.QuoteResponse{
			Version:   evidence.Version,
			Attest:    attest,
			Signature: tpm2.Marshal(&rsp.Signature),
			AKName:    bytes.Clone(t.ak.Name),
		}
		sorted := slices.Sorted(slices.Values(pcrs))
		for _, alg := range algs {
			for _, p := range sorted {
				out.PCRs = append(out.PCRs, evidence.PCRValue{Bank: bankName(alg), Index: p, Value: values[alg][p]})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("quote: pcrs kept changing during %d attempts", maxReadAttempts)
}

// quoteBanks returns the requested banks that are active, in canonical order.
func (t *TPM) quoteBanks(requested []string) ([]tpm2.TPMAlgID, error) {
	want := map[tpm2.TPMAlgID]bool{}
	for _, name := range requested {
		alg, _, err := bankAlg(name)
		if err != nil {
			return nil, err
		}
		want[alg] = true
	}
	active, err := t.ActiveBanks()
	if err != nil {
		return nil, err
	}
	var algs []tpm2.TPMAlgID
	for _, name := range active {
		alg, _, _ := bankAlg(name)
		if want[alg] {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("%w: requested %v, active %v", ErrNoActiveBank, requested, active)
	}
	return algs, nil
}

// digestMatches tells whether the PCR digest in a quote's TPMS_ATTEST is
// the hash of the values, taken in the order of the quote's selection.
func digestMatches(attest []byte, values map[tpm2.TPMAlgID]map[int][]byte) (bool, error) {
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](attest)
	if err != nil {
		return false, fmt.Errorf("decode quote attest: %w", err)
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return false, fmt.Errorf("decode quote info: %w", err)
	}
	h := quoteHash.New()
	for _, s := range info.PCRSelect.PCRSelections {
		for _, p := range selected(s.PCRSelect) {
			v, ok := values[s.Hash][p]
			if !ok {
				return false, fmt.Errorf("quote covers %s pcr %d, which was not read", bankName(s.Hash), p)
			}
			h.Write(v)
		}
	}
	return bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer), nil
}
