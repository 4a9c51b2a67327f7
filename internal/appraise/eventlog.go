package appraise

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// Event types of the TCG PC Client Platform Firmware Profile.
const (
	evPrebootCert                = 0x00000000
	evPostCode                   = 0x00000001
	evNoAction                   = 0x00000003
	evSeparator                  = 0x00000004
	evAction                     = 0x00000005
	evEventTag                   = 0x00000006
	evSCRTMContents              = 0x00000007
	evSCRTMVersion               = 0x00000008
	evCPUMicrocode               = 0x00000009
	evPlatformConfigFlags        = 0x0000000a
	evTableOfDevices             = 0x0000000b
	evCompactHash                = 0x0000000c
	evIPL                        = 0x0000000d
	evIPLPartitionData           = 0x0000000e
	evNonhostCode                = 0x0000000f
	evNonhostConfig              = 0x00000010
	evNonhostInfo                = 0x00000011
	evOmitBootDeviceEvents       = 0x00000012
	evEFIEventBase               = 0x80000000
	evEFIVariableDriverConfig    = 0x80000001
	evEFIVariableBoot            = 0x80000002
	evEFIBootServicesApplication = 0x80000003
	evEFIBootServicesDriver      = 0x80000004
	evEFIRuntimeServicesDriver   = 0x80000005
	evEFIGPTEvent                = 0x80000006
	evEFIAction                  = 0x80000007
	evEFIPlatformFirmwareBlob    = 0x80000008
	evEFIHandoffTables           = 0x80000009
	evEFIPlatformFirmwareBlob2   = 0x8000000a
	evEFIHandoffTables2          = 0x8000000b
	evEFIVariableBoot2           = 0x8000000c
	evEFIHCRTMEvent              = 0x80000010
	evEFIVariableAuthority       = 0x800000e0
	evEFISPDMFirmwareBlob        = 0x800000e1
	evEFISPDMFirmwareConfig      = 0x800000e2
	evEFISPDMDevicePolicy        = 0x800000e3
	evEFISPDMDeviceAuthority     = 0x800000e4
)

const (
	// maxPCRIndex is the last PCR of a PC Client TPM.
	maxPCRIndex = 23
	// lastPreOSPCR is the last PCR the firmware log must fully explain.
	lastPreOSPCR             = 9
	specIDSignature          = "Spec ID Event03\x00"
	startupLocalitySignature = "StartupLocality\x00"
	legacyDigestSize         = 20
	maxDigestsPerEvent       = 8
)

