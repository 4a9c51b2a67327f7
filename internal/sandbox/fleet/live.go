package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Terminal is the user's terminal: the live view draws on Out and, when In
// is set, reads single keys from it.
type Terminal struct {
	Out *os.File
	In  *os.File
}

// screen draws a fixed header once and redraws the body below it with
// cursor addressing, so that the addresses and the login line in the
// header are never wiped.
type screen struct {
	w      io.Writer
	width  int // columns; 0 when unknown
	header []string
}

// headerRows is how many terminal rows the header takes, long lines
// wrapped.
func (s screen) headerRows() int {
	rows := 0
	for _, l := range s.header {
		n := utf8.RuneCountInString(l)
		if s.width > 0 && n > s.width {
			rows += (n + s.width - 1) / s.width
		} else {
			rows++
		}
	}
	return rows
}

// drawHeader clears the screen once and draws the header at its top.
func (s screen) drawHeader() {
	_, _ = fmt.Fprint(s.w, "\033[H\033[2J"+strings.Join(s.header, "\n")+"\n")
}

// drawBody replaces everything below the header with body.
func (s screen) drawBody(body string) {
	_, _ = fmt.Fprintf(s.w, "\033[%d;1H\033[J%s", s.headerRows()+1, body)
}

// keyHelp is the header's line about the keys.
func keyHelp() string {
	var parts []string
	for _, k := range controlKeys {
		parts = append(parts, string(k.key)+" "+k.help)
	}
	return strings.Join(parts, " · ") + ", then the node's number"
}

// liveView shows the fleet until ctx ends. On a terminal the header stays
// at the top and the body is redrawn below it every second and after every
// key; keys run controls. Elsewhere the table is printed again when it
// changed.
func (f *Fleet) liveView(ctx context.Context, w io.Writer, t *Terminal, header []string, said string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if t == nil {
		last := ""
		for {
			if sig := f.signature(ctx); sig != last {
				last = sig
				var b strings.Builder
				f.renderTable(ctx, &b, time.Now())
				_, _ = fmt.Fprint(w, "\n"+b.String())
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
	sc := screen{w: t.Out, header: header}
	if cols, _, err := term.GetSize(int(t.Out.Fd())); err == nil {
		sc.width = cols
	}
	keys := make(chan byte)
	if t.In != nil {
		if restore, err := cbreak(int(t.In.Fd())); err == nil {
			defer restore()
			go readKeys(t.In, keys)
		}
	}
	pad := &keypad{nodes: f.NodeNames()}
	results := make(chan string)
	status := said
	sc.drawHeader()
	for {
		var b strings.Builder
		b.WriteString("> " + status + "\n\n")
		f.renderTable(ctx, &b, time.Now())
		sc.drawBody(b.String())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if cols, _, err := term.GetSize(int(t.Out.Fd())); err == nil && cols != sc.width {
				sc.width = cols
				sc.drawHeader()
			}
		case s := <-results:
			status = s
		case k := <-keys:
			prompt, run := pad.press(k)
			status = prompt
			if run != nil {
				go func() {
					said, err := f.Do(ctx, run.node, run.control, run.pcr)
					if err != nil {
						said = fmt.Sprintf("%s on %s failed: %v", run.control, run.node, err)
					}
					select {
					case results <- said:
					case <-ctx.Done():
					}
				}()
			}
		}
	}
}

// readKeys sends every byte read from in until it fails.
func readKeys(in io.Reader, keys chan<- byte) {
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			keys <- b
		}
		if err != nil {
			return
		}
	}
}

// cbreak makes the terminal hand over each key at once, without echo; Ctrl-C
// still interrupts. restore puts the terminal back.
func cbreak(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// controlRun is a control the keys asked for.
type controlRun struct {
	node    string
	control Control
	pcr     int
}

// keypad turns keys into controls: a control's key, then the node's number
// (one digit when there are at most nine nodes, else digits and Enter),
// then for a PCR extension the PCR's number and Enter (Enter alone: PCR 7).
// Esc cancels.
type keypad struct {
	nodes   []string
	control Control
	node    string
	digits  string
}

const (
	keyEsc       = 27
	keyEnter     = '\n'
	keyReturn    = '\r'
	keyBackspace = 127
)

// press handles one key and returns the prompt to show and, once a
// control is complete, the control to run.
func (k *keypad) press(b byte) (string, *controlRun) {
	if b == keyEsc {
		*k = keypad{nodes: k.nodes}
		return "cancelled", nil
	}
	if k.control == "" {
		for _, c := range controlKeys {
			if c.key == b {
				k.control = c.control
				return k.nodePrompt(), nil
			}
		}
		return "keys: " + keyHelp(), nil
	}
	switch {
	case b >= '0' && b <= '9':
		k.digits += string(b)
	case b == keyBackspace && k.digits != "":
		k.digits = k.digits[:len(k.digits)-1]
	case b == keyEnter || b == keyReturn:
		return k.complete()
	default:
		return k.prompt(), nil
	}
	if k.node == "" && len(k.nodes) <= 9 {
		return k.complete()
	}
	return k.prompt(), nil
}

// complete takes the digits typed as the node's or the PCR's number.
func (k *keypad) complete() (string, *controlRun) {
	if k.node == "" {
		i, err := strconv.Atoi(k.digits)
		k.digits = ""
		if err != nil || i < 1 || i > len(k.nodes) {
			return "no such node; " + k.nodePrompt(), nil
		}
		k.node = k.nodes[i-1]
		if k.control == ControlExtendPCR {
			return k.prompt(), nil
		}
	}
	run := &controlRun{node: k.node, control: k.control, pcr: DefaultPCR}
	if k.control == ControlExtendPCR && k.digits != "" {
		pcr, err := strconv.Atoi(k.digits)
		if err != nil || pcr > 23 {
			k.digits = ""
			return "PCR 0 to 23; " + k.prompt(), nil
		}
		run.pcr = pcr
	}
	*k = keypad{nodes: k.nodes}
	return fmt.Sprintf("%s on %s...", run.control, run.node), run
}

func (k *keypad) nodePrompt() string {
	return fmt.Sprintf("%s: which node? 1-%d%s (Esc cancels)", k.control, len(k.nodes),
		map[bool]string{true: " and Enter", false: ""}[len(k.nodes) > 9])
}

func (k *keypad) prompt() string {
	if k.node == "" {
		return k.nodePrompt() + " " + k.digits
	}
	return fmt.Sprintf("%s on %s: which PCR? [%d] and Enter %s", k.control, k.node, DefaultPCR, k.digits)
}
