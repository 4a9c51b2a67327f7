package measure

import (
	"fmt"
	"strings"
)

// normalizeUUID returns an SMBIOS system UUID in lower-case canonical
// 8-4-4-4-12 form. It accepts the canonical form in any case, with or
// without surrounding braces, and 32 hex digits without hyphens. It rejects
// anything else, and the all-zero and all-ones values, which SMBIOS uses for
// "not set" and "not present".
func normalizeUUID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	var hex string
	switch len(s) {
	case 36:
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return "", fmt.Errorf("%w: %q is not in 8-4-4-4-12 form", ErrHardwareUUID, clip(s))
			}
		}
		hex = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	case 32:
		hex = s
	default:
		return "", fmt.Errorf("%w: %q is not in 8-4-4-4-12 form", ErrHardwareUUID, clip(s))
	}
	hex = strings.ToLower(hex)
	if !isLowerHex(hex) {
		return "", fmt.Errorf("%w: %q holds non-hex characters", ErrHardwareUUID, clip(s))
	}
	switch hex {
	case strings.Repeat("0", 32):
		return "", fmt.Errorf("%w: all zeros means the firmware did not set one", ErrHardwareUUID)
	case strings.Repeat("f", 32):
		return "", fmt.Errorf("%w: all ones means the firmware has none", ErrHardwareUUID)
	}
	return hex[0:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:32], nil
}
