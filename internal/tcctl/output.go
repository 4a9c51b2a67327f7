package tcctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/cli"
)

// Output formats of read commands.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// addOutputFlag adds -o to a read command; extra lists formats beyond
// table, json and yaml that the command knows.
func addOutputFlag(cmd *cobra.Command, format *string, extra ...string) {
	formats := append([]string{formatTable, formatJSON, formatYAML}, extra...)
	cmd.Flags().StringVarP(format, "output", "o", formatTable, "output format: "+strings.Join(formats, "|"))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// table is rows under a header.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// render writes v (the API's JSON answer, as raw bytes or a value) in
// format; table is used for the table format.
func render(w io.Writer, format string, v any, t *table) error {
	switch format {
	case formatTable, "":
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		_, _ = fmt.Fprintln(tw, strings.Join(t.header, "\t"))
		cells := make([]string, 0, len(t.header))
		for _, r := range t.rows {
			cells = cells[:0]
			for _, c := range r {
				cells = append(cells, cell(c))
			}
			_, _ = fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	case formatJSON:
		b, err := toJSON(v)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return fmt.Errorf("format json: %w", err)
		}
		out.WriteByte('\n')
		_, err = w.Write(escapeUnprintable(out.Bytes(), jsonEscapes))
		return err
	case formatYAML:
		b, err := toJSON(v)
		if err != nil {
			return err
		}
		y, err := jsonToYAML(b)
		if err != nil {
			return err
		}
		_, err = w.Write(escapeUnprintable(y, yamlEscapes))
		return err
	}
	return fmt.Errorf("unknown output format %q: want table, json or yaml", format)
}

func toJSON(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return b, nil
}

// jsonToYAML re-encodes JSON as block YAML with the keys in their JSON
// order (JSON is YAML; the flow style and quoting are dropped).
func jsonToYAML(b []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(escapeUnprintable(b, bmpEscapes), &n); err != nil {
		return nil, fmt.Errorf("format yaml: %w", err)
	}
	blockStyle(&n)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("format yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("format yaml: %w", err)
	}
	return out.Bytes(), nil
}

func blockStyle(n *yaml.Node) {
	// Strings keep their tag so that "true" or "1" stay strings; the
	// encoder quotes them where plain style would change their type.
	n.Style = 0
	if n.Kind == yaml.ScalarNode && strings.ContainsFunc(n.Value, notPrint) {
		// In double quotes, where escapeUnprintable's escapes mean the
		// same character.
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// notPrint tells the runes a terminal may act on rather than show.
func notPrint(r rune) bool { return !unicode.IsPrint(r) }

// escapeUnprintable writes the runes of JSON or YAML text that a terminal
// would act on (cli.NotShown) as escapes that mean the same
// character in a JSON string and in a double-quoted YAML scalar, where
// alone they stand: encoding/json and the YAML encoder escape the control
// characters but pass DEL, the C1 controls and format characters such as
// U+202E through. A byte that is not UTF-8 becomes U+FFFD.
func escapeUnprintable(b []byte, e escapes) []byte {
	if !bytes.ContainsFunc(b, cli.NotShown) && utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, "\uFFFD"...)
		case !cli.NotShown(r):
			out = append(out, b[:n]...)
		case r <= 0xffff:
			out = fmt.Appendf(out, `\u%04x`, r)
		case e == yamlEscapes:
			out = fmt.Appendf(out, `\U%08x`, r)
		case e == jsonEscapes:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// escapes are the forms escapeUnprintable writes beyond the BMP.
type escapes int

const (
	jsonEscapes escapes = iota // a surrogate pair, \ud834\udd73
	yamlEscapes                // \U0001d173
	// bmpEscapes leaves them as they are: JSON for the YAML parser, which
	// reads them (and not a surrogate pair) but refuses DEL and C1.
	bmpEscapes
)

// Cell helpers.

// cell is c as a table shows it: quoted, with Go escapes, when it holds
// what a terminal would act on rather than show (an escape sequence, a
// carriage return, a tab that moves the columns, a bidi override, bytes
// that are not UTF-8) or spaces that would pass for a column's end. Many
// cells come from what a node wrote (its Node's annotations, its agent's
// answers), and root on a node must not make a failing node read as
// verified in the operator's table.
func cell(c string) string {
	if strings.ContainsFunc(c, notPrint) || !utf8.ValidString(c) ||
		strings.Contains(c, "  ") || strings.TrimSpace(c) != c {
		return strconv.Quote(c)
	}
	return c
}

func timeCell(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func boolCell(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func listCell(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
