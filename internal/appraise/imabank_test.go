package appraise

import (
	"crypto/sha1"
	"fmt"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

// quotedBanksOnly makes the node's quote, and the verifier's request,
// cover only the given banks.
func (n *node) quotedBanksOnly(t *testing.T, banks ...string) {
	t.Helper()
	for bank := range n.pcrs {
		if !slices.Contains(banks, bank) {
			delete(n.pcrs, bank)
		}
	}
	n.req.Banks = banks
	log, ima := n.rsp.EventLog, n.rsp.IMALog
	n.rsp = buildQuote(t, n.ak, n.req.Nonce, n.pcrs, quoteOptions{resetCount: 7})
	n.rsp.EventLog, n.rsp.IMALog = log, ima
}

func TestTheIMALogIsReplayedInSHA256WhenTheQuoteCoversItsPCR10(t *testing.T) {
	tests := []struct {
		name   string
		quoted []string
		want   string
	}{
		{"a quote of both banks is replayed in SHA-256", []string{evidence.BankSHA256, evidence.BankSHA384}, evidence.BankSHA256},
		{"a quote of SHA-256 alone is replayed in SHA-256", []string{evidence.BankSHA256}, evidence.BankSHA256},
		{"a quote of SHA-384 alone is replayed in SHA-384", []string{evidence.BankSHA384}, evidence.BankSHA384},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, "ecc-p256", 3, 12)
			n.quotedBanksOnly(t, tt.quoted...)
			v := Appraise(n.input(), testNow)
			if !v.Trusted() {
				t.Fatalf("faults: %v", v.Faults)
			}
			if v.IMA == nil || v.IMA.Bank != tt.want || !slices.Equal(v.IMANextValue, n.pcrs[tt.want][imaPCR]) {
				t.Fatalf("replayed in %v to %x, want %s and the quoted %x", v.IMA, v.IMANextValue, tt.want, n.pcrs[tt.want][imaPCR])
			}
		})
	}
}

// TestAnEditedIMALineFailsTheSHA256ReplayAsItFailedTheSHA384Replay plays
// an attacker who edits the IMA log the agent sends: each edit must give
// the SHA-256 replay the faults (by name, and the file they name) that the
// SHA-384 replay, the bank replayed before, gives, and never none.
func TestAnEditedIMALineFailsTheSHA256ReplayAsItFailedTheSHA384Replay(t *testing.T) {
	const victim = 5 // the line the attacker edits (0 is boot_aggregate)
	edit := func(f func(fields []string) []string) func(lines []string) []string {
		return func(lines []string) []string {
			fields := strings.SplitN(lines[victim], " ", 5)
			lines[victim] = strings.Join(f(fields), " ")
			return lines
		}
	}
	tests := []struct {
		name string
		edit func(lines []string) []string
	}{
		{"another path in the template data", edit(func(f []string) []string { f[4] = "/usr/bin/evil"; return f })},
		{"another file hash in the template data", edit(func(f []string) []string {
			f[3] = "sha256:" + strings.Repeat("ab", 32)
			return f
		})},
		{"another template hash column", edit(func(f []string) []string { f[1] = strings.Repeat("01", 20); return f })},
		{"a template hash column of zeros, a false violation", edit(func(f []string) []string { f[1] = strings.Repeat("00", 20); return f })},
		{"the path and the column edited together", edit(func(f []string) []string {
			f[4] = "/usr/bin/evil"
			e, err := ParseIMALine(strings.Join(f, " "))
			if err != nil {
				t.Fatal(err)
			}
			f[1] = fmt.Sprintf("%x", sha1.Sum(e.templateData()))
			return f
		})},
		{"a line dropped", func(lines []string) []string { return slices.Delete(lines, victim, victim+1) }},
		{"two lines swapped", func(lines []string) []string {
			lines[victim], lines[victim+1] = lines[victim+1], lines[victim]
			return lines
		}},
		{"a line added", func(lines []string) []string {
			return slices.Insert(lines, victim, imaLine("/usr/bin/evil", []byte("x")))
		}},
	}
	appraiseEdited := func(t *testing.T, edit func([]string) []string, banks ...string) []string {
		n := newNode(t, "ecc-p256", 3, 12)
		n.quotedBanksOnly(t, banks...)
		lines := strings.Split(strings.TrimSuffix(n.rsp.IMALog, "\n"), "\n")
		n.rsp.IMALog = strings.Join(edit(lines), "\n") + "\n"
		v := Appraise(n.input(), testNow)
		var got []string
		for _, f := range v.Faults {
			got = append(got, f.Name+" "+f.File)
		}
		return got
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := appraiseEdited(t, tt.edit, evidence.BankSHA384)
			after := appraiseEdited(t, tt.edit, evidence.BankSHA256, evidence.BankSHA384)
			if len(after) == 0 || !slices.Equal(after, before) {
				t.Fatalf("faults of the SHA-256 replay %q, of the SHA-384 replay %q", after, before)
			}
		})
	}
}
