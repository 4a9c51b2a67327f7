package manager

import (
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name        string
		report      *report.Report
		wantStatus  Status
		wantReady   bool
		wantParts   []string
		wantReason  string
		wantDetail  string
		wantMessage string // substring
	}{
		{
			name:       "a trusted report with Secure Boot and disk encryption is Verified and ready",
			report:     newReport("h").build(),
			wantStatus: StatusVerified, wantReady: true, wantReason: ReasonVerified,
			wantDetail: "Attestation successful",
		},
		{
			name:       "a trusted report without full-disk encryption is Verified but not ready",
			report:     newReport("h").diskEncryption(false).build(),
			wantStatus: StatusVerified, wantReady: false, wantReason: ReasonVerified,
			wantDetail: "Attestation successful", wantMessage: "full-disk encryption absent",
		},
		{
			name:       "Secure Boot off in the quoted PCR 7 events is Secure Boot Disabled",
			report:     newReport("h").secureBoot(false).build(),
			wantStatus: StatusSecureBootDisabled, wantReason: ReasonSecureBootDisabled,
			wantDetail: "SecureBoot Disabled",
		},
		{
			name:       "Secure Boot off is checked before trust",
			report:     newReport("h").secureBoot(false).failPart(flavor.PartPlatform).failPart(flavor.PartIMA).build(),
			wantStatus: StatusSecureBootDisabled, wantReason: ReasonSecureBootDisabled,
			wantDetail: "SecureBoot Disabled",
		},
		{
			name:       "an untrusted report names its failed parts",
			report:     newReport("h").failPart(flavor.PartIMA).failPart(flavor.PartPlatform).build(),
			wantStatus: StatusAttestationFailed, wantParts: []string{"IMA", "PLATFORM"}, wantReason: ReasonAttestationFailed,
			wantDetail: "IMA, PLATFORM trust verification failed",
		},
		{
			name:       "evidence faults are named when no part failed",
			report:     newReport("h").fault("QuoteNonceMismatch").fault("EventLogReplay").fault("QuoteNonceMismatch").build(),
			wantStatus: StatusAttestationFailed, wantParts: []string{"EventLogReplay", "QuoteNonceMismatch"}, wantReason: ReasonAttestationFailed,
			wantDetail: "EventLogReplay, QuoteNonceMismatch trust verification failed",
		},
		{
			name:       "a report where no part was evaluated fails",
			report:     newReport("h").untrustedParts().build(),
			wantStatus: StatusAttestationFailed, wantReason: ReasonAttestationFailed,
			wantDetail: "trust verification failed: no flavor part was evaluated",
		},
		{
			name: "an efivar claim of Secure Boot off is not Secure Boot Disabled when PCR 7 did not replay",
			report: newReport("h").secureBootUnverified(false).failPart(flavor.PartPlatform).
				fault("EventLogReplay").build(),
			wantStatus: StatusAttestationFailed, wantParts: []string{"PLATFORM"}, wantReason: ReasonAttestationFailed,
			wantDetail: "PLATFORM trust verification failed",
		},
		{
			name:       "a trusted report whose Secure Boot state is unverified is not Verified",
			report:     newReport("h").secureBootUnverified(true).build(),
			wantStatus: StatusAttestationFailed, wantReason: ReasonSecureBootUnverified,
			wantMessage: "could not be verified",
		},
		{
			name:       "no report is not Verified",
			report:     nil,
			wantStatus: StatusAttestationFailed, wantReason: ReasonNoReport,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.report)
			if d.Status != tt.wantStatus || d.Ready != tt.wantReady || d.Reason != tt.wantReason {
				t.Fatalf("Decide = %+v, want status %q ready %v reason %q", d, tt.wantStatus, tt.wantReady, tt.wantReason)
			}
			if !slices.Equal(d.Parts, tt.wantParts) {
				t.Errorf("parts = %v, want %v", d.Parts, tt.wantParts)
			}
			if tt.wantDetail != "" && d.Detail() != tt.wantDetail {
				t.Errorf("detail = %q, want %q", d.Detail(), tt.wantDetail)
			}
			if !strings.Contains(d.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", d.Message, tt.wantMessage)
			}
			if d.Status == StatusVerified && (tt.report == nil || !tt.report.Trusted()) {
				t.Errorf("an untrusted report was decided Verified")
			}
		})
	}
}

func FuzzDecideNeverVerifiesAnUntrustedReport(f *testing.F) {
	f.Add(true, true, true, true, false, false)
	f.Add(false, true, false, true, true, true)
	f.Fuzz(func(t *testing.T, overall, sbVerified, sbOn, disk, fault, partFails bool) {
		b := newReport("h")
		b.r.TrustInformation.Overall = overall
		b.r.HostInfo.SecureBoot.Verified = sbVerified
		b.r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled = sbOn
		b.r.HostInfo.DiskEncryption.Enabled = disk
		if fault {
			b.fault("F")
		}
		if partFails {
			b.failPart(flavor.PartOS)
		}
		r := b.build()
		d := Decide(r)
		if d.Status == StatusVerified && (!r.Trusted() || !sbVerified || !sbOn) {
			t.Fatalf("Verified: %+v for %+v", d, r)
		}
		if d.Ready && (d.Status != StatusVerified || !disk) {
			t.Fatalf("ready without Verified and disk encryption: %+v", d)
		}
	})
}
