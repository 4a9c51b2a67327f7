package vm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
)

// evNoAction events are logged but never extended into a PCR.
const evNoAction = 3

// replaySHA256 computes the SHA-256 PCRs a log's own events extend to.
func replaySHA256(t *testing.T, log *appraise.EventLog) appraise.PCRs {
	t.Helper()
	pcrs := map[int][]byte{}
	for _, ev := range log.Events(evidence.BankSHA256) {
		if ev.Type == evNoAction {
			continue
		}
		d, err := hex.DecodeString(ev.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := pcrs[ev.Index]
		if !ok {
			cur = make([]byte, sha256.Size)
		}
		sum := sha256.Sum256(append(slices.Clone(cur), d...))
		pcrs[ev.Index] = sum[:]
	}
	return appraise.PCRs{evidence.BankSHA256: pcrs}
}

func loadLog(t *testing.T, name string) (*appraise.EventLog, appraise.PCRs) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := appraise.ParseEventLog(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return log, replaySHA256(t, log)
}

// TestStoredEventLogsOfTheAgentVM checks the event logs the VM test keeps
// (testdata/README.md): Secure Boot as PCR 7 tells it, and which PCRs a
// reboot, Secure Boot off and another kernel command line change. It needs
// no VM.
func TestStoredEventLogsOfTheAgentVM(t *testing.T) {
	base, basePCRs := loadLog(t, "sb-on")
	tests := []struct {
		name       string
		secureBoot bool
		changed    []int // SHA-256 PCRs that differ from sb-on
	}{
		{"sb-on", true, nil},
		{"sb-on-reboot", true, nil},
		{"sb-off", false, []int{0, 4, 7}},
		{"sb-on-cmdline2", true, []int{4, 9, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, pcrs := base, basePCRs
			if tt.name != "sb-on" {
				log, pcrs = loadLog(t, tt.name)
			}
			st, faults := appraise.SecureBoot(log, pcrs)
			if len(faults) != 0 {
				t.Fatalf("secure boot faults: %+v", faults)
			}
			if st.Enabled != tt.secureBoot {
				t.Errorf("Secure Boot enabled %v, want %v", st.Enabled, tt.secureBoot)
			}
			var changed []int
			for i := 0; i < 24; i++ {
				if !slices.Equal(pcrs[evidence.BankSHA256][i], basePCRs[evidence.BankSHA256][i]) {
					changed = append(changed, i)
				}
			}
			if !slices.Equal(changed, tt.changed) {
				t.Errorf("PCRs that differ from sb-on: %v, want %v", changed, tt.changed)
			}
		})
	}
}
