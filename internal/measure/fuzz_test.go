package measure

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseOSRelease(f *testing.F) {
	for _, p := range []string{
		"testdata/root-luks-lvm/etc/os-release",
		"testdata/root-plain/usr/lib/os-release",
		"testdata/root-overlay/etc/os-release",
		"testdata/root-no-efi/etc/os-release",
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`NAME="a \" b \\ \$ \` + "`" + `"`)
	f.Add("NAME='x'\nID=a\\ b\n# c\n")
	f.Add("NAME=\"unterminated\n")
	f.Add("weird line\n=\n==\n")
	f.Fuzz(func(t *testing.T, text string) {
		vars := parseOSRelease(text)
		for k := range vars {
			if !validEnvKey(k) {
				t.Fatalf("parseOSRelease(%q) returned the invalid key %q", text, k)
			}
		}
		// Any value without a newline survives double quoting with the
		// escapes os-release(5) defines.
		if strings.ContainsAny(text, "\n") {
			return
		}
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
		quoted := `VALUE="` + r.Replace(text) + "\"\n"
		if got, ok := parseOSRelease(quoted)["VALUE"]; !ok || got != text {
			t.Fatalf("value %q quoted as %q parsed back as %q (present %v)", text, quoted, got, ok)
		}
	})
}

// escapeMountinfo escapes a field as the kernel does in mountinfo.
func escapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzParseMountinfoLine(f *testing.F) {
	addFileLines(f,
		"testdata/root-luks-lvm/proc/self/mountinfo",
		"testdata/root-plain/proc/self/mountinfo",
		"testdata/root-overlay/proc/self/mountinfo",
		"testdata/root-no-efi/proc/self/mountinfo",
	)
	f.Add("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
	f.Add(`30 1 0:25 /a\134b /mnt/my\040data rw - tmpfs my\040src rw`)
	f.Add(`1 0 1:2 / /\7 rw - x y z`)
	f.Add("- - - - - - - - - -")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := parseMountinfoLine(line)
		if err != nil {
			return
		}
		// What parsed, escaped again the kernel's way, parses to the same.
		again := fmt.Sprintf("%d %d %d:%d %s %s %s", m.MountID, m.ParentID, m.Major, m.Minor,
			escapeMountinfo(m.Root), escapeMountinfo(m.MountPoint), m.Options)
		for _, o := range m.Optional {
			again += " " + o
		}
		again += fmt.Sprintf(" - %s %s %s", escapeMountinfo(m.FSType), escapeMountinfo(m.Source), m.SuperOptions)
		m2, err := parseMountinfoLine(again)
		if err != nil {
			t.Fatalf("re-escaped line %q of %q does not parse: %v", again, line, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("line %q parsed to %+v, re-escaped %q to %+v", line, m, again, m2)
		}
	})
}

func FuzzSplitIMALine(f *testing.F) {
	addFileLines(f,
		"testdata/root-luks-lvm/sys/kernel/security/ima/ascii_runtime_measurements",
		"testdata/root-plain/sys/kernel/security/ima/ascii_runtime_measurements",
	)
	f.Add(" 9 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-buf sha256:3e3ab7d5 kexec-cmdline 726f6f74")
	f.Add("10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256: /x")
	f.Add("10  ima-ng")
	f.Fuzz(func(t *testing.T, line string) {
		e, err := splitIMALine(line)
		if err != nil {
			return
		}
		if got := fmt.Sprintf("%2d %s %s %s", e.PCR, e.TemplateHash, e.Template, e.Data); got != line {
			t.Fatalf("splitIMALine(%q) = %+v, which prints back as %q", line, e, got)
		}
		if e.PCR < 0 || e.PCR > 23 || e.Template == "" || e.Data == "" {
			t.Fatalf("splitIMALine(%q) accepted out-of-range fields %+v", line, e)
		}
	})
}

func FuzzScanIMALines(f *testing.F) {
	data, err := os.ReadFile("testdata/root-luks-lvm/sys/kernel/security/ima/ascii_runtime_measurements")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("")
	f.Add("\n")
	f.Add("a\n\nb")
	f.Add("no newline at all")
	f.Fuzz(func(t *testing.T, text string) {
		s := newIMAScanner(strings.NewReader(text))
		var lines []string
		for s.Scan() {
			lines = append(lines, s.Text())
		}
		if err := s.Err(); err != nil {
			return // a line beyond maxIMALine
		}
		if got, want := strings.Join(lines, "\n"), strings.TrimSuffix(text, "\n"); got != want {
			t.Fatalf("lines of %q join to %q", text, got)
		}
		want := strings.Count(text, "\n")
		if text != "" && !strings.HasSuffix(text, "\n") {
			want++
		}
		if len(lines) != want {
			t.Fatalf("%q split into %d entries, want %d", text, len(lines), want)
		}
	})
}

// addFileLines adds every line of the files to f's seed corpus.
func addFileLines(f *testing.F, paths ...string) {
	f.Helper()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			f.Add(strings.TrimSuffix(line, "\n"))
		}
	}
}
