package report

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
)

func agentFacts(efivar *bool) *evidence.HostInfo {
	return &evidence.HostInfo{
		Version: evidence.Version, HostName: "edge-07", HardwareUUID: "4c4c4544-0042-3510-8052-b4c04f4e3532",
		OSName: "Ubuntu", OSVersion: "24.04", BIOSName: "AMI", BIOSVersion: "1.2.3", BootID: "b00t",
		TPM:              evidence.TPMInfo{Present: true, Version: "2.0"},
		UEFIEnabled:      true,
		SecureBootEfivar: efivar,
		DiskEncryption:   evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2"},
	}
}

func TestNewHostInfo(t *testing.T) {
	sbOn := appraise.SecureBootState{Enabled: true, Authorities: []string{"CN=Microsoft UEFI CA 2011"}, Bank: "SHA384"}
	tests := []struct {
		name        string
		facts       *evidence.HostInfo
		sb          appraise.SecureBootState
		verified    bool
		wantEnabled bool
		wantEfivar  *bool
		wantUEFI    bool
	}{
		{"secure boot on in a replayed PCR 7 is reported on", agentFacts(boolp(true)), sbOn, true, true, boolp(true), true},
		{"a lying efivar that says on while PCR 7 says off gives off", agentFacts(boolp(true)), appraise.SecureBootState{}, true, false, boolp(true), true},
		{"an efivar that says off does not turn a PCR 7 on off", agentFacts(boolp(false)), sbOn, true, true, boolp(false), true},
		{"PCR 7 events that did not replay count as off", agentFacts(boolp(true)), sbOn, false, false, boolp(true), true},
		{"an unreadable efivar stays absent", agentFacts(nil), sbOn, true, true, nil, true},
		{"no agent facts still carry the PCR 7 state", nil, sbOn, true, true, nil, true},
		{"no agent facts and no verified PCR 7 give empty facts", nil, appraise.SecureBootState{}, false, false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hi := NewHostInfo(tt.facts, tt.sb, tt.verified)
			if got := hi.HardwareFeatures.UEFI.Meta.SecureBootEnabled; got != tt.wantEnabled {
				t.Errorf("secure_boot_enabled = %v, want %v", got, tt.wantEnabled)
			}
			if hi.SecureBoot.FromPCR7 != tt.wantEnabled || hi.SecureBoot.Verified != tt.verified {
				t.Errorf("secure_boot = %+v, want from_pcr7 %v verified %v", hi.SecureBoot, tt.wantEnabled, tt.verified)
			}
			switch {
			case tt.wantEfivar == nil && hi.SecureBoot.Efivar != nil:
				t.Errorf("efivar = %v, want absent", *hi.SecureBoot.Efivar)
			case tt.wantEfivar != nil && (hi.SecureBoot.Efivar == nil || *hi.SecureBoot.Efivar != *tt.wantEfivar):
				t.Errorf("efivar = %v, want %v", hi.SecureBoot.Efivar, *tt.wantEfivar)
			}
			if hi.HardwareFeatures.UEFI.Enabled != tt.wantUEFI {
				t.Errorf("UEFI.enabled = %v, want %v", hi.HardwareFeatures.UEFI.Enabled, tt.wantUEFI)
			}
			if tt.wantEnabled && !slices.Equal(hi.SecureBoot.Authorities, sbOn.Authorities) {
				t.Errorf("authorities = %v, want %v", hi.SecureBoot.Authorities, sbOn.Authorities)
			}
			if !tt.wantEnabled && len(hi.SecureBoot.Authorities) != 0 {
				t.Errorf("authorities = %v, want none when Secure Boot is not verified on", hi.SecureBoot.Authorities)
			}
		})
	}
}

