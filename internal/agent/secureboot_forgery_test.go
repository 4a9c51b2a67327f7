package agent_test

import (
	"bytes"
	"crypto"
	_ "crypto/sha256" // the log's digest algorithms
	_ "crypto/sha512"
	"encoding/binary"
	"slices"
	"testing"
	"time"
	"unicode/utf16"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// TestSecureBootForgedOnInARealTPMIsNotOn plays issue 12's attack against a
// real TPM: the node booted the firmware of the Secure Boot off capture;
// root relabels PCR 7's separator EV_EFI_ACTION and the firmware's
// SecureBoot=0 event EV_EFI_VARIABLE_BOOT, appends a SecureBoot=1 event
// and extends its digests into PCR 7 of the TPM. The log replays to the
// quote, and Secure Boot must still not read on.
func TestSecureBootForgedOnInARealTPMIsNotOn(t *testing.T) {
	n := bootNodeWith(t, tpmtest.New(t).Spec(), forgeSecureBootOn(t, sandbox.BootLogSecureBootOff), nil)
	req, resp := n.quote(t)
	v := appraise.Appraise(appraise.Input{AKPublic: n.akPublic(t), Request: req, Response: resp}, time.Now())
	if v.Quote == nil {
		t.Fatalf("the quote did not verify: %v", v.Faults)
	}
	if v.SecureBoot.Enabled {
		t.Fatalf("Secure Boot reads on; faults %v", v.Faults)
	}
	if names := faultNames(v); !slices.Equal(names, []string{appraise.FaultSecureBootUnparsable}) {
		t.Fatalf("faults %v, want the forged log to replay and Secure Boot to be unproven", v.Faults)
	}
}

// forgeSecureBootOn rewrites a crypto-agile TCG event log as issue 12's
// attacker does. Relabelling changes no digest; the appended event's
// digests are the hashes of its data, which booting the log extends.
func forgeSecureBootOn(t *testing.T, raw []byte) []byte {
	t.Helper()
	const (
		evSeparator, evEFIAction          = 0x00000004, 0x80000007
		evDriverConfig, evEFIVariableBoot = 0x80000001, 0x80000002
	)
	u32 := func(b []byte) int { return int(binary.LittleEndian.Uint32(b)) }
	// The Spec ID event: TCG_PCClientPCREvent, its data TCG_EfiSpecIdEvent.
	spec := raw[32 : 32+u32(raw[28:])]
	sizes := map[uint16]int{}
	var algs []uint16
	for i, off := 0, 28; i < u32(spec[24:]); i, off = i+1, off+4 {
		id := binary.LittleEndian.Uint16(spec[off:])
		algs = append(algs, id)
		sizes[id] = int(binary.LittleEndian.Uint16(spec[off+2:]))
	}
	out := bytes.Clone(raw[:32+len(spec)])
	relabelled := 0
	for off := len(out); off < len(raw); {
		start := off
		pcr, typ := u32(raw[off:]), u32(raw[off+4:])
		off += 12
		for range u32(raw[off-4:]) {
			off += 2 + sizes[binary.LittleEndian.Uint16(raw[off:])]
		}
		data := raw[off+4 : off+4+u32(raw[off:])]
		off += 4 + len(data)
		ev := bytes.Clone(raw[start:off])
		if pcr == 7 && typ == evSeparator {
			binary.LittleEndian.PutUint32(ev[4:], evEFIAction)
			relabelled++
		}
		if pcr == 7 && typ == evDriverConfig && bytes.Contains(data, ucs2("SecureBoot")) {
			binary.LittleEndian.PutUint32(ev[4:], evEFIVariableBoot)
			relabelled++
		}
		out = append(out, ev...)
	}
	if relabelled != 2 {
		t.Fatalf("relabelled %d events, want the PCR 7 separator and the SecureBoot variable", relabelled)
	}
	// UEFI_VARIABLE_DATA: EFI_GLOBAL_VARIABLE, name length, data length, name, data.
	data := []byte{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}
	data = binary.LittleEndian.AppendUint64(data, uint64(len("SecureBoot")))
	data = binary.LittleEndian.AppendUint64(data, 1)
	data = append(append(data, ucs2("SecureBoot")...), 1)
	out = binary.LittleEndian.AppendUint32(out, 7)
	out = binary.LittleEndian.AppendUint32(out, evDriverConfig)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(algs)))
	for _, id := range algs {
		h := map[uint16]crypto.Hash{0x0b: crypto.SHA256, 0x0c: crypto.SHA384}[id]
		if h == 0 {
			t.Fatalf("the log has digests of algorithm %#x", id)
		}
		d := h.New()
		d.Write(data)
		out = binary.LittleEndian.AppendUint16(out, id)
		out = d.Sum(out)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

func ucs2(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}
