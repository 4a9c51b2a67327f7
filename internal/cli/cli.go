// Package cli is what the daemons' mains share: a context that ends at
// SIGINT or SIGTERM, the command dispatch with version and help, the flag
// set of a command with its -config flag, and the JSON logger. It links the
// standard library only, so the trust agent can use it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Func runs one command with the arguments after its name.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error

// Program is a daemon's command line.
type Program struct {
	// Name is the binary's name, the prefix of its errors and its version.
	Name    string
	Version string
	// Usage is printed by help, and to stderr when no or an unknown
	// command is given.
	Usage    string
	Commands map[string]Func
}

// Main runs the program on the process's arguments and environment (see
// Main).
func (p Program) Main() {
	Main(p.Name, func(ctx context.Context) error { return p.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv) })
}

// Main runs a binary's run with a context that ends at SIGINT or SIGTERM,
// and exits 1 with "name: error" when it fails.
func Main(name string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", Printable(err.Error()))
		os.Exit(1)
	}
}

// Printable returns s with what a terminal would act on instead of show
// written as Go escapes: control characters but the newline (\x1b, \r,
// \t), format characters such as the bidi overrides (\u202e), and bytes
// that are not UTF-8 (\xff). An error's text may carry what a node wrote
// (an agent's answer, a Node's annotation), and root on a node must not
// move the operator's cursor, rewrite the lines above or retitle the
// window.
func Printable(s string) string {
	if !strings.ContainsFunc(s, NotShown) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case NotShown(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// NotShown tells the runes a terminal acts on rather than shows, which
// Printable escapes: all that unicode.IsPrint refuses but the newline.
func NotShown(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }

// Run runs the command args[0]: one of Commands, "version" or help. No
// command or an unknown one prints the usage to stderr and is an error.
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		_, _ = fmt.Fprintln(stderr, p.Usage) // best effort: the error says what is wrong
		return errors.New("no command given")
	}
	if run, ok := p.Commands[args[0]]; ok {
		return run(ctx, args[1:], stdout, stderr, getenv)
	}
	switch args[0] {
	case "version":
		_, err := fmt.Fprintf(stdout, "%s %s %s\n", p.Name, p.Version, runtime.Version())
		return err
	case "-h", "-help", "--help", "help":
		_, err := fmt.Fprintln(stdout, p.Usage)
		return err
	}
	_, _ = fmt.Fprintln(stderr, p.Usage) // best effort: the error says what is wrong
	return fmt.Errorf("unknown command %q", args[0])
}

// Flags returns the flag set of a command (NewFlagSet) with the --config
// flag every daemon takes.
func Flags(command string, stderr io.Writer) (fs *flag.FlagSet, configPath *string) {
	fs = NewFlagSet(command, stderr)
	return fs, fs.String("config", "", "YAML configuration file")
}

// NewFlagSet returns the flag set of a command, which reports its errors to
// stderr and shows its flags as --name, the style of every binary of the
// product (tcctl's too); -name is accepted as well.
func NewFlagSet(command string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printFlags(fs) }
	return fs
}

// printFlags is flag.PrintDefaults with two dashes.
func printFlags(fs *flag.FlagSet) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage of %s:\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		b.WriteString("  --" + f.Name)
		if name != "" {
			b.WriteString(" " + name)
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		}
		b.WriteString("\n")
	})
	_, _ = io.WriteString(fs.Output(), b.String()) // best effort, like flag's own
}

// Logger returns the daemons' JSON logger writing to w at level (debug,
// info, warn or error).
func Logger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
