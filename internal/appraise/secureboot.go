package appraise

import (
	"bytes"
	"crypto"
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
// every variable event's digest must be the hash of its data. Any doubt is a
// fault with Enabled false.
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
	seen := map[string]bool{}
	var secureBoot []byte
	separated := false
	for n, ev := range log.events {
		if ev.index != secureBootPCR {
			continue
		}
		switch ev.typ {
		case evSeparator:
			separated = true
			continue
		case evEFIAction:
			if string(ev.data) == "UEFI Debug Mode" {
				return fail("event %d: a UEFI debugger was present during boot", n)
			}
			continue
		case evEFIVariableDriverConfig, evEFIVariableAuthority:
		default:
			continue
		}
		data, ok := boundData(h, ev.typ, ev.data, ev.digests[b])
		if !ok {
			return fail("event %d (%s) has a digest that is not the hash of its data", n, EventTypeName(ev.typ))
		}
		v, err := parseVariableData(data)
		if err != nil {
			return fail("event %d (%s): %v", n, EventTypeName(ev.typ), err)
		}
		if ev.typ == evEFIVariableAuthority {
			st.Authorities = append(st.Authorities, authorityName(v))
			continue
		}
		if separated {
			return fail("event %d: variable %s is measured after the separator", n, v.name)
		}
		var list *[]string
		switch {
		case v.guid == efiGlobalVariable && v.name == "SecureBoot":
		case v.guid == efiGlobalVariable && v.name == "PK":
			list = &st.PK
		case v.guid == efiGlobalVariable && v.name == "KEK":
			list = &st.KEK
		case v.guid == efiImageSecurityDB && v.name == "db":
			list = &st.DB
		case v.guid == efiImageSecurityDB && v.name == "dbx":
			list = &st.DBX
		default:
			continue
		}
		if seen[v.name] {
			return fail("variable %s is measured twice", v.name)
		}
		seen[v.name] = true
		if list == nil {
			secureBoot = v.data
			continue
		}
		entries, err := signatureList(v.data)
		if err != nil {
			return fail("variable %s: %v", v.name, err)
		}
		*list = entries
	}
	if !seen["SecureBoot"] {
		return fail("the SecureBoot variable is not measured in PCR 7")
	}
	// A SecureBoot variable of zero bytes is how some firmware measures an
	// absent variable: Secure Boot is off.
	switch {
	case len(secureBoot) == 1 && secureBoot[0] == 1:
		st.Enabled = true
	case len(secureBoot) == 0 || (len(secureBoot) == 1 && secureBoot[0] == 0):
	default:
		return fail("the SecureBoot variable holds %d bytes (%x)", len(secureBoot), secureBoot)
	}
	return st, nil
}

// boundData returns the part of a variable event's data that its digest
// covers: all of it, or for an authority event all but the last byte, which
// shim before rhboot/shim commit 8a27a48 logged in excess.
func boundData(h crypto.Hash, typ uint32, data, digest []byte) ([]byte, bool) {
	d := h.New()
	d.Write(data)
	if bytes.Equal(d.Sum(nil), digest) {
		return data, true
	}
	if typ == evEFIVariableAuthority && len(data) > 0 {
		d.Reset()
		d.Write(data[:len(data)-1])
		if bytes.Equal(d.Sum(nil), digest) {
			return data[:len(data)-1], true
		}
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