var eventTypeNames = map[uint32]string{
	evPrebootCert:                "EV_PREBOOT_CERT",
	evPostCode:                   "EV_POST_CODE",
	evNoAction:                   "EV_NO_ACTION",
	evSeparator:                  "EV_SEPARATOR",
	evAction:                     "EV_ACTION",
	evEventTag:                   "EV_EVENT_TAG",
	evSCRTMContents:              "EV_S_CRTM_CONTENTS",
	evSCRTMVersion:               "EV_S_CRTM_VERSION",
	evCPUMicrocode:               "EV_CPU_MICROCODE",
	evPlatformConfigFlags:        "EV_PLATFORM_CONFIG_FLAGS",
	evTableOfDevices:             "EV_TABLE_OF_DEVICES",
	evCompactHash:                "EV_COMPACT_HASH",
	evIPL:                        "EV_IPL",
	evIPLPartitionData:           "EV_IPL_PARTITION_DATA",
	evNonhostCode:                "EV_NONHOST_CODE",
	evNonhostConfig:              "EV_NONHOST_CONFIG",
	evNonhostInfo:                "EV_NONHOST_INFO",
	evOmitBootDeviceEvents:       "EV_OMIT_BOOT_DEVICE_EVENTS",
	evEFIEventBase:               "EV_EFI_EVENT_BASE",
	evEFIVariableDriverConfig:    "EV_EFI_VARIABLE_DRIVER_CONFIG",
	evEFIVariableBoot:            "EV_EFI_VARIABLE_BOOT",
	evEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
	evEFIBootServicesDriver:      "EV_EFI_BOOT_SERVICES_DRIVER",
	evEFIRuntimeServicesDriver:   "EV_EFI_RUNTIME_SERVICES_DRIVER",
	evEFIGPTEvent:                "EV_EFI_GPT_EVENT",
	evEFIAction:                  "EV_EFI_ACTION",
	evEFIPlatformFirmwareBlob:    "EV_EFI_PLATFORM_FIRMWARE_BLOB",
	evEFIHandoffTables:           "EV_EFI_HANDOFF_TABLES",
	evEFIPlatformFirmwareBlob2:   "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
	evEFIHandoffTables2:          "EV_EFI_HANDOFF_TABLES2",
	evEFIVariableBoot2:           "EV_EFI_VARIABLE_BOOT2",
	evEFIHCRTMEvent:              "EV_EFI_HCRTM_EVENT",
	evEFIVariableAuthority:       "EV_EFI_VARIABLE_AUTHORITY",
	evEFISPDMFirmwareBlob:        "EV_EFI_SPDM_FIRMWARE_BLOB",
	evEFISPDMFirmwareConfig:      "EV_EFI_SPDM_FIRMWARE_CONFIG",
	evEFISPDMDevicePolicy:        "EV_EFI_SPDM_DEVICE_POLICY",
	evEFISPDMDeviceAuthority:     "EV_EFI_SPDM_DEVICE_AUTHORITY",
}

// EventTypeName returns the TCG name of an event type, or its number in hex.
func EventTypeName(t uint32) string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("%#08x", t)
}

// EventLogError says where and why a TCG event log does not decode.
type EventLogError struct {
	// Offset is the byte offset of the event that failed, Event its number.
	Offset, Event int
	Reason        string
}

func (e *EventLogError) Error() string {
	return fmt.Sprintf("event log: event %d at offset %d: %s", e.Event, e.Offset, e.Reason)
}

// EventLog is a decoded TCG PC Client event log: either crypto-agile (a
// Spec ID event followed by TCG_PCR_EVENT2 records) or the legacy SHA-1 format.
type EventLog struct {
	// algs are the digest algorithms of the log in Spec ID order, with the
	// bank name ("" for a bank we do not know) and digest size.
	algs   []logAlg
	events []rawEvent
	// locality is the startup locality announced for PCR 0, if any.
	locality byte
}

type logAlg struct {
	id   tpm2.TPMAlgID
	bank string
	size int
}

type rawEvent struct {
	// index is the PCR; firmware logs hold events with indexes past 23
	// (0xffffffff, say), which match no PCR and so never replay.
	index   int
	typ     uint32
	digests [][]byte // in the order of EventLog.algs
	data    []byte
}

// Event is one event of one bank, as flavors compare them. Only Index and
// Digest are proven by the replay. No digest covers the type: Type and
// TypeName are always the log's claim, and no decision reads them without
// checking them against the digest and the data (see SecureBoot).
type Event struct {
	Index    int    `json:"pcr_index"`
	Type     uint32 `json:"type_id"`
	TypeName string `json:"type_name"`
	Digest   string `json:"digest"`
	// Description is read from Data for people (an EFI variable name, an
	// action string, ...).
	Description string `json:"description,omitempty"`
	// Verified is true when Digest is the hash of Data (less the byte old
	// shim versions logged in excess), so that Description is what was
	// measured. When false, Data and Description are unverified claims: the
	// digest of a boot application covers its image, not its device path.
	Verified bool `json:"verified"`
	// Data is the raw event data; Verified says whether the digest covers it.
	Data []byte `json:"-"`
}

// logReader reads little-endian fields (big-endian ones, the TPM's wire
// order, with big) and remembers the first failure.
type logReader struct {
	b   []byte
	off int
	err string
	big bool
}

