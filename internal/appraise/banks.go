package appraise

import (
	"slices"

	"trustedcompute.io/tc/internal/evidence"
)

// Policy holds the verifier's appraisal settings. The zero value is the
// strict default.
type Policy struct {
	// AllowSHA1 lets SHA-1 be a requested bank. SHA-1 collisions can be
	// computed, so an event log digest in SHA-1 proves little: by default a
	// request that names SHA-1 is a fault, and the SHA-1 values of a quote
	// are dropped before any check reads them.
	AllowSHA1 bool
}

// checkBanks checks the quote's banks against the request, the policy and
// the banks the TPM had when its AK was enrolled (nil when enrollment
// recorded none), and drops the quoted banks the policy refuses. A
// requested bank the TPM had must be quoted, with every requested PCR.
// Without enrollment's record, a requested bank the quote omits is taken
// to be one the TPM lacks, but at least one requested bank must be quoted.
func checkBanks(req evidence.QuoteRequest, policy Policy, tpmBanks []string, q *Quote) []Fault {
	var faults []Fault
	if !policy.AllowSHA1 {
		if slices.Contains(req.Banks, evidence.BankSHA1) {
			f := fault(FaultQuoteBank, "the verifier asked for the SHA-1 bank, which its policy refuses (SHA-1 digests can collide)")
			f.PCRBank = evidence.BankSHA1
			faults = append(faults, f)
		}
		delete(q.PCRs, evidence.BankSHA1)
	}
	if len(req.Banks) == 0 {
		return faults
	}
	quotedBanks := 0
	for _, bank := range req.Banks {
		values, quoted := q.PCRs[bank]
		if !quoted {
			if tpmBanks != nil && slices.Contains(tpmBanks, bank) {
				f := fault(FaultQuoteBank, "the quote omits the requested bank %s, which the TPM had when its AK was enrolled (%v)", bank, tpmBanks)
				f.PCRBank = bank
				faults = append(faults, f)
			}
			continue
		}
		quotedBanks++
		for _, i := range req.PCRs {
			if _, ok := values[i]; !ok {
				faults = append(faults, pcrFault(FaultQuotePCRSelection, bank, i, nil, nil, "the verifier asked for this PCR but the quote does not cover it"))
			}
		}
	}
	if quotedBanks == 0 {
		faults = append(faults, fault(FaultQuotePCRSelection, "the quote covers none of the requested banks %v", req.Banks))
	}
	return faults
}
