package fleet

import (
	"bytes"
	"strings"
	"testing"
)

func TestKeysPickAControlThenANode(t *testing.T) {
	three := []string{"edge-1", "edge-2", "edge-3"}
	twelve := make([]string, 12)
	for i := range twelve {
		twelve[i] = "edge-" + string(rune('a'+i))
	}
	tests := []struct {
		name  string
		nodes []string
		keys  string
		want  *controlRun
	}{
		{"t then 2 tampers with the second node", three, "t2", &controlRun{node: "edge-2", control: ControlTamper, pcr: DefaultPCR}},
		{"r then 1 reboots the first node", three, "r1", &controlRun{node: "edge-1", control: ControlReboot, pcr: DefaultPCR}},
		{"s, k and o pick their controls", three, "s3", &controlRun{node: "edge-3", control: ControlSecureBootOff, pcr: DefaultPCR}},
		{"k then 3 kills the third node's agent", three, "k3", &controlRun{node: "edge-3", control: ControlKillAgent, pcr: DefaultPCR}},
		{"o then 1 re-onboards the first node", three, "o1", &controlRun{node: "edge-1", control: ControlOnboard, pcr: DefaultPCR}},
		{"p, a node and Enter extend PCR 7", three, "p1\n", &controlRun{node: "edge-1", control: ControlExtendPCR, pcr: 7}},
		{"p, a node, 10 and Enter extend PCR 10", three, "p2" + "10\r", &controlRun{node: "edge-2", control: ControlExtendPCR, pcr: 10}},
		{"Esc cancels a control", three, "t\x1b2", nil},
		{"a node number out of range runs nothing", three, "t9", nil},
		{"a PCR past 23 runs nothing", three, "p1" + "24\n", nil},
		{"an unknown key runs nothing", three, "x1", nil},
		{"with more than nine nodes the number ends with Enter", twelve, "t12\n", &controlRun{node: "edge-l", control: ControlTamper, pcr: DefaultPCR}},
		{"with more than nine nodes one digit is not yet a node", twelve, "t1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pad := &keypad{nodes: tt.nodes}
			var got *controlRun
			for _, b := range []byte(tt.keys) {
				if _, run := pad.press(b); run != nil {
					got = run
				}
			}
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("keys %q ran %+v, want %+v", tt.keys, got, tt.want)
			}
		})
	}
}

func TestTheLiveViewRedrawsBelowItsHeaderWithoutClearingIt(t *testing.T) {
	var out bytes.Buffer
	header := []string{"Trusted Compute sandbox", "  web view   http://127.0.0.1:1234/", "  tcctl      " + strings.Repeat("x", 150)}
	sc := screen{w: &out, width: 100, header: header}
	if got := sc.headerRows(); got != 4 {
		t.Fatalf("the header takes %d rows at 100 columns, want 4 (its last line wraps)", got)
	}
	sc.drawHeader()
	out.Reset()
	for range 3 {
		sc.drawBody("table\n")
	}
	redraws := out.String()
	if strings.Contains(redraws, "\033[2J") || strings.Contains(redraws, "\033[H") {
		t.Errorf("a redraw clears the screen or homes the cursor, wiping the header: %q", redraws)
	}
	if want := "\033[5;1H\033[J"; strings.Count(redraws, want) != 3 {
		t.Errorf("redraws %q do not each move below the header (%q) and clear only what is below", redraws, want)
	}
}
