package appraise

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"trustedcompute.io/tc/internal/evidence"
)

// secureBootPCR holds the Secure Boot policy and the authorities that
// verified each boot application.
const secureBootPCR = 7

// SecureBootState is what the replay-verified PCR 7 events say about UEFI
// Secure Boot. Certificates are named by their subject; hashes as "sha256:<hex>".
type SecureBootState struct {
	Enabled bool     `json:"enabled"`
	PK      []string `json:"pk,omitempty"`
	KEK     []string `json:"kek,omitempty"`
	DB      []string `json:"db,omitempty"`
	DBX     []string `json:"dbx,omitempty"`
	// Authorities are the db entries that verified the boot applications
	// (and the shim/MOK entries shim measured), in log order.
	Authorities []string `json:"authorities,omitempty"`
	// DMAProtectionDisabled: the firmware measured that it booted with
	// DMA protection disabled.
	DMAProtectionDisabled bool `json:"dma_protection_disabled,omitempty"`
	// Bank is the PCR bank whose verified digests bound the events.
	Bank string `json:"bank"`
}

// efiGUID is an EFI_GUID in its in-memory (mixed-endian) byte order.
type efiGUID [16]byte

func (g efiGUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:4]),
		binary.LittleEndian.Uint16(g[4:6]), binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

var (
	efiGlobalVariable      = mustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	efiImageSecurityDB     = mustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	efiCertX509            = mustGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
	efiCertSHA256          = mustGUID("c1c41626-504c-4092-aca9-41f936934328")
	errVariableDataTooLong = errors.New("variable name or data longer than the event")
)

// mustGUID parses the canonical text form of a GUID; for constants only.
func mustGUID(s string) efiGUID {
	b, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil || len(b) != 16 {
		panic("bad GUID constant " + s)
	}
	var g efiGUID
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g
}

// variableData is a decoded UEFI_VARIABLE_DATA.
type variableData struct {
	guid efiGUID
	name string
	data []byte
}

func parseVariableData(b []byte) (variableData, error) {
	const header = 16 + 8 + 8
	if len(b) < header {
		return variableData{}, fmt.Errorf("UEFI_VARIABLE_DATA of %d bytes is shorter than its header", len(b))
	}
	var v variableData
	copy(v.guid[:], b)
	nameLen := binary.LittleEndian.Uint64(b[16:])
	dataLen := binary.LittleEndian.Uint64(b[24:])
	rest := uint64(len(b) - header)
	// Bytes past the declared lengths are ignored: some shim versions log
	// them, and the event digest covers them anyway.
	if nameLen > rest/2 || dataLen > rest-2*nameLen {
		return variableData{}, errVariableDataTooLong
	}
	v.name = utf16String(b[header : header+2*nameLen])
	v.data = b[header+2*nameLen : header+2*nameLen+dataLen]
	return v, nil
}