func (r *logReader) order() binary.ByteOrder {
	if r.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (r *logReader) bytes(n int) []byte {
	if r.err != "" {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Sprintf("needs %d bytes at offset %d, has %d", n, r.off, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *logReader) u8() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *logReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return r.order().Uint16(b)
	}
	return 0
}

func (r *logReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return r.order().Uint32(b)
	}
	return 0
}

func (r *logReader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return r.order().Uint64(b)
	}
	return 0
}

// ParseEventLog decodes a TCG PC Client binary event log
// (binary_bios_measurements). It checks structure only; Replay checks the
// log against quoted PCR values.
func ParseEventLog(raw []byte) (*EventLog, error) {
	if len(raw) == 0 {
		return nil, &EventLogError{Reason: "empty event log"}
	}
	r := &logReader{b: raw}
	fail := func(n, off int) (*EventLog, error) {
		return nil, &EventLogError{Offset: off, Event: n, Reason: r.err}
	}
	// The first event is always in the SHA-1 format.
	first, ok := readLegacyEvent(r)
	if !ok {
		return fail(0, 0)
	}
	log := &EventLog{}
	if first.typ != evNoAction || !bytes.HasPrefix(first.data, []byte(specIDSignature)) {
		log.algs = []logAlg{{id: tpm2.TPMAlgSHA1, bank: evidence.BankSHA1, size: legacyDigestSize}}
		log.events = append(log.events, first)
		for n := 1; r.off < len(raw); n++ {
			off := r.off
			ev, ok := readLegacyEvent(r)
			if !ok {
				return fail(n, off)
			}
			log.events = append(log.events, ev)
		}
		return log, nil
	}
	if first.index != 0 {
		return nil, specIDError("Spec ID event in PCR %d, not 0", first.index)
	}
	algs, err := parseSpecID(first.data)
	if err != nil {
		return nil, err
	}
	log.algs = algs
	// No event is shorter than its header and digests, so the rest of the
	// log holds at most that many: the event slice never grows, and it is
	// bounded by the log's size. The events' digest lists are cut from
	// blocks of 64 events' worth.
	least := 4 + 4 + 4 + 4
	for _, a := range algs {
		least += 2 + a.size
	}
	if most := (len(raw) - r.off) / least; most > 0 {
		log.events = make([]rawEvent, 0, most)
	}
	digests := &slab[[]byte]{block: 64 * len(algs)}
	for n := 1; r.off < len(raw); n++ {
		off := r.off
		ev, ok := readEvent2(r, algs, digests)
		if !ok {
			return fail(n, off)
		}
		if ev.typ == evNoAction && ev.index == 0 && bytes.HasPrefix(ev.data, []byte(startupLocalitySignature)) &&
			len(ev.data) == len(startupLocalitySignature)+1 {
			log.locality = ev.data[len(startupLocalitySignature)]
		}
		log.events = append(log.events, ev)
	}
	return log, nil
}

func readLegacyEvent(r *logReader) (rawEvent, bool) {
	index := r.u32()
	typ := r.u32()
	digest := r.bytes(legacyDigestSize)
	data := r.bytes(int(r.u32()))
	return rawEvent{index: int(index), typ: typ, digests: [][]byte{digest}, data: data}, r.err == ""
}

func readEvent2(r *logReader, algs []logAlg, digests *slab[[]byte]) (rawEvent, bool) {
	index := r.u32()
	typ := r.u32()
	count := r.u32()
	if r.err == "" && int(count) != len(algs) {
		r.err = fmt.Sprintf("event has %d digests, the log declares %d algorithms", count, len(algs))
	}
	ev := rawEvent{index: int(index), typ: typ, digests: digests.take(len(algs))}
	for i := 0; r.err == "" && i < int(count); i++ {
		id := tpm2.TPMAlgID(r.u16())
		j := algIndex(algs, id)
		switch {
		case r.err != "":
		case j < 0:
			r.err = fmt.Sprintf("digest of algorithm %#04x the log does not declare", uint16(id))
		case ev.digests[j] != nil:
			r.err = fmt.Sprintf("two digests of algorithm %#04x", uint16(id))
		default:
			ev.digests[j] = r.bytes(algs[j].size)
		}
	}
	ev.data = r.bytes(int(r.u32()))
	return ev, r.err == ""
}

