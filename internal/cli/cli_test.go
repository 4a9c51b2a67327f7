package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRunDispatchesTheCommandLine(t *testing.T) {
	p := Program{Name: "demo", Version: "v1", Usage: "usage: demo <command>", Commands: map[string]Func{
		"run": func(_ context.Context, args []string, stdout, _ io.Writer, _ func(string) string) error {
			_, err := io.WriteString(stdout, "ran "+strings.Join(args, " "))
			return err
		},
	}}
	tests := []struct {
		name                            string
		args                            []string
		wantErr, wantStdout, wantStderr string
	}{
		{"a command gets the arguments after its name", []string{"run", "-x", "y"}, "", "ran -x y", ""},
		{"version prints the name and the version", []string{"version"}, "", "demo v1 go", ""},
		{"help prints the usage", []string{"-h"}, "", "usage: demo", ""},
		{"no command is an error and prints the usage", nil, "no command given", "", "usage: demo"},
		{"an unknown command is an error naming it", []string{"frobnicate"}, `unknown command "frobnicate"`, "", "usage: demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := p.Run(context.Background(), tt.args, &stdout, &stderr, func(string) string { return "" })
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run = %v, want error %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) || !strings.HasPrefix(stderr.String(), tt.wantStderr) {
				t.Fatalf("stdout %q stderr %q, want %q and %q", stdout.String(), stderr.String(), tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestLoggerRefusesAnUnknownLevel(t *testing.T) {
	if _, err := Logger(io.Discard, "loud"); err == nil {
		t.Fatal("Logger accepted the level loud")
	}
	var out bytes.Buffer
	l, err := Logger(&out, "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown")
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("logged %q, want only the warning as JSON", s)
	}
}

func TestFlagsAreShownWithTwoDashesAndTakenWithEither(t *testing.T) {
	var out strings.Builder
	fs, config := Flags("run", &out)
	level := fs.String("log-level", "info", "log level")
	if err := fs.Parse([]string{"--config", "a.yaml", "-log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	if *config != "a.yaml" || *level != "debug" {
		t.Fatalf("--config %q, -log-level %q: want a.yaml and debug", *config, *level)
	}
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"usage of run:", "  --config string", "  --log-level string", `(default "info")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\n  -config") {
		t.Errorf("usage shows a single-dash flag:\n%s", out.String())
	}
}

// What root on a node could put in an error's text (an agent's answer, a
// Node's annotation) reaches the operator's terminal as text, not as a
// cursor move, a cleared line, a window title or reversed text.
func TestPrintableEscapesWhatATerminalWouldActOn(t *testing.T) {
	tests := []struct{ in, want string }{
		{"host edge-1 not found", "host edge-1 not found"},
		{"two\nlines", "two\nlines"},
		{"ok\x1b[2K\rverified", `ok\x1b[2K\rverified`},
		{"\x1b]0;owned\a", `\x1b]0;owned\a`},
		{"tab\there", `tab\there`},
		{"evil\u202edeifirev", `evil\u202edeifirev`},
		{"bad \xff byte", `bad \xff byte`},
		{"ünïcode ✓", "ünïcode ✓"},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x1b[1Ab", "\r\n\t", "\u202e\u200f", "\xff\xfe", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Printable(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Printable(%q) = %q: not UTF-8", s, got)
		}
		if i := strings.IndexFunc(got, NotShown); i >= 0 {
			t.Fatalf("Printable(%q) = %q: %q at %d is not shown as text", s, got, got[i:], i)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, NotShown) && got != s {
			t.Fatalf("Printable(%q) = %q: changed a printable string", s, got)
		}
	})
}
