package keybroker

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/errtest"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// verifiedReport is a trusted report of h1 made a minute ago, with Secure
// Boot on, disk encryption measured and PCRs 0 to 7 matching constants.
func verifiedReport() *report.Report {
	var rules []flavor.RuleResult
	for i := range 8 {
		rules = append(rules, flavor.RuleResult{Trusted: true, Rule: flavor.Rule{Name: flavor.RulePcrMatchesConstant,
			ExpectedPCR: &flavor.ExpectedPCR{PCR: flavor.PCR{Index: i, Bank: "SHA256"}, Measurement: strings.Repeat(string("0123456789"[i])+"a", 32)}}})
	}
	r := &report.Report{ID: "r1", HostID: "h1", Created: now.Add(-time.Minute), Expiration: now.Add(time.Hour),
		TrustInformation: flavor.TrustInformation{Overall: true, FlavorsTrust: map[flavor.Part]flavor.PartTrust{
			flavor.PartPlatform: {Trust: true, Rules: rules},
		}}}
	r.HostInfo.SecureBoot = report.SecureBoot{FromPCR7: true, Verified: true}
	r.HostInfo.DiskEncryptionStatus = appraise.DiskEncryptionMeasured
	return r
}

func TestDecide(t *testing.T) {
	h1 := Host{ID: "h1", FlavorGroupNames: []string{"edge"}}
	byID := restapi.SecretPolicy{HostIDs: []string{"h1"}}
	tests := []struct {
		name       string
		policy     restapi.SecretPolicy
		host       Host
		report     func(r *report.Report)
		wantReason string // "" for a release
		wantPCRs   []int
	}{
		{name: "a verified fresh report of a named host is released", policy: byID, host: h1},
		{name: "a host appraised against a named flavor group is released",
			policy: restapi.SecretPolicy{FlavorGroupNames: []string{"edge"}}, host: h1},
		{name: "a host the policy does not name is refused",
			policy: restapi.SecretPolicy{HostIDs: []string{"h2"}, FlavorGroupNames: []string{"core"}}, host: h1, wantReason: ReasonHostNotAllowed},
		{name: "a disabled host is refused", policy: byID, host: Host{ID: "h1", Disabled: true}, wantReason: ReasonHostDisabled},
		{name: "an untrusted report is refused", policy: byID, host: h1, wantReason: ReasonNotVerified,
			report: func(r *report.Report) { r.TrustInformation.Overall = false }},
		{name: "a report with an evidence fault is refused", policy: byID, host: h1, wantReason: ReasonNotVerified,
			report: func(r *report.Report) { r.Faults = []appraise.Fault{{Name: appraise.FaultEvidenceMissing}} }},
		{name: "a report older than the policy allows is refused", policy: byID, host: h1, wantReason: ReasonEvidenceStale,
			report: func(r *report.Report) { r.Created = now.Add(-DefaultMaxEvidenceAge - time.Second) }},
		{name: "an expired report is refused", policy: byID, host: h1, wantReason: ReasonEvidenceStale,
			report: func(r *report.Report) { r.Expiration = now.Add(-time.Second) }},
		{name: "a report of another host is refused", policy: byID, host: h1, wantReason: ReasonReportOfAnotherHost,
			report: func(r *report.Report) { r.HostID = "h2" }},
		{name: "secure boot off is refused", policy: byID, host: h1, wantReason: ReasonSecureBootOff,
			report: func(r *report.Report) { r.HostInfo.SecureBoot.FromPCR7 = false }},
		{name: "secure boot read from a pcr 7 that did not replay is refused", policy: byID, host: h1, wantReason: ReasonSecureBootOff,
			report: func(r *report.Report) { r.HostInfo.SecureBoot.Verified = false }},
		{name: "secure boot off is released when the policy relaxes it",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, AllowSecureBootOff: true}, host: h1,
			report: func(r *report.Report) { r.HostInfo.SecureBoot.FromPCR7 = false }},
		{name: "claimed disk encryption is refused", policy: byID, host: h1, wantReason: ReasonDiskNotMeasured,
			report: func(r *report.Report) { r.HostInfo.DiskEncryptionStatus = appraise.DiskEncryptionClaimed }},
		{name: "claimed disk encryption is released when the policy relaxes it",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, AllowUnmeasuredDiskEncryption: true}, host: h1,
			report: func(r *report.Report) { r.HostInfo.DiskEncryptionStatus = appraise.DiskEncryptionClaimed }},
		{name: "a pcr-bound secret gets the attested values of pcrs 0 to 7",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, BindPCRs: true}, host: h1, wantPCRs: []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{name: "a pcr-bound secret on a pcr without a trusted constant rule is refused",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, BindPCRs: true, PCRs: []int{7, 15}}, host: h1, wantReason: ReasonPCRNotAttested},
		{name: "a pcr value from an untrusted rule is not attested",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, BindPCRs: true, PCRs: []int{7}}, host: h1, wantReason: ReasonPCRNotAttested,
			report: func(r *report.Report) {
				pt := r.TrustInformation.FlavorsTrust[flavor.PartPlatform]
				pt.Rules[7].Trusted = false
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := verifiedReport()
			if tt.report != nil {
				tt.report(r)
			}
			pcrs, err := Decide(tt.policy, tt.host, r, now)
			var re *RefusalError
			switch {
			case tt.wantReason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantReason != "" && !errors.As(err, &re):
				t.Fatalf("error %v, want a refusal %s", err, tt.wantReason)
			case tt.wantReason != "" && re.Reason != tt.wantReason:
				t.Fatalf("refused for %s (%v), want %s", re.Reason, err, tt.wantReason)
			}
			if len(pcrs) != len(tt.wantPCRs) {
				t.Fatalf("pcrs %v, want %v", pcrs, tt.wantPCRs)
			}
			for _, i := range tt.wantPCRs {
				if want := strings.Repeat(string("0123456789"[i])+"a", 32); len(pcrs[i]) != 32 || hex.EncodeToString(pcrs[i]) != want {
					t.Errorf("pcr %d = %x, want %s", i, pcrs[i], want)
				}
			}
		})
	}
}

func TestValidatePolicy(t *testing.T) {
	tests := []struct {
		name    string
		policy  restapi.SecretPolicy
		wantErr []string
	}{
		{name: "a policy naming a host is valid", policy: restapi.SecretPolicy{HostIDs: []string{"h1"}}},
		{name: "a policy naming nobody is refused", wantErr: []string{"names no host and no flavor group"}},
		{name: "a host id that is no bus token is refused", policy: restapi.SecretPolicy{HostIDs: []string{"h.1"}}, wantErr: []string{"invalid host id"}},
		{name: "an evidence age under thirty seconds is refused",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, MaxEvidenceAgeSeconds: 5}, wantErr: []string{"max_evidence_age_seconds 5"}},
		{name: "pcrs without bind_pcrs are refused",
			policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, PCRs: []int{7}}, wantErr: []string{"bind_pcrs is false"}},
		{name: "every problem is reported at once",
			policy:  restapi.SecretPolicy{BindPCRs: true, PCRs: []int{24}, MaxEvidenceAgeSeconds: 1 << 40},
			wantErr: []string{"names no host", "pcr 24", "max_evidence_age_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePolicy(tt.policy)
			if len(tt.wantErr) > 0 && !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v, want ErrInvalidPolicy", err)
			}
			errtest.Want(t, err, tt.wantErr...)
		})
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"data-volume.key": true, "A_1": true, "": false, ".hidden": false, "../etc/passwd": false, "a/b": false,
		strings.Repeat("a", maxNameLen): true, strings.Repeat("a", maxNameLen+1): false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}
