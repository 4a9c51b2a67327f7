package evidence

import (
	"crypto/sha256"
	"strconv"
	"unicode/utf8"
)

// HostFactsDigest is the SHA-256 of the canonical bytes of the host facts:
// their JSON encoding after one JSON round trip, so that the agent, which
// hashes the facts it sends, and the verifier, which hashes the facts it
// decoded, hash the same bytes (a round trip turns invalid UTF-8 into
// U+FFFD once and for all). Nil facts hash as the JSON null.
func HostFactsDigest(facts *HostInfo) [sha256.Size]byte {
	var buf [1024]byte
	return sha256.Sum256(appendHostFacts(buf[:0], facts))
}

// appendHostFacts appends the canonical bytes of the host facts to b: what
// encoding/json's Marshal gives for the facts after a Marshal and Unmarshal
// (the fields in their order, with their names and omitempty, HTML
// characters and U+2028/U+2029 escaped), written by hand because the round
// trip by reflection cost about a twentieth of a steady report. The
// difference a round trip makes is that each byte of invalid UTF-8 becomes
// U+FFFD itself, not its escape. TestHostFactsEncodeAsTheirJSONRoundTrip
// and FuzzHostFactsDigest hold it to the round trip, every field set.
func appendHostFacts(b []byte, h *HostInfo) []byte {
	if h == nil {
		return append(b, "null"...)
	}
	b = appendKey(b, '{', "version", h.Version)
	b = appendKey(b, ',', "host_name", h.HostName)
	b = appendOmitEmpty(b, "node_name", h.NodeName)
	b = appendKey(b, ',', "hardware_uuid", h.HardwareUUID)
	b = appendKey(b, ',', "os_name", h.OSName)
	b = appendKey(b, ',', "os_version", h.OSVersion)
	b = appendOmitEmpty(b, "kernel_release", h.KernelRelease)
	b = appendKey(b, ',', "bios_name", h.BIOSName)
	b = appendKey(b, ',', "bios_version", h.BIOSVersion)
	b = appendOmitEmpty(b, "bios_date", h.BIOSDate)
	b = appendOmitEmpty(b, "boot_id", h.BootID)
	b = append(b, `,"tpm":{"present":`...)
	b = strconv.AppendBool(b, h.TPM.Present)
	b = appendOmitEmpty(b, "tpm_version", h.TPM.Version)
	b = appendOmitEmpty(b, "manufacturer", h.TPM.Manufacturer)
	b = appendOmitEmpty(b, "vendor_string", h.TPM.VendorString)
	b = appendOmitEmpty(b, "firmware_version", h.TPM.FirmwareVersion)
	b = appendOmitEmpty(b, "spec_revision", h.TPM.SpecRevision)
	if len(h.TPM.ActiveBanks) > 0 {
		b = append(b, `,"active_banks":`...)
		for i, bank := range h.TPM.ActiveBanks {
			b = append(b, listSep(i))
			b = appendJSONString(b, bank)
		}
		b = append(b, ']')
	}
	b = append(b, `},"uefi_enabled":`...)
	b = strconv.AppendBool(b, h.UEFIEnabled)
	if h.SecureBootEfivar != nil {
		b = append(b, `,"secure_boot_efivar":`...)
		b = strconv.AppendBool(b, *h.SecureBootEfivar)
	}
	d := &h.DiskEncryption
	b = append(b, `,"disk_encryption":{"enabled":`...)
	b = strconv.AppendBool(b, d.Enabled)
	b = appendOmitEmpty(b, "root_device", d.RootDevice)
	b = appendOmitEmpty(b, "method", d.Method)
	b = appendOmitEmpty(b, "reason", d.Reason)
	if len(d.Volumes) > 0 {
		b = append(b, `,"volumes":`...)
		for i, v := range d.Volumes {
			b = append(b, listSep(i))
			b = appendKey(b, '{', "name", v.Name)
			b = appendOmitEmpty(b, "uuid", v.UUID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `},"ima_enabled":`...)
	b = strconv.AppendBool(b, h.IMAEnabled)
	b = appendOmitEmpty(b, "agent_version", h.AgentVersion)
	if h.Error != nil {
		b = append(b, `,"error":`...)
		b = appendKey(b, '{', "code", h.Error.Code)
		b = appendKey(b, ',', "message", h.Error.Message)
		b = append(b, '}')
	}
	return append(b, '}')
}

// listSep is what precedes the i-th element of a JSON array.
func listSep(i int) byte {
	if i == 0 {
		return '['
	}
	return ','
}

// appendKey appends sep, the key (which needs no escaping) and the value.
func appendKey(b []byte, sep byte, key, value string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendOmitEmpty appends ,"key":value unless the value is empty.
func appendOmitEmpty(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return appendKey(b, ',', key, value)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json's Marshal writes a string
// read back by Unmarshal: HTML characters, control characters, U+2028 and
// U+2029 escaped, and each byte of invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// QualifyingData is what the agent passes to TPM2_Quote as qualifyingData
// and the verifier expects as the quote's extraData: SHA-256(nonce ||
// HostFactsDigest(facts)). It binds the host facts sent with a quote to
// that quote, so facts taken from another answer, or changed on the way,
// fail the quote.
func QualifyingData(nonce []byte, facts *HostInfo) []byte {
	digest := HostFactsDigest(facts)
	h := sha256.New()
	h.Write(nonce)
	h.Write(digest[:])
	return h.Sum(nil)
}
