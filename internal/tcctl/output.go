package tcctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
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
		for _, r := range t.rows {
			_, _ = fmt.Fprintln(tw, strings.Join(r, "\t"))
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
		_, err = w.Write(out.Bytes())
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
		_, err = w.Write(y)
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
	if err := yaml.Unmarshal(b, &n); err != nil {
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
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Cell helpers.

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
