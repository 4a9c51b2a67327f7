// Command checklog checks a captured measured-boot event log against the PCR
// values captured with it, using go-attestation (an independent parser), and
// prints the Secure Boot state the log describes.
//
//	checklog [-strict 0-9,11-16] <log.bin> <pcrs.json>
//	checklog -diff <a.pcrs.json> <b.pcrs.json>
//	checklog -events <log.bin>
//
// Every PCR 0-23 of every bank is checked twice: with go-attestation's
// (*EventLog).Verify, and with a plain replay here. The second check exists
// because Verify accepts any value for a PCR that has no event in the log, so
// it cannot notice a PCR extended outside the log. Each PCR is reported as
// "replays", "reset" (no events, value all zeros or all ones), "outside" (no
// events but extended, e.g. PCR 10 by the kernel's IMA) or "MISMATCH". The exit
// status is non-zero on a MISMATCH, or on "outside" for a PCR not in -outside.
package main

import (
	"bytes"
	"crypto"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-attestation/attest"
)

var hashes = map[string]crypto.Hash{
	"SHA1":   crypto.SHA1,
	"SHA256": crypto.SHA256,
	"SHA384": crypto.SHA384,
	"SHA512": crypto.SHA512,
}

type banks map[string]map[string]string

func main() {
	diff := flag.Bool("diff", false, "print the PCRs that differ between two .pcrs.json files")
	list := flag.Bool("events", false, "list the events of <log.bin> (SHA-256 digests) and exit")
	outside := flag.String("outside", "10", "PCRs allowed to be extended outside the firmware log")
	flag.Parse()
	var err error
	switch {
	case *list && flag.NArg() == 1:
		err = listEvents(flag.Arg(0))
	case flag.NArg() != 2:
		err = errors.New("usage: checklog [-outside list] <log.bin> <pcrs.json> | checklog -diff <a.pcrs.json> <b.pcrs.json> | checklog -events <log.bin>")
	case *diff:
		err = diffPCRs(flag.Arg(0), flag.Arg(1))
	default:
		err = check(flag.Arg(0), flag.Arg(1), *outside)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "checklog: %v\n", err)
		os.Exit(1)
	}
}

