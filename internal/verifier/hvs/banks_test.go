package hvs

import (
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
)

// An agent that leaves a requested bank out of its quote (a downgrade to the
// bank it can forge best) is caught by the banks its TPM had at enrollment.
func TestAQuoteThatOmitsABankIsAFaultOnlyIfTheTPMHadItAtEnrollment(t *testing.T) {
	omit := func(n *node) {
		n.tpm.mu.Lock()
		defer n.tpm.mu.Unlock()
		n.tpm.omitBank = evidence.BankSHA384
	}

	t.Run("a quote without SHA-384 from a TPM enrolled with SHA-256 and SHA-384 is a QuoteBank fault", func(t *testing.T) {
		n := newNode(t, "edge-1")
		e := newEnv(t, []*node{n})
		e.baseline(t, n)
		if _, banks, err := e.enr.VerifyAK(t.Context(), n.id); err != nil ||
			!slices.Equal(banks, []string{evidence.BankSHA256, evidence.BankSHA384}) {
			t.Fatalf("enrolled banks %v (%v), want SHA256 and SHA384", banks, err)
		}
		wantTrusted(t, mustReport(t, e, n.id))
		omit(n)
		r := mustReport(t, e, n.id)
		wantUntrusted(t, r, nil, appraise.FaultQuoteBank)
		i := slices.IndexFunc(r.Faults, func(f appraise.Fault) bool { return f.Name == appraise.FaultQuoteBank })
		if i < 0 || r.Faults[i].PCRBank != evidence.BankSHA384 {
			t.Errorf("no bank fault naming SHA384 among %+v", r.Faults)
		}
	})

	t.Run("a quote without SHA-384 from a TPM enrolled with only SHA-256 is no fault", func(t *testing.T) {
		n := newNode(t, "edge-1")
		n.tpm.keyBanks = []string{evidence.BankSHA256}
		omit(n)
		e := newEnv(t, []*node{n})
		e.baseline(t, n)
		r := mustReport(t, e, n.id)
		wantTrusted(t, r)
		if slices.Contains(faultsOf(r), appraise.FaultQuoteBank) {
			t.Errorf("faults %v, want no %s", faultsOf(r), appraise.FaultQuoteBank)
		}
	})
}
