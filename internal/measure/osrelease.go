package measure

import (
	"strings"
)

// parseOSRelease parses an os-release(5) file: KEY=VALUE lines, where VALUE
// is unquoted, or in single quotes (taken literally), or in double quotes
// (where \", \\, \$ and \` stand for the escaped character). A backslash in an
// unquoted value escapes the next character. Concatenated quoted strings are
// not supported, as the format says. Comments, blank lines and malformed lines
// are skipped, as systemd does; a later assignment of a key wins.
func parseOSRelease(text string) map[string]string {
	vars := make(map[string]string)
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !validEnvKey(key) {
			continue
		}
		value, ok := unquoteOSReleaseValue(raw)
		if !ok {
			continue
		}
		vars[key] = value
	}
	return vars
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func unquoteOSReleaseValue(raw string) (string, bool) {
	if raw == "" {
		return "", true
	}
	switch raw[0] {
	case '\'':
		if len(raw) < 2 || raw[len(raw)-1] != '\'' {
			return "", false
		}
		inner := raw[1 : len(raw)-1]
		if strings.ContainsRune(inner, '\'') {
			return "", false
		}
		return inner, true
	case '"':
		var b strings.Builder
		for i := 1; i < len(raw); i++ {
			c := raw[i]
			switch c {
			case '\\':
				if i+1 < len(raw) && strings.IndexByte("\"\\$`", raw[i+1]) >= 0 {
					i++
					b.WriteByte(raw[i])
				} else {
					b.WriteByte(c)
				}
			case '"':
				if i != len(raw)-1 {
					return "", false // text after the closing quote
				}
				return b.String(), true
			case '$', '`':
				return "", false // unescaped shell special character
			default:
				b.WriteByte(c)
			}
		}
		return "", false // no closing quote
	default:
		var b strings.Builder
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			switch c {
			case '\\':
				if i+1 == len(raw) {
					return "", false
				}
				i++
				b.WriteByte(raw[i])
			case '"', '\'', '`', '$', ' ', '\t', ';', '|', '&', '<', '>', '(', ')':
				return "", false // must have been quoted
			default:
				b.WriteByte(c)
			}
		}
		return b.String(), true
	}
}
