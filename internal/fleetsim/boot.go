package fleetsim

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
)

// extend is one PCR extend of a boot.
type extend struct {
	pcr    int
	bank   string
	digest []byte
}

// recorder is a sandbox.Extender that records the extends of a boot, so
// that the firmware's event log is parsed once for the whole fleet and
// every node's TPM gets the same extends.
type recorder struct {
	banks   []string
	extends []extend
}

func (r *recorder) Extend(pcr int, bank string, digest []byte) error {
	r.extends = append(r.extends, extend{pcr, bank, slices.Clone(digest)})
	return nil
}

func (r *recorder) ActiveBanks() ([]string, error) { return r.banks, nil }

// imaEntry is one IMA measurement: its log line and the template hash of
// each bank (what the kernel extends PCR 10 with).
type imaEntry struct {
	line    string
	extends []extend
}

// bootImage is what every node of the fleet boots: the same firmware, the
// same operating system image, hence the same measurements.
type bootImage struct {
	eventLog   []byte
	extends    []extend // firmware's event log, then systemd-cryptsetup's PCR 15
	measureLog []byte
	facts      evidence.HostInfo // the host facts of a node root, UUID and names replaced per node
	imaBoot    []imaEntry        // the files every boot measures
}

// newBootImage replays the real OVMF Secure Boot event log and lays out a
// sandbox node root (platform facts, a LUKS2 root volume whose key
// systemd-cryptsetup measures into PCR 15) once; the agent's own collector
// reads the host facts from that root.
func newBootImage(ctx context.Context, banks []string, imaFiles int) (*bootImage, error) {
	dir, err := os.MkdirTemp("", "fleetsim-root-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	eventLog := sandbox.BootLogSecureBootOn
	root, err := sandbox.NewRoot(dir, templateUUID, "fleetsim", eventLog)
	if err != nil {
		return nil, fmt.Errorf("node root: %w", err)
	}
	if err := root.WritePlatform(true); err != nil {
		return nil, fmt.Errorf("node root: %w", err)
	}
	// Outside "/" the collector reads the mount table as /proc/1/mountinfo.
	mounts, err := os.ReadFile(filepath.Join(dir, "proc/self/mountinfo")) //nolint:gosec // G304: our own temp dir
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "proc/1"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "proc/1/mountinfo"), mounts, 0o600); err != nil { //nolint:gosec // G703: our own temp dir
		return nil, err
	}
	rec := &recorder{banks: banks}
	got, err := sandbox.ReplayEventLog(rec, eventLog)
	if err != nil {
		return nil, fmt.Errorf("measured boot: %w", err)
	}
	if err := root.MeasurePlatformRootVolume(rec, got); err != nil {
		return nil, fmt.Errorf("measure the root volume key: %w", err)
	}
	measureLog, err := os.ReadFile(filepath.Join(dir, sandbox.MeasureLogPath)) //nolint:gosec // G304: our own temp dir
	if err != nil {
		return nil, err
	}
	facts, err := measure.New(dir).HostInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("host facts: %w", err)
	}
	img := &bootImage{eventLog: eventLog, extends: rec.extends, measureLog: measureLog, facts: facts}
	for i := range imaFiles {
		e, err := newIMAEntry(fmt.Sprintf("/usr/lib/fleetsim/lib%04d.so", i), fmt.Sprint("library ", i), got)
		if err != nil {
			return nil, err
		}
		img.imaBoot = append(img.imaBoot, e)
	}
	return img, nil
}

// newIMAEntry is the IMA measurement of a file with the given content.
func newIMAEntry(path, content string, banks []string) (imaEntry, error) {
	sum := sha256.Sum256([]byte(content))
	rec := &recorder{banks: banks}
	line, err := sandbox.MeasureFile(rec, banks, path, sum[:])
	if err != nil {
		return imaEntry{}, fmt.Errorf("measure %s: %w", path, err)
	}
	return imaEntry{line: line, extends: rec.extends}, nil
}

// templateUUID is the hardware UUID of the template root; each node has its own.
const templateUUID = "5f1e0000-0000-4000-8000-000000000000"
