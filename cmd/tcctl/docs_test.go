package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/tcctl"
)

// docCommand is one tcctl command line written in the documentation.
type docCommand struct {
	where  string // file:line
	line   string
	inline bool // a code span in prose, which may name a command without its arguments
}

var (
	inlineTcctl = regexp.MustCompile("`(tcctl [^`]+)`")
	placeholder = regexp.MustCompile(`<[^>]+>`)
)

// docCommands returns the tcctl command lines of a Markdown file: the lines
// of code blocks that start with tcctl (joined with their continuation
// lines) and the inline code spans that do.
func docCommands(t *testing.T, file string) []docCommand {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var (
		out     []docCommand
		inBlock bool
		pending string
		start   int
	)
	add := func(n int, line string, inline bool) {
		out = append(out, docCommand{where: file + ":" + strconv.Itoa(n), line: line, inline: inline})
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		cont := strings.HasSuffix(text, `\`)
		body := strings.TrimSuffix(text, `\`)
		switch {
		case strings.HasPrefix(text, "```"):
			inBlock = !inBlock
		case inBlock && pending != "":
			pending += " " + body
			if !cont {
				add(start, pending, false)
				pending = ""
			}
		case inBlock && strings.HasPrefix(text, "tcctl "):
			if cont {
				pending, start = body, n
				continue
			}
			add(n, text, false)
		case !inBlock:
			for _, m := range inlineTcctl.FindAllStringSubmatch(text, -1) {
				add(n, m[1], true)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// words splits a documented shell command line into its arguments: the
// comment dropped, quotes removed, placeholders such as <host id> made one
// word, and what follows a comment, a redirection or a pipe dropped.
func words(line string) []string {
	line = placeholder.ReplaceAllString(line, "placeholder")
	if i := strings.IndexAny(line, "#>|;&"); i >= 0 {
		line = line[:i]
	}
	var out []string
	for _, w := range strings.Fields(line) {
		out = append(out, strings.Trim(w, `"'`))
	}
	return out
}

// TestEveryTcctlCommandInTheDocsExists reads every tcctl command line of
// the README and docs/ and checks it against the command tree: the command
// exists, its flags parse and it takes that many arguments. A doc that
// names a command or flag tcctl no longer has fails here.
func TestEveryTcctlCommandInTheDocsExists(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	checked := 0
	for _, file := range files {
		for _, dc := range docCommands(t, file) {
			args := words(dc.line)[1:]
			if len(args) == 0 || strings.Contains(dc.line, "...") {
				continue // "tcctl login ..." and the like elide on purpose
			}
			root := newRoot(tcctl.Env{})
			root.InitDefaultCompletionCmd()
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: `%s`: no such command (%v)", dc.where, dc.line, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: `%s`: %v", dc.where, dc.line, err)
				continue
			}
			if cmd.HasSubCommands() && len(cmd.Flags().Args()) > 0 {
				t.Errorf("%s: `%s`: %s has no subcommand %q", dc.where, dc.line, cmd.CommandPath(), cmd.Flags().Args()[0])
				continue
			}
			if cmd.Args != nil && !dc.inline {
				if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
					t.Errorf("%s: `%s`: %v", dc.where, dc.line, err)
				}
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("checked %d documented tcctl command lines; the docs have more: is the extraction broken?", checked)
	}
	t.Logf("checked %d documented tcctl command lines", checked)
}
