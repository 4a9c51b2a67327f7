package sandbox

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
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
	for _, path := range sortedKeys(files) {
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