func TestNewHostInfoCopiesTheAgentFacts(t *testing.T) {
	facts := agentFacts(boolp(true))
	hi := NewHostInfo(facts, appraise.SecureBootState{Enabled: true}, true)
	want := HostInfo{
		OSName: "Ubuntu", OSVersion: "24.04", BIOSName: "AMI", BIOSVersion: "1.2.3", HostName: "edge-07",
		HardwareUUID: facts.HardwareUUID, BootID: "b00t", DiskEncryption: facts.DiskEncryption,
		HardwareFeatures: HardwareFeatures{
			TPM:  TPMFeature{Enabled: true, Meta: TPMMeta{TPMVersion: "2.0"}},
			UEFI: UEFIFeature{Enabled: true, Meta: UEFIMeta{SecureBootEnabled: true}},
		},
		SecureBoot: SecureBoot{FromPCR7: true, Verified: true, Efivar: boolp(true)},
		Sources: map[string]string{"os_name": SourceClaimed, "os_version": SourceClaimed, "bios_name": SourceClaimed,
			"bios_version": SourceClaimed, "host_name": SourceClaimed, "hardware_uuid": SourceClaimed,
			"hardware_features": SourceClaimed, "boot_id": SourceClaimed, "disk_encryption": SourceClaimed,
			"secure_boot": SourceMeasured},
	}
	gotJSON, _ := json.Marshal(hi)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("host info\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// The efivar is a copy: changing the agent's facts later changes nothing.
	*facts.SecureBootEfivar = false
	if !*hi.SecureBoot.Efivar {
		t.Error("the host info shares the efivar claim with the agent facts")
	}
}

func TestReportJSONUsesTheHVSNames(t *testing.T) {
	b, err := json.Marshal(trustedReport())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"trust_information":{"OVERALL":true,"flavors_trust":{`, `"PLATFORM":{"trust":true,"rules":[`,
		`"host_info":{"os_name":"Ubuntu","os_version":"24.04","bios_name":`, `"hardware_uuid":`,
		`"hardware_features":{"TPM":{"enabled":true,"meta":{"tpm_version":"2.0"}},"UEFI":{"enabled":true,"meta":{"secure_boot_enabled":true}}}`,
		`"secure_boot":{"from_pcr7":true,"verified":true,"efivar":true,`, `"disk_encryption":{"enabled":false}`,
		`"host_status":"CONNECTED"`, `"reset_count":7`, `"rebooted":false`, `"host_id":`, `"expiration":`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report JSON lacks %s\n%s", want, b)
		}
	}
}

func TestTrustedAndFailedParts(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*Report)
		wantTrusted bool
		wantFailed  []string
	}{
		{"a report with every part trusted is trusted", func(*Report) {}, true, nil},
		{"a failed IMA part makes the report untrusted", failIMA, false, []string{"IMA"}},
		{"an evidence fault outside the parts makes the report untrusted", func(r *Report) {
			r.Faults = []appraise.Fault{{Name: appraise.FaultQuoteSignature}}
		}, false, nil},
		{"failed parts come sorted", func(r *Report) {
			for _, p := range []flavor.Part{flavor.PartOS, flavor.PartPlatform} {
				pt := r.TrustInformation.FlavorsTrust[p]
				pt.Trust = false
				r.TrustInformation.FlavorsTrust[p] = pt
			}
			r.TrustInformation.Overall = false
		}, false, []string{"OS", "PLATFORM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := trustedReport()
			tt.mutate(r)
			if got := r.Trusted(); got != tt.wantTrusted {
				t.Errorf("Trusted() = %v, want %v", got, tt.wantTrusted)
			}
			if got := r.FailedParts(); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("FailedParts() = %v, want %v", got, tt.wantFailed)
			}
		})
	}
}

func TestHostInfoSaysWhetherEachFactIsMeasuredOrClaimed(t *testing.T) {
	tests := []struct {
		name       string
		sbVerified bool
		disk       appraise.DiskEncryptionState
		want       map[string]string
	}{
		{
			name:       "secure boot from a replayed PCR 7 and disk encryption from a replayed PCR 15 are measured",
			sbVerified: true,
			disk:       appraise.DiskEncryptionState{Status: appraise.DiskEncryptionMeasured, Volumes: []evidence.CryptVolume{{Name: "root"}}},
			want:       map[string]string{"secure_boot": SourceMeasured, "disk_encryption": SourceMeasured, "os_name": SourceClaimed},
		},
		{
			name: "an unreplayed PCR 7 and the agent's word on disk encryption are claimed",
			disk: appraise.DiskEncryptionState{Status: appraise.DiskEncryptionClaimed, Reason: "no log"},
			want: map[string]string{"secure_boot": SourceClaimed, "disk_encryption": SourceClaimed, "host_name": SourceClaimed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hi := NewHostInfo(agentFacts(boolp(true)), appraise.SecureBootState{Enabled: true}, tt.sbVerified)
			hi.SetDiskEncryption(tt.disk)
			for k, v := range tt.want {
				if hi.Sources[k] != v {
					t.Errorf("source of %s = %q, want %q", k, hi.Sources[k], v)
				}
			}
			if hi.DiskEncryptionStatus != tt.disk.Status || hi.DiskEncryptionReason != tt.disk.Reason ||
				len(hi.MeasuredVolumes) != len(tt.disk.Volumes) {
				t.Errorf("disk encryption status %q (%q) volumes %v, want %+v", hi.DiskEncryptionStatus, hi.DiskEncryptionReason, hi.MeasuredVolumes, tt.disk)
			}
		})
	}
}
