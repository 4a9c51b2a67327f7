package appraise

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func TestSecureBootReadsTheVerifiedPolicy(t *testing.T) {
	l := newBootLog(t, 1, 0)
	st, faults := SecureBoot(mustParse(t, l.bytes()), l.quoted(7))
	if len(faults) > 0 {
		t.Fatalf("faults: %v", faults)
	}
	want := SecureBootState{
		Enabled:     true,
		PK:          []string{"CN=Test Platform Key,O=Trusted Compute Test"},
		KEK:         []string{"CN=Test KEK,O=Trusted Compute Test"},
		DB:          []string{"CN=Test DB Signer,O=Trusted Compute Test"},
		DBX:         []string{"sha256:" + strings.Repeat("db", 32)},
		Authorities: []string{"CN=Test DB Signer,O=Trusted Compute Test"},
		Bank:        evidence.BankSHA384,
	}
	if !equalState(st, want) {
		t.Fatalf("state = %+v\nwant    %+v", st, want)
	}
}

func equalState(a, b SecureBootState) bool {
	return a.Enabled == b.Enabled && a.Bank == b.Bank && slices.Equal(a.PK, b.PK) && slices.Equal(a.KEK, b.KEK) &&
		slices.Equal(a.DB, b.DB) && slices.Equal(a.DBX, b.DBX) && slices.Equal(a.Authorities, b.Authorities)
}

func TestSecureBootDisabledIsReadAsDisabled(t *testing.T) {
	l := newBootLog(t, 0, 0)
	st, faults := SecureBoot(mustParse(t, l.bytes()), l.quoted(7))
	if len(faults) > 0 || st.Enabled {
		t.Fatalf("state %+v faults %v, want disabled without fault", st, faults)
	}
}

func TestSecureBootFaults(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T) (*EventLog, PCRs)
	}{
		{"no event log", func(t *testing.T) (*EventLog, PCRs) {
			return nil, PCRs{evidence.BankSHA256: {7: make([]byte, 32)}}
		}},
		{"PCR 7 not covered by the quote", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			return mustParse(t, l.bytes()), l.quoted(0)
		}},
		{"PCR 7 quoted only in a bank the log lacks", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			return mustParse(t, l.bytes()), PCRs{evidence.BankSHA1: {7: make([]byte, 20)}}
		}},
		{"PCR 7 events that do not replay", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			p := l.quoted(7)
			p[evidence.BankSHA384][7] = bytes.Repeat([]byte{1}, 48)
			return mustParse(t, l.bytes()), p
		}},
		{"no SecureBoot variable", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "PK", nil))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"the SecureBoot variable measured twice", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a SecureBoot variable of two bytes", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1, 1}))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a variable event whose data is not what its digest covers", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measureOf(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}),
				variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a variable event with a truncated name", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			v := variable(efiGlobalVariable, "SecureBoot", []byte{1})
			b.measure(7, evEFIVariableDriverConfig, v[:len(v)-5])
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a UEFI debugger during boot", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			b.measure(7, evEFIAction, []byte("UEFI Debug Mode"))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a policy variable measured after the separator", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evSeparator, []byte{0, 0, 0, 0})
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a db whose signature list overruns the variable", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			list := sigList(efiCertSHA256, make([]byte, 32))
			list[16] = 0xff
			b.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "db", list))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"an event type that does not belong in PCR 7", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			l.measure(7, evEFIVariableBoot, variable(efiGlobalVariable, "BootOrder", []byte{0, 0}))
			return mustParse(t, l.bytes()), l.quoted(7)
		}},
		{"the separator's digest under another type", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			b.measure(7, evEFIAction, []byte{0, 0, 0, 0})
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"an EV_SEPARATOR whose digest is not a separator's", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			b.measureOf(7, evSeparator, []byte{0, 0, 0, 0}, []byte("not a separator"))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"an error separator", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			b.measure(7, evSeparator, []byte{0xff, 0xff, 0xff, 0xff})
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a second separator", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			l.measure(7, evSeparator, []byte{0, 0, 0, 0})
			return mustParse(t, l.bytes()), l.quoted(7)
		}},
		{"no separator", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{0}))
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"an EV_EFI_ACTION of an unknown string", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			l.measure(7, evEFIAction, []byte("Calling EFI Application from Boot Option"))
			return mustParse(t, l.bytes()), l.quoted(7)
		}},
		{"an EV_EFI_ACTION whose digest is not the hash of its string", func(t *testing.T) (*EventLog, PCRs) {
			l := newBootLog(t, 1, 0)
			l.measureOf(7, evEFIAction, []byte(actionDMAProtectionDisabled), []byte("anything"))
			return mustParse(t, l.bytes()), l.quoted(7)
		}},
		{"the SecureBoot variable measured twice with one value", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			b.measure(7, evSeparator, []byte{0, 0, 0, 0})
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"a policy variable under an SPDM type", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFISPDMDevicePolicy, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			b.measure(7, evSeparator, []byte{0, 0, 0, 0})
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
		{"SecureBoot on while db is measured as an authority", func(t *testing.T) (*EventLog, PCRs) {
			b := newLogBuilder(evidence.BankSHA256)
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "SecureBoot", []byte{1}))
			list := sigList(efiCertSHA256, make([]byte, 32))
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "PK", list))
			b.measure(7, evEFIVariableDriverConfig, variable(efiGlobalVariable, "KEK", list))
			b.measure(7, evEFIVariableAuthority, variable(efiImageSecurityDB, "db", list))
			b.measure(7, evEFIVariableDriverConfig, variable(efiImageSecurityDB, "dbx", list))
			b.measure(7, evSeparator, []byte{0, 0, 0, 0})
			return mustParse(t, b.bytes()), b.quoted(7)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a fault and not enabled", func(t *testing.T) {
			log, pcrs := tt.build(t)
			st, faults := SecureBoot(log, pcrs)
			if st.Enabled || !slices.Equal(faultNames(faults), []string{FaultSecureBootUnparsable}) {
				t.Fatalf("state %+v faults %v, want disabled with one %s", st, faults, FaultSecureBootUnparsable)
			}
		})
	}
}

