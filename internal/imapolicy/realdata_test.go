package imapolicy

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

// realLog is the IMA log and quoted PCRs of a real kernel booted in QEMU
// with swtpm (testdata/README.md).
func realLog(t testing.TB) (string, appraise.PCRs) {
	t.Helper()
	log, err := os.ReadFile("testdata/vm-ima.log")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/vm-ima.pcrs.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	pcrs := appraise.PCRs{}
	for bank, values := range m {
		pcrs[bank] = map[int][]byte{}
		for i, v := range values {
			n, err := strconv.Atoi(i)
			if err != nil {
				t.Fatal(err)
			}
			if pcrs[bank][n], err = hex.DecodeString(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return string(log), pcrs
}

// realEntries replays the real log in both banks and returns the entries
// the quoted PCR 10 covers.
func realEntries(t testing.TB) ([]appraise.IMAEntry, appraise.PCRs) {
	t.Helper()
	log, pcrs := realLog(t)
	var entries []appraise.IMAEntry
	for _, bank := range []string{"SHA256", "SHA384"} {
		res, faults := appraise.ReplayIMA(log, nil, bank)
		covered, more := appraise.CompareIMA(res, pcrs)
		if len(faults)+len(more) > 0 || covered != 11 {
			t.Fatalf("the real log in %s: covered %d, faults %v %v; want 11 entries covered", bank, covered, faults, more)
		}
		entries = res.Entries[:covered]
	}
	return entries, pcrs
}

func TestARealKernelIMALog(t *testing.T) {
	log, _ := realLog(t)
	entries, pcrs := realEntries(t)
	generated, err := FromIMALog(log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := generated.Digests["/capture/usr/bin/bash"]; !ok || len(generated.Digests) != 10 {
		t.Fatalf("policy from the log has %d paths (%v), want the 10 measured files", len(generated.Digests), generated.Digests)
	}
	varLog, err := Parse([]byte(`{"meta":{"version":1},"excludes":["/var/log/.*"]}`))
	if err != nil {
		t.Fatal(err)
	}
	withExclude, err := Merge(generated, varLog)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(change func(p *Policy)) *Policy {
		p, err := Merge(withExclude)
		if err != nil {
			t.Fatal(err)
		}
		change(p)
		return p
	}
	changedPCR9 := appraise.PCRs{"SHA256": map[int][]byte{}}
	for i, v := range pcrs["SHA256"] {
		changedPCR9["SHA256"][i] = v
	}
	changedPCR9["SHA256"][9] = make([]byte, 32)

	for _, tt := range []struct {
		name        string
		policy      *Policy
		pcrs        appraise.PCRs
		fault, file string
	}{
		{"the policy made from the log with /var/log excluded allows the log, boot_aggregate included", withExclude, pcrs, "", ""},
		{"the policy made from the log alone names the kernel's violation", generated, pcrs, ImaPolicyViolation, "/var/log/app.log"},
		{"a changed digest of bash fails naming the file", edit(func(p *Policy) {
			p.Digests["/capture/usr/bin/bash"] = []string{digestOfContent("another bash")}
		}), pcrs, ImaPolicyDigestMismatch, "/capture/usr/bin/bash"},
		{"a file the policy lacks fails naming the file", edit(func(p *Policy) { delete(p.Digests, "/init") }), pcrs, ImaPolicyFileNotAllowed, "/init"},
		{"a path with spaces is the kernel's, with underscores", edit(func(p *Policy) {
			delete(p.Digests, "/capture/opt/my_app/run_me")
		}), pcrs, ImaPolicyFileNotAllowed, "/capture/opt/my_app/run_me"},
		{"the real boot_aggregate does not match another PCR 9", withExclude, changedPCR9, ImaPolicyBootAggregateMismatch, "boot_aggregate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			faults := c.Appraise(entries, tt.pcrs)
			if tt.fault == "" {
				if len(faults) > 0 {
					t.Fatalf("faults %+v", faults)
				}
				return
			}
			if len(faults) != 1 || faults[0].Name != tt.fault || faults[0].File != tt.file {
				t.Fatalf("faults %+v, want one %s naming %s", faults, tt.fault, tt.file)
			}
		})
	}
}

// The kernel computed the real log's boot_aggregate over SHA-256 PCRs 0-9
// (Linux 5.8 and later); BootAggregate agrees with it.
func TestBootAggregateMatchesARealKernel(t *testing.T) {
	entries, pcrs := realEntries(t)
	got, err := BootAggregate("sha256", pcrs)
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].Path != "boot_aggregate" || hex.EncodeToString(got) != hex.EncodeToString(entries[0].FileHash) {
		t.Fatalf("BootAggregate = %x, the kernel logged %x", got, entries[0].FileHash)
	}
}