// SecureBoot reads the Secure Boot state from the PCR 7 events. The events
// are trusted only after PCR 7 of one bank replays to its quoted value, and
// then only for what their digests prove: no digest covers an event's type,
// so an event is recognised by its data, and its data only counts when the
// digest is its hash. Any doubt is a fault with Enabled false.
//
// The rules, after the TCG PC Client Platform Firmware Profile (PCR[7]):
//   - PCR 7 holds EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY,
//     EV_SEPARATOR, EV_EFI_ACTION of a known string and EV_EFI_SPDM_*
//     events (EV_NO_ACTION is not extended and not read); any other type
//     is a fault.
//   - The separator is the one event whose digest is the hash of 4 zero
//     bytes, whatever its type; that digest under another type, a
//     separator type without it, an error separator or a second separator
//     is a fault.
//   - Any event whose verified data is the UEFI_VARIABLE_DATA of
//     SecureBoot, PK, KEK, db or dbx measures that policy variable,
//     whatever its type; only a db entry measured as
//     EV_EFI_VARIABLE_AUTHORITY is an authority instead. A policy variable
//     must be measured once, before the separator, as
//     EV_EFI_VARIABLE_DRIVER_CONFIG.
//   - Secure Boot is on only when SecureBoot is 1 and PK, KEK, db and dbx
//     were measured too.
func SecureBoot(log *EventLog, pcrs PCRs) (SecureBootState, []Fault) {
	fail := func(format string, args ...any) (SecureBootState, []Fault) {
		return SecureBootState{}, []Fault{fault(FaultSecureBootUnparsable, format, args...)}
	}
	if log == nil {
		return fail("there is no event log to read Secure Boot from")
	}
	bank, b := "", -1
	for _, name := range []string{evidence.BankSHA384, evidence.BankSHA256, evidence.BankSHA1} {
		if _, quoted := pcrs[name][secureBootPCR]; quoted && log.bankIndex(name) >= 0 {
			bank, b = name, log.bankIndex(name)
			break
		}
	}
	if b < 0 {
		return fail("the quote covers PCR 7 in no bank the event log carries")
	}
	h, _ := bankHash(bank)
	if got := log.replayPCR(b, secureBootPCR, h); !bytes.Equal(got, pcrs[bank][secureBootPCR]) {
		f := pcrFault(FaultSecureBootUnparsable, bank, secureBootPCR, pcrs[bank][secureBootPCR], got,
			"the PCR 7 events do not replay to the quoted value")
		return SecureBootState{}, []Fault{f}
	}

	st := SecureBootState{Bank: bank}
	g := newDigester(h)
	policy := map[string][]byte{}
	separators := 0
	for n, ev := range log.events {
		if ev.index != secureBootPCR || ev.typ == evNoAction {
			continue
		}
		typ := EventTypeName(ev.typ)
		switch g.separatorDigest(ev.digests[b]) {
		case separatorNormal:
			if ev.typ != evSeparator {
				return fail("event %d has the digest of a separator but the type %s", n, typ)
			}
			if separators++; separators > 1 {
				return fail("event %d is a second separator in PCR 7", n)
			}
			continue
		case separatorError:
			return fail("event %d: the firmware measured an error separator into PCR 7", n)
		}
		if !pcr7Types[ev.typ] {
			return fail("event %d: %s does not belong in PCR 7", n, typ)
		}
		data, verified := g.boundData(ev.data, ev.digests[b])
		var v variableData
		isVariable := false
		if verified {
			var err error
			v, err = parseVariableData(data)
			isVariable = err == nil
		}
		switch ev.typ {
		case evSeparator:
			return fail("event %d is an EV_SEPARATOR whose digest is not a separator's", n)
		case evEFIAction:
			if !verified {
				return fail("event %d (%s) has a digest that is not the hash of its data", n, typ)
			}
			switch action := string(bytes.TrimRight(data, "\x00")); action {
			case actionDebugMode:
				return fail("event %d: a UEFI debugger was present during boot", n)
			case actionDMAProtectionDisabled:
				st.DMAProtectionDisabled = true
			default:
				return fail("event %d: EV_EFI_ACTION %q does not belong in PCR 7", n, printable(data))
			}
			continue
		case evEFIVariableDriverConfig, evEFIVariableAuthority:
			if !verified {
				return fail("event %d (%s) has a digest that is not the hash of its data", n, typ)
			}
			if !isVariable {
				_, err := parseVariableData(data)
				return fail("event %d (%s): %v", n, typ, err)
			}
		}
		if !isVariable {
			continue // an SPDM event: bound to PCR 7, not read
		}
		name, isPolicy := policyVariable(v)
		switch {
		case ev.typ == evEFIVariableAuthority && (!isPolicy || name == "db"):
			st.Authorities = append(st.Authorities, authorityName(v))
			continue
		case !isPolicy:
			continue // another variable (SbatLevel, say): bound, not read
		case ev.typ != evEFIVariableDriverConfig:
			return fail("event %d: variable %s is measured as %s, not EV_EFI_VARIABLE_DRIVER_CONFIG", n, name, typ)
		case separators > 0:
			return fail("event %d: variable %s is measured after the separator", n, name)
		}
		if prev, seen := policy[name]; seen {
			if !bytes.Equal(prev, v.data) {
				return fail("event %d: variable %s is measured twice with different values", n, name)
			}
			return fail("event %d: variable %s is measured twice", n, name)
		}
		policy[name] = v.data
	}
	if separators == 0 {
		return fail("PCR 7 has no separator: the firmware's policy cannot be told from later measurements")
	}
	secureBoot, ok := policy["SecureBoot"]
	if !ok {
		return fail("the SecureBoot variable is not measured in PCR 7")
	}
	for _, l := range []struct {
		name string
		list *[]string
	}{{"PK", &st.PK}, {"KEK", &st.KEK}, {"db", &st.DB}, {"dbx", &st.DBX}} {
		data, ok := policy[l.name]
		if !ok {
			continue
		}
		entries, err := signatureList(data)
		if err != nil {
			return fail("variable %s: %v", l.name, err)
		}
		*l.list = entries
	}
	// A SecureBoot variable of zero bytes is how some firmware measures an
	// absent variable: Secure Boot is off.
	switch {
	case len(secureBoot) == 1 && secureBoot[0] == 1:
		for _, name := range []string{"PK", "KEK", "db", "dbx"} {
			if _, ok := policy[name]; !ok {
				return fail("SecureBoot is 1 but the variable %s is not measured before the separator", name)
			}
		}
		st.Enabled = true
	case len(secureBoot) == 0 || (len(secureBoot) == 1 && secureBoot[0] == 0):
	default:
		return fail("the SecureBoot variable holds %d bytes (%x)", len(secureBoot), secureBoot)
	}
	return st, nil
}

