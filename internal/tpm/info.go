package tpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/evidence"
)

// properties reads the fixed TPM properties from TPM_PT_FAMILY_INDICATOR on.
func (t *TPM) properties() (map[tpm2.TPMPT]uint32, error) {
	props := map[tpm2.TPMPT]uint32{}
	next := uint32(tpm2.TPMPTFamilyIndicator)
	for {
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapTPMProperties,
			Property:      next,
			PropertyCount: 64,
		}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("get tpm properties: %w", err)
		}
		list, err := rsp.CapabilityData.Data.TPMProperties()
		if err != nil {
			return nil, fmt.Errorf("decode tpm properties: %w", err)
		}
		for _, p := range list.TPMProperty {
			props[p.Property] = p.Value
		}
		if !rsp.MoreData || len(list.TPMProperty) == 0 {
			return props, nil
		}
		next = uint32(list.TPMProperty[len(list.TPMProperty)-1].Property) + 1
	}
}

// property reads one TPM property; 0 when the TPM does not report it.
func (t *TPM) property(p tpm2.TPMPT) (uint32, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(p),
		PropertyCount: 1,
	}.Execute(t.t)
	if err != nil {
		return 0, fmt.Errorf("get tpm property %#x: %w", uint32(p), err)
	}
	list, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return 0, fmt.Errorf("decode tpm property %#x: %w", uint32(p), err)
	}
	for _, prop := range list.TPMProperty {
		if prop.Property == p {
			return prop.Value, nil
		}
	}
	return 0, nil
}

// Info describes the TPM from its fixed properties and active banks.
func (t *TPM) Info() (evidence.TPMInfo, error) {
	props, err := t.properties()
	if err != nil {
		return evidence.TPMInfo{}, err
	}
	banks, err := t.ActiveBanks()
	if err != nil {
		return evidence.TPMInfo{}, err
	}
	var vendor []byte
	for _, p := range []tpm2.TPMPT{tpm2.TPMPTVendorString1, tpm2.TPMPTVendorString2, tpm2.TPMPTVendorString3, tpm2.TPMPTVendorString4} {
		vendor = append(vendor, propertyChars(props[p])...)
	}
	fw1, fw2 := props[tpm2.TPMPTFirmwareVersion1], props[tpm2.TPMPTFirmwareVersion2]
	rev := props[tpm2.TPMPTRevision]
	return evidence.TPMInfo{
		Present:         true,
		Version:         "2.0",
		Manufacturer:    cleanChars(propertyChars(props[tpm2.TPMPTManufacturer])),
		VendorString:    cleanChars(vendor),
		FirmwareVersion: fmt.Sprintf("%d.%d.%d.%d", fw1>>16, fw1&0xffff, fw2>>16, fw2&0xffff),
		SpecRevision:    fmt.Sprintf("%d.%02d", rev/100, rev%100),
		ActiveBanks:     banks,
	}, nil
}

func propertyChars(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

// cleanChars turns the 4-byte character groups of TPM properties into a
// string: NULs dropped, non-printable bytes dropped, spaces trimmed.
func cleanChars(b []byte) string {
	b = bytes.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, b)
	return strings.TrimSpace(string(b))
}

// ResetCount returns clockInfo.resetCount: the number of TPM resets (boots)
// since the last TPM2_Clear.
func (t *TPM) ResetCount() (uint32, error) {
	rsp, err := tpm2.ReadClock{}.Execute(t.t)
	if err != nil {
		return 0, fmt.Errorf("read tpm clock: %w", err)
	}
	return rsp.CurrentTime.ClockInfo.ResetCount, nil
}
