package sandbox

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Layout of a node's file system root, as the trust agent reads it.
const (
	EventLogPath = "sys/kernel/security/tpm0/binary_bios_measurements"
	IMALogPath   = "sys/kernel/security/ima/ascii_runtime_measurements"
	UUIDPath     = "sys/class/dmi/id/product_uuid"
)

// Root is a simulated node's file system root.
type Root struct {
	Dir string
}

// NewRoot lays out a node root in dir: os-release, DMI facts with the given
// system UUID, the firmware event log and an empty IMA log.
func NewRoot(dir, hardwareUUID, hostName string, eventLog []byte) (*Root, error) {
	files := map[string][]byte{
		"etc/os-release":                 []byte("NAME=\"Trusted Compute Sandbox\"\nID=tcsandbox\nVERSION_ID=\"1\"\n"),
		UUIDPath:                         []byte(hardwareUUID + "\n"),
		"sys/class/dmi/id/bios_vendor":   []byte("EDK II\n"),
		"sys/class/dmi/id/bios_version":  []byte("sandbox-ovmf\n"),
		"sys/class/dmi/id/bios_date":     []byte("02/06/2015\n"),
		"proc/sys/kernel/hostname":       []byte(hostName + "\n"),
		"proc/sys/kernel/osrelease":      []byte("6.1.0-sandbox\n"),
		"proc/sys/kernel/random/boot_id": []byte("8c4a2e3b-5a0c-4d8e-9b1f-0e6c2a7d4f10\n"),
		EventLogPath:                     eventLog,
		IMALogPath:                       nil,
		"sys/firmware/efi/efivars/.keep": nil,
	}
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // fixture directories are public, like the files
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil { //nolint:gosec // fixture files are public
			return nil, err
		}
	}
	return &Root{Dir: dir}, nil
}

// AppendIMA appends lines to the node's IMA log.
func (r *Root) AppendIMA(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(r.Dir, IMALogPath), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := f.WriteString(l); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

// MeasureFiles measures files (path → content) into the TPM and the IMA log,
// as the kernel does when they are opened.
func (r *Root) MeasureFiles(t Extender, banks []string, files map[string]string) error {
	for _, path := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256([]byte(files[path]))
		line, err := MeasureFile(t, banks, path, sum[:])
		if err != nil {
			return fmt.Errorf("measure %s: %w", path, err)
		}
		if err := r.AppendIMA(line); err != nil {
			return err
		}
	}
	return nil
}

// Paths of the platform facts WritePlatform lays out.
const (
	SecureBootVarPath = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
	mountinfoPath     = "proc/self/mountinfo"
	rootDevDir        = "sys/dev/block/253:0"
)

// WritePlatform adds the facts the agent reads beside the logs: the
// SecureBoot EFI variable (the agent's unsigned claim; the verifier reads
// Secure Boot from the quoted PCR 7 events) and a root file system on a
// LUKS2 dm-crypt device, so that a verified node can be "ready".
func (r *Root) WritePlatform(secureBoot bool) error {
	sb := byte(0)
	if secureBoot {
		sb = 1
	}
	files := map[string][]byte{
		SecureBootVarPath:            {0x06, 0, 0, 0, sb},
		mountinfoPath:                []byte("22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw\n"),
		rootDevDir + "/uevent":       []byte("MAJOR=253\nMINOR=0\nDEVNAME=dm-0\nDEVTYPE=disk\n"),
		rootDevDir + "/dm/uuid":      []byte("CRYPT-LUKS2-3f2d0c1b9a8e4d7c6b5a49382716f0e1-root\n"),
		rootDevDir + "/dm/name":      []byte("root\n"),
		rootDevDir + "/slaves/.keep": nil,
	}
	for rel, data := range files {
		p := filepath.Join(r.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // fixture directories are public
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil { //nolint:gosec // fixture files are public
			return err
		}
	}
	return nil
}