// pcr7Types are the event types that belong in PCR 7.
var pcr7Types = map[uint32]bool{
	evEFIVariableDriverConfig: true,
	evEFIVariableAuthority:    true,
	evSeparator:               true,
	evEFIAction:               true,
	evEFISPDMFirmwareBlob:     true,
	evEFISPDMFirmwareConfig:   true,
	evEFISPDMDevicePolicy:     true,
	evEFISPDMDeviceAuthority:  true,
}

// The EV_EFI_ACTION strings firmware measures into PCR 7.
const (
	actionDebugMode             = "UEFI Debug Mode"
	actionDMAProtectionDisabled = "DMA Protection Disabled"
)

// policyVariable names the Secure Boot policy variable a UEFI_VARIABLE_DATA
// holds, if it holds one: its name and its vendor GUID must both match.
func policyVariable(v variableData) (string, bool) {
	switch {
	case v.guid == efiGlobalVariable && (v.name == "SecureBoot" || v.name == "PK" || v.name == "KEK"):
		return v.name, true
	case v.guid == efiImageSecurityDB && (v.name == "db" || v.name == "dbx"):
		return v.name, true
	}
	return "", false
}

type separatorKind int

const (
	separatorNone separatorKind = iota
	separatorNormal
	separatorError
)

// separatorData and errorSeparatorData are the data of a separator event
// and of an error separator.
var (
	separatorData      = []byte{0, 0, 0, 0}
	errorSeparatorData = []byte{0xff, 0xff, 0xff, 0xff}
)

// separatorDigest tells whether a digest is the hash of a separator's
// data: 4 zero bytes, or 0xFFFFFFFF for an error.
func (g *digester) separatorDigest(digest []byte) separatorKind {
	switch {
	case g.is(digest, separatorData):
		return separatorNormal
	case g.is(digest, errorSeparatorData):
		return separatorError
	}
	return separatorNone
}

// boundData returns the part of an event's data that its digest covers:
// all of it, or all but the last byte, which shim before rhboot/shim
// commit 8a27a48 logged in excess in its authority events. It is false
// when the digest covers neither: the data is then unverified.
func (g *digester) boundData(data, digest []byte) ([]byte, bool) {
	if g.is(digest, data) {
		return data, true
	}
	if len(data) > 0 && g.is(digest, data[:len(data)-1]) {
		return data[:len(data)-1], true
	}
	return nil, false
}

// signatureList summarises an EFI_SIGNATURE_LIST sequence (PK, KEK, db, dbx).
func signatureList(b []byte) ([]string, error) {
	var entries []string
	for len(b) > 0 {
		if len(b) < 28 {
			return nil, fmt.Errorf("EFI_SIGNATURE_LIST header needs 28 bytes, has %d", len(b))
		}
		var typ efiGUID
		copy(typ[:], b)
		listSize := binary.LittleEndian.Uint32(b[16:])
		headerSize := binary.LittleEndian.Uint32(b[20:])
		sigSize := binary.LittleEndian.Uint32(b[24:])
		if listSize < 28 || uint64(listSize) > uint64(len(b)) || uint64(headerSize) > uint64(listSize-28) || sigSize < 16 {
			return nil, fmt.Errorf("EFI_SIGNATURE_LIST sizes list=%d header=%d signature=%d do not fit %d bytes",
				listSize, headerSize, sigSize, len(b))
		}
		sigs := b[28+headerSize : listSize]
		if len(sigs)%int(sigSize) != 0 {
			return nil, fmt.Errorf("EFI_SIGNATURE_LIST of %d signature bytes is not a multiple of %d", len(sigs), sigSize)
		}
		for ; len(sigs) > 0; sigs = sigs[sigSize:] {
			entries = append(entries, signatureName(typ, sigs[16:sigSize]))
		}
		b = b[listSize:]
	}
	return entries, nil
}

// signatureName names one EFI_SIGNATURE_DATA payload.
func signatureName(typ efiGUID, data []byte) string {
	switch typ {
	case efiCertX509:
		if c, err := x509.ParseCertificate(data); err == nil {
			return c.Subject.String()
		}
		sum := sha256.Sum256(data)
		return "unparsable x509 sha256:" + hex.EncodeToString(sum[:])
	case efiCertSHA256:
		return "sha256:" + hex.EncodeToString(data)
	}
	sum := sha256.Sum256(data)
	return typ.String() + " sha256:" + hex.EncodeToString(sum[:])
}

// authorityName names the db entry of an EV_EFI_VARIABLE_AUTHORITY event:
// its data is one EFI_SIGNATURE_DATA (owner GUID and certificate) in the
// firmware's events, and a bare value in some of shim's.
func authorityName(v variableData) string {
	if len(v.data) > 16 {
		if c, err := x509.ParseCertificate(v.data[16:]); err == nil {
			return c.Subject.String()
		}
	}
	if c, err := x509.ParseCertificate(v.data); err == nil {
		return c.Subject.String()
	}
	sum := sha256.Sum256(v.data)
	return v.name + " sha256:" + hex.EncodeToString(sum[:])
}