func algIndex(algs []logAlg, id tpm2.TPMAlgID) int {
	for i, a := range algs {
		if a.id == id {
			return i
		}
	}
	return -1
}

// specIDError is the *EventLogError of a bad Spec ID event (event 0, at
// offset 0). The reason names the event as the TCG specification does.
func specIDError(format string, args ...any) error {
	return &EventLogError{Reason: fmt.Sprintf(format, args...)}
}

// parseSpecID decodes the TCG_EfiSpecIdEvent that opens a crypto-agile log.
// Its errors are *EventLogError.
func parseSpecID(data []byte) ([]logAlg, error) {
	r := &logReader{b: data}
	r.bytes(len(specIDSignature))
	r.u32() // platformClass
	r.u8()  // specVersionMinor
	major := r.u8()
	r.u8() // specErrata
	r.u8() // uintnSize
	n := r.u32()
	if r.err == "" && (n == 0 || n > maxDigestsPerEvent) {
		return nil, specIDError("Spec ID event declares %d algorithms", n)
	}
	var algs []logAlg
	for i := 0; r.err == "" && i < int(n); i++ {
		id := tpm2.TPMAlgID(r.u16())
		size := int(r.u16())
		if r.err != "" {
			break
		}
		if algIndex(algs, id) >= 0 {
			return nil, specIDError("Spec ID event declares algorithm %#04x twice", uint16(id))
		}
		bank := bankName(id)
		if h, ok := bankHash(bank); ok && h.Size() != size {
			return nil, specIDError("Spec ID event gives %s a digest size of %d", bank, size)
		}
		if size == 0 || size > 64 {
			return nil, specIDError("Spec ID event gives algorithm %#04x a digest size of %d", uint16(id), size)
		}
		algs = append(algs, logAlg{id: id, bank: bank, size: size})
	}
	vendorSize := int(r.u8())
	r.bytes(vendorSize)
	if r.err != "" {
		return nil, specIDError("Spec ID event: %s", r.err)
	}
	if major != 2 {
		return nil, specIDError("Spec ID event has spec version major %d, not 2", major)
	}
	return algs, nil
}

// Banks returns the names of the banks the log carries digests for.
func (l *EventLog) Banks() []string {
	var banks []string
	for _, a := range l.algs {
		if a.bank != "" {
			banks = append(banks, a.bank)
		}
	}
	return banks
}

func (l *EventLog) bankIndex(bank string) int {
	for i, a := range l.algs {
		if a.bank == bank && bank != "" {
			return i
		}
	}
	return -1
}

// Events returns the events of one bank in log order, or nil when the log
// has no digests for that bank.
func (l *EventLog) Events(bank string) []Event {
	return l.publicEvents(bank, nil)
}

// publicEvents returns the events of one bank in log order, only those of
// the PCRs in keep when keep is not nil; nil when the log has no digests
// for that bank. The events' digests are cut from one hex string.
func (l *EventLog) publicEvents(bank string, keep []int) []Event {
	b := l.bankIndex(bank)
	if b < 0 {
		return nil
	}
	kept := func(ev rawEvent) bool {
		return keep == nil || slices.Contains(keep, ev.index)
	}
	n, size := 0, 0
	for _, ev := range l.events {
		if kept(ev) {
			n++
			size += 2 * len(ev.digests[b])
		}
	}
	var hexes strings.Builder
	hexes.Grow(size)
	var buf [2 * maxDigestSize]byte
	for _, ev := range l.events {
		if kept(ev) {
			hexes.Write(buf[:hex.Encode(buf[:], ev.digests[b])])
		}
	}
	digests := hexes.String()
	h, _ := bankHash(bank)
	g := newDigester(h)
	events := make([]Event, 0, n)
	for _, ev := range l.events {
		if !kept(ev) {
			continue
		}
		_, verified := g.boundData(ev.data, ev.digests[b])
		digest := digests[:2*len(ev.digests[b])]
		digests = digests[len(digest):]
		events = append(events, Event{
			Index:       ev.index,
			Type:        ev.typ,
			TypeName:    EventTypeName(ev.typ),
			Digest:      digest,
			Description: describe(ev.typ, ev.data),
			Verified:    verified,
			Data:        ev.data,
		})
	}
	return events
}

