package appraise

import (
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func TestQuoteBanksFollowThePolicyAndTheEnrolledTPM(t *testing.T) {
	both := []string{evidence.BankSHA384, evidence.BankSHA256}
	tests := []struct {
		name      string
		requested []string
		quoted    []string // the banks the agent quotes
		allowSHA1 bool
		tpmBanks  []string
		want      []string
		sbBank    string
	}{
		{name: "the requested banks quoted as the TPM had them are no fault",
			requested: both, quoted: both, tpmBanks: both, sbBank: evidence.BankSHA384},
		{name: "SHA-1 requested without the policy allowing it is a fault",
			requested: append(slices.Clone(both), evidence.BankSHA1), quoted: both,
			want: []string{FaultQuoteBank}, sbBank: evidence.BankSHA384},
		{name: "SHA-1 requested with the policy allowing it is no fault",
			requested: append(slices.Clone(both), evidence.BankSHA1), quoted: both, allowSHA1: true, sbBank: evidence.BankSHA384},
		{name: "SHA-1 values the agent quotes unasked are never read unless allowed",
			requested: both, quoted: []string{evidence.BankSHA1}, tpmBanks: []string{evidence.BankSHA1},
			want: []string{FaultQuotePCRSelection, FaultEventLogReplay, FaultSecureBootUnparsable}},
		{name: "SHA-1 values are read when allowed and the TPM has no other bank",
			requested: []string{evidence.BankSHA1, evidence.BankSHA256}, quoted: []string{evidence.BankSHA1},
			allowSHA1: true, tpmBanks: []string{evidence.BankSHA1}, sbBank: evidence.BankSHA1},
		{name: "a quote that omits a bank the TPM had at enrollment is a fault",
			requested: both, quoted: []string{evidence.BankSHA256}, tpmBanks: both,
			want: []string{FaultQuoteBank}, sbBank: evidence.BankSHA256},
		{name: "a quote down to SHA-1 from the SHA-256 the TPM had at enrollment is a fault",
			requested: []string{evidence.BankSHA256, evidence.BankSHA1}, quoted: []string{evidence.BankSHA1},
			allowSHA1: true, tpmBanks: []string{evidence.BankSHA1, evidence.BankSHA256},
			want: []string{FaultQuoteBank}, sbBank: evidence.BankSHA1},
		{name: "a quote that omits a bank the TPM lacked at enrollment is no fault",
			requested: both, quoted: []string{evidence.BankSHA256}, tpmBanks: []string{evidence.BankSHA1, evidence.BankSHA256},
			sbBank: evidence.BankSHA256},
		{name: "without enrollment's record a quote of some requested banks is no fault",
			requested: both, quoted: []string{evidence.BankSHA256}, sbBank: evidence.BankSHA256},
		{name: "without enrollment's record a quote of no requested bank is a fault",
			requested: []string{evidence.BankSHA384}, quoted: []string{evidence.BankSHA256},
			want: []string{FaultQuotePCRSelection}, sbBank: evidence.BankSHA256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := secureBootLog(evidence.BankSHA1, evidence.BankSHA256, evidence.BankSHA384)
			all := l.quoted(0, 7)
			pcrs := PCRs{}
			for _, bank := range tt.quoted {
				pcrs[bank] = all[bank]
			}
			ak := newAK(t, "ecc-p256")
			rsp := buildQuote(t, ak, testNonce(), pcrs, quoteOptions{})
			rsp.EventLog = l.bytes()
			in := Input{AKPublic: ak.public, Response: rsp, Policy: Policy{AllowSHA1: tt.allowSHA1}, TPMBanks: tt.tpmBanks,
				Request: evidence.QuoteRequest{Nonce: testNonce(), PCRs: []int{0, 7}, Banks: tt.requested}}
			v := Appraise(in, testNow)
			if got := faultNames(v.Faults); !slices.Equal(got, tt.want) {
				t.Fatalf("faults %v, want %v", v.Faults, tt.want)
			}
			if v.SecureBoot.Bank != tt.sbBank || v.SecureBoot.Enabled != (tt.sbBank != "") {
				t.Errorf("secure boot %+v, want it read from %q", v.SecureBoot, tt.sbBank)
			}
			if _, ok := v.Quote.PCRs[evidence.BankSHA1]; ok && !tt.allowSHA1 {
				t.Error("the verified quote keeps SHA-1 values the policy refuses")
			}
		})
	}
}

// secureBootLog is a firmware log with Secure Boot on in the given banks.
func secureBootLog(banks ...string) *logBuilder {
	b := newLogBuilder(banks...)
	b.measure(0, evSCRTMVersion, ucs2("edk2-stable202408\x00"))
	list := sigList(efiCertSHA256, make([]byte, 32))
	b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
	b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "PK", list))
	b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "KEK", list))
	b.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "db", list))
	b.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "dbx", list))
	for pcr := 0; pcr <= 7; pcr++ {
		b.measure(pcr, evSeparator, []byte{0, 0, 0, 0})
	}
	return b
}