func readBanks(path string) (banks, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bs banks
	if err := json.Unmarshal(b, &bs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bs, nil
}

func parseList(s string) (map[int]bool, error) {
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad pcr list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("bad pcr list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

func check(logPath, pcrsPath, outsideList string) error {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	bs, err := readBanks(pcrsPath)
	if err != nil {
		return err
	}
	allowOutside, err := parseList(outsideList)
	if err != nil {
		return err
	}
	el, err := attest.ParseEventLog(raw)
	if err != nil {
		return fmt.Errorf("parse event log: %w", err)
	}
	fmt.Printf("%s: %d bytes, %d events\n", logPath, len(raw), len(el.Events(attest.HashSHA256)))

	var failed []string
	var good []attest.PCR // SHA-256 PCRs that replay, for the Secure Boot state
	for _, name := range slices.Sorted(maps.Keys(bs)) {
		alg, ok := hashes[name]
		if !ok {
			return fmt.Errorf("unknown bank %q", name)
		}
		status := map[string][]int{}
		for i := 0; i < 24; i++ {
			d, err := hex.DecodeString(bs[name][strconv.Itoa(i)])
			if err != nil || len(d) != alg.Size() {
				return fmt.Errorf("%s pcr %d: bad digest", name, i)
			}
			pcr := attest.PCR{Index: i, Digest: d, DigestAlg: alg}
			_, verifyErr := el.Verify([]attest.PCR{pcr})
			st := classify(el.Events(attest.HashAlg(algID(alg))), i, d)
			if (verifyErr == nil) != (st != "MISMATCH") && st != "outside" {
				return fmt.Errorf("%s pcr %d: go-attestation says %w, plain replay says %s", name, i, verifyErr, st)
			}
			status[st] = append(status[st], i)
			switch {
			case st == "MISMATCH", st == "outside" && !allowOutside[i]:
				failed = append(failed, fmt.Sprintf("%s:%d(%s)", name, i, st))
			case st == "replays" && alg == crypto.SHA256:
				good = append(good, pcr)
			}
		}
		fmt.Printf("  %-6s replays %v; reset %v; outside %v; MISMATCH %v\n",
			name, status["replays"], status["reset"], status["outside"], status["MISMATCH"])
	}
	if len(good) > 0 {
		verified, err := el.Verify(good)
		if err != nil {
			return fmt.Errorf("replay of all good PCRs: %w", err)
		}
		sb, err := attest.ParseSecurebootState(verified)
		if err != nil {
			fmt.Printf("  ParseSecurebootState: error: %v\n", err)
		} else {
			fmt.Printf("  secure boot enabled: %v\n", sb.Enabled)
			fmt.Printf("  PK %s; KEK %s; db %s; dbx %d keys %d hashes\n",
				subjects(sb.PlatformKeys), subjects(sb.ExchangeKeys), subjects(sb.PermittedKeys),
				len(sb.ForbiddenKeys), len(sb.ForbiddenHashes))
			fmt.Printf("  authority before separator %s; after separator %s\n",
				subjects(sb.PreSeparatorAuthority), subjects(sb.PostSeparatorAuthority))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: PCRs do not replay: %s", logPath, strings.Join(failed, " "))
	}
	return nil
}

// classify replays the events of one PCR from a zero start, skipping
// EV_NO_ACTION events (a log with an H-CRTM/StartupLocality event would need
// more; OVMF logs have none).
func classify(events []attest.Event, index int, want []byte) string {
	cur := make([]byte, len(want))
	n := 0
	for _, e := range events {
		if e.Index != index || e.Type == eventTypeNoAction {
			continue
		}
		h := hashOf(len(want))
		h.Write(cur)
		h.Write(e.Digest)
		cur = h.Sum(nil)
		n++
	}
	switch {
	case n > 0 && bytes.Equal(cur, want):
		return "replays"
	case n > 0:
		return "MISMATCH"
	case bytes.Equal(want, cur) || bytes.Equal(want, bytes.Repeat([]byte{0xff}, len(want))):
		return "reset"
	default:
		return "outside"
	}
}

const eventTypeNoAction = 0x03

func hashOf(size int) hash.Hash {
	for _, h := range hashes {
		if h.Size() == size {
			return h.New()
		}
	}
	panic("no hash of size " + strconv.Itoa(size))
}

// algID maps a crypto.Hash to its TPM algorithm ID, as attest.HashAlg wants.
func algID(h crypto.Hash) uint16 {
	return map[crypto.Hash]uint16{crypto.SHA1: 0x04, crypto.SHA256: 0x0b, crypto.SHA384: 0x0c, crypto.SHA512: 0x0d}[h]
}

func subjects(certs []x509.Certificate) string {
	if len(certs) == 0 {
		return "[]"
	}
	s := make([]string, 0, len(certs))
	for _, c := range certs {
		s = append(s, "\""+c.Subject.String()+"\"")
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func diffPCRs(a, b string) error {
	ba, err := readBanks(a)
	if err != nil {
		return err
	}
	bb, err := readBanks(b)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(ba)) {
		var diff []int
		for i := 0; i < 24; i++ {
			k := strconv.Itoa(i)
			if !bytes.Equal([]byte(ba[name][k]), []byte(bb[name][k])) {
				diff = append(diff, i)
			}
		}
		fmt.Printf("%s: PCRs differing: %v\n", name, diff)
	}
	if len(ba) != len(bb) {
		fmt.Printf("bank sets differ: %v vs %v\n", slices.Sorted(maps.Keys(ba)), slices.Sorted(maps.Keys(bb)))
	}
	return nil
}

func listEvents(logPath string) error {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	el, err := attest.ParseEventLog(raw)
	if err != nil {
		return fmt.Errorf("parse event log: %w", err)
	}
	for i, e := range el.Events(attest.HashSHA256) {
		fmt.Printf("%2d pcr=%-2d %-40s %x… data=%d %s\n", i, e.Index, e.Type, e.Digest[:6], len(e.Data), printable(e.Data))
	}
	return nil
}

// printable shows the ASCII (or UTF-16LE ASCII) characters of short event data.
func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		}
		if s.Len() >= 60 {
			break
		}
	}
	return strconv.Quote(s.String())
}