// describe summarises event data for people reading a report.
func describe(typ uint32, data []byte) string {
	switch typ {
	case evEFIVariableDriverConfig, evEFIVariableBoot, evEFIVariableBoot2, evEFIVariableAuthority:
		if v, err := parseVariableData(data); err == nil {
			return v.name
		}
		return ""
	case evSCRTMVersion:
		return utf16String(data)
	case evSeparator:
		if bytes.Equal(data, []byte{0, 0, 0, 0}) {
			return "separator"
		}
		return "error separator"
	case evPostCode, evAction, evEFIAction, evIPL, evSCRTMContents:
		return printable(data)
	}
	return ""
}

func printable(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	const limit = 256
	if len(b) > limit {
		b = b[:limit]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '.'
		}
		return r
	}, string(b))
}

func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// replayPCR folds the digests of one bank into the value of one PCR.
func (l *EventLog) replayPCR(bank, index int, h crypto.Hash) []byte {
	value := make([]byte, h.Size())
	if index == 0 {
		value[len(value)-1] = l.locality
	}
	d := h.New()
	for _, ev := range l.events {
		if ev.index != index || ev.typ == evNoAction {
			continue
		}
		d.Reset()
		d.Write(value)
		d.Write(ev.digests[bank])
		value = d.Sum(value[:0])
	}
	return value
}

func (l *EventLog) hasEvents(index int) bool {
	for _, ev := range l.events {
		if ev.index == index && ev.typ != evNoAction {
			return true
		}
	}
	return false
}

// Replay replays the log per bank against verified quote PCR values and
// returns one FaultEventLogReplay per PCR that disagrees. It replays every
// quoted PCR from 0 to 9 (the pre-OS and boot loader PCRs, which the
// firmware log must fully explain, so a non-zero PCR without events is a
// fault) and every other quoted PCR the log has events for.
func (l *EventLog) Replay(pcrs PCRs) []Fault {
	faults, _ := l.replay(pcrs)
	return faults
}

// replay is Replay that also returns the PCRs that replayed, by bank.
func (l *EventLog) replay(pcrs PCRs) ([]Fault, map[string][]int) {
	if len(pcrs) == 0 {
		return []Fault{fault(FaultEventLogReplay, "there are no quoted PCR values to replay the event log against")}, nil
	}
	var faults []Fault
	ok := map[string][]int{}
	banks := make([]string, 0, len(pcrs))
	for bank := range pcrs {
		banks = append(banks, bank)
	}
	sort.Strings(banks)
	for _, bank := range banks {
		h, known := bankHash(bank)
		b := l.bankIndex(bank)
		if !known || b < 0 {
			f := fault(FaultEventLogReplay, "the event log has no %s digests", bank)
			f.PCRBank = bank
			faults = append(faults, f)
			continue
		}
		for _, i := range sortedIndexes(pcrs[bank]) {
			if i > lastPreOSPCR && !l.hasEvents(i) {
				continue
			}
			quoted := pcrs[bank][i]
			if got := l.replayPCR(b, i, h); !bytes.Equal(got, quoted) {
				faults = append(faults, pcrFault(FaultEventLogReplay, bank, i, quoted, got,
					"the event log does not replay to the quoted PCR value"))
				continue
			}
			ok[bank] = append(ok[bank], i)
		}
	}
	return faults, ok
}
