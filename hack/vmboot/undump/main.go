// Command undump extracts the block that dumpinit writes to the serial console
// (TC-DUMP-BEGIN ... TC-DUMP-END) and writes <prefix>.bin (the raw event log)
// and <prefix>.pcrs.json (PCRs 0-23 of every active bank, lowercase hex).
// It prints one summary line: banks, log size, kernel command line, and the
// value of the SecureBoot UEFI variable.
//
//	undump <serial.log> <prefix>
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

type dump struct {
	EventLog   []byte                       `json:"event_log"`
	PCRs       map[string]map[string]string `json:"pcrs"`
	Cmdline    string                       `json:"cmdline"`
	SecureBoot *int                         `json:"secureboot"`
	TPMDevice  string                       `json:"tpm_device"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: undump <serial.log> <prefix>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "undump: %v\n", err)
		os.Exit(1)
	}
}

func run(serialPath, prefix string) error {
	serial, err := os.ReadFile(serialPath)
	if err != nil {
		return err
	}
	d, err := parse(serial)
	if err != nil {
		return fmt.Errorf("%s: %w", serialPath, err)
	}
	pcrs, err := encodePCRs(d.PCRs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".bin", d.EventLog, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".pcrs.json", pcrs, 0o644); err != nil {
		return err
	}
	sb := "unreadable"
	if d.SecureBoot != nil {
		sb = strconv.Itoa(*d.SecureBoot)
	}
	fmt.Printf("banks=%s log_bytes=%d secureboot_var=%s tpm=%s cmdline=%q\n",
		strings.Join(slices.Sorted(maps.Keys(d.PCRs)), ","), len(d.EventLog), sb, d.TPMDevice, d.Cmdline)
	return nil
}

func parse(serial []byte) (*dump, error) {
	var b64 strings.Builder
	state := 0 // 0 before the block, 1 inside, 2 after
	sc := bufio.NewScanner(bytes.NewReader(serial))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "TC-DUMP-ERROR"):
			return nil, errors.New(line)
		case line == "TC-DUMP-BEGIN":
			state = 1
		case line == "TC-DUMP-END" && state == 1:
			state = 2
		case state == 1:
			if strings.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
				return nil, fmt.Errorf("dump block interleaved with other output: %q", line)
			}
			b64.WriteString(line)
		}
	}
	if state != 2 {
		return nil, errors.New("no complete TC-DUMP block")
	}
	raw, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		return nil, fmt.Errorf("decode dump: %w", err)
	}
	var d dump
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decode dump: %w", err)
	}
	if len(d.EventLog) == 0 || len(d.PCRs) == 0 {
		return nil, errors.New("dump has no event log or no PCRs")
	}
	return &d, nil
}

// encodePCRs writes {"SHA256":{"0":"..",...,"23":".."},...} with PCRs in
// numeric order, one per line, so that diffs between captures are readable.
func encodePCRs(pcrs map[string]map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{\n")
	for bi, name := range slices.Sorted(maps.Keys(pcrs)) {
		fmt.Fprintf(&b, "  %q: {\n", name)
		for i := 0; i < 24; i++ {
			v, ok := pcrs[name][strconv.Itoa(i)]
			if _, err := hex.DecodeString(v); !ok || err != nil {
				return nil, fmt.Errorf("%s pcr %d: missing or not hex", name, i)
			}
			sep := ","
			if i == 23 {
				sep = ""
			}
			fmt.Fprintf(&b, "    \"%d\": %q%s\n", i, strings.ToLower(v), sep)
		}
		if bi == len(pcrs)-1 {
			b.WriteString("  }\n")
		} else {
			b.WriteString("  },\n")
		}
	}
	b.WriteString("}\n")
	if !json.Valid(b.Bytes()) {
		return nil, errors.New("internal error: invalid pcrs json")
	}
	return b.Bytes(), nil
}