func TestSecureBootAcceptsShimsExtraAuthorityByte(t *testing.T) {
	l := newBootLog(t, 1, 0)
	// Old shim logged one byte past the data its digest covers.
	shim := variable(efiImageSecurityDB, "Shim", testCert(t, "Test Vendor"))
	l.measureOf(7, evEFIVariableAuthority, append(bytes.Clone(shim), 0), shim)
	st, faults := SecureBoot(mustParse(t, l.bytes()), l.quoted(7))
	if len(faults) > 0 || len(st.Authorities) != 2 || st.Authorities[1] != "CN=Test Vendor,O=Trusted Compute Test" {
		t.Fatalf("state %+v faults %v", st, faults)
	}
}

func TestSecureBootAcceptsWhatFirmwareAndShimMeasure(t *testing.T) {
	l := newBootLog(t, 1, 0)
	// shim's SbatLevel after the separator, an authority it verified with
	// its vendor certificate, an SPDM device policy, and the action
	// firmware measures when DMA protection is off.
	shimLock := mustGUID("605dab50-e046-4300-abb6-3dd810dd8b23")
	l.measure(7, evEFIVariableDriverConfig, variable(shimLock, "SbatLevel", []byte("sbat,1,2021030218\n")))
	l.measure(7, evEFIVariableAuthority, variable(shimLock, "Shim", testCert(t, "Test Vendor")))
	l.measure(7, evEFISPDMDevicePolicy, variable(efiImageSecurityDB, "devdb", nil))
	l.measure(7, evEFIAction, []byte(actionDMAProtectionDisabled))
	st, faults := SecureBoot(mustParse(t, l.bytes()), l.quoted(7))
	if len(faults) > 0 || !st.Enabled || !st.DMAProtectionDisabled || len(st.Authorities) != 2 ||
		st.Authorities[1] != "CN=Test Vendor,O=Trusted Compute Test" {
		t.Fatalf("state %+v faults %v", st, faults)
	}
}

func TestEventsSayWhetherTheirDigestCoversTheirData(t *testing.T) {
	l := newBootLog(t, 1, 0)
	log := mustParse(t, l.bytes())
	for _, bank := range []string{evidence.BankSHA256, evidence.BankSHA384} {
		got := map[string]bool{}
		for _, ev := range log.Events(bank) {
			got[ev.TypeName+" "+ev.Description] = ev.Verified
		}
		want := map[string]bool{
			"EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot": true,
			"EV_SEPARATOR separator":                   true,
			"EV_EFI_VARIABLE_AUTHORITY db":             true,
			// The digest of a firmware blob or a boot application covers
			// the code, not the data that describes it.
			"EV_EFI_PLATFORM_FIRMWARE_BLOB ":    false,
			"EV_EFI_BOOT_SERVICES_APPLICATION ": false,
		}
		for name, verified := range want {
			if v, ok := got[name]; !ok || v != verified {
				t.Errorf("%s %q: verified %t (present %t), want %t", bank, name, v, ok, verified)
			}
		}
	}
}

func TestGUIDsReadAsTheirCanonicalText(t *testing.T) {
	const s = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	g := mustGUID(s)
	if g.String() != s || g[0] != 0x61 || g[3] != 0x8b {
		t.Fatalf("GUID %s = % x", g, g[:])
	}
}
