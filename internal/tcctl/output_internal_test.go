package tcctl

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

func TestCellQuotesWhatWouldNotReadAsOneCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"edge-1", "edge-1"},
		{"not enabled", "not enabled"},
		{"2026-12-06T07:00:00Z", "2026-12-06T07:00:00Z"},
		{"a\x1b[2K\rb", `"a\x1b[2K\rb"`},
		{"a\tb", `"a\tb"`},
		{"edge-7   verified", `"edge-7   verified"`},
		{" edge-7", `" edge-7"`},
		{"\u202eevil", `"\u202eevil"`},
		{"bad\xff", `"bad\xff"`},
	}
	for _, tt := range tests {
		if got := cell(tt.in); got != tt.want {
			t.Errorf("cell(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzEscapeUnprintable holds JSON and YAML output of any string to the
// two promises: nothing a terminal acts on is left, and the value reads
// back the same (a byte that is not UTF-8 as U+FFFD, as encoding/json
// writes it).
func FuzzEscapeUnprintable(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x1b[1Ab\r\n\t", "\x7f\u0085\u009b", "\u202e\u200f\u2028", "\xff", "\U000e0001tag", "é ✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := json.Marshal(map[string]string{"v": s})
		if err != nil {
			t.Fatal(err)
		}
		want := string([]rune(s)) // each byte that is not UTF-8 as U+FFFD
		y, err := jsonToYAML(j)
		if err != nil {
			t.Fatal(err)
		}
		for name, out := range map[string][]byte{"json": escapeUnprintable(j, jsonEscapes), "yaml": escapeUnprintable(y, yamlEscapes)} {
			if i := strings.IndexFunc(string(out), func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }); i >= 0 {
				t.Fatalf("%s of %q: %q at %d is left: %q", name, s, out[i:], i, out)
			}
			var got map[string]string
			decode := yaml.Unmarshal
			if name == "json" {
				decode = json.Unmarshal
			}
			if err := decode(out, &got); err != nil || got["v"] != want {
				t.Fatalf("%s of %q reads back as %q (%v): %q", name, s, got["v"], err, out)
			}
		}
	})
}
