//go:build linux

package guest

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestWriteBlockFramesBase64LinesOfAtMost76Characters(t *testing.T) {
	data := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 100)
	var out strings.Builder
	if err := WriteBlock(&out, "DUMP", data); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if lines[0] != "" || lines[1] != "TC-DUMP-BEGIN" || lines[len(lines)-2] != "TC-DUMP-END" || lines[len(lines)-1] != "" {
		t.Fatalf("block not framed by TC-DUMP-BEGIN/END lines:\n%s", out.String())
	}
	body := lines[2 : len(lines)-2]
	for _, l := range body {
		if len(l) > 76 {
			t.Errorf("line of %d characters", len(l))
		}
	}
	got, err := base64.StdEncoding.DecodeString(strings.Join(body, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the block does not decode to the data written")
	}
}
