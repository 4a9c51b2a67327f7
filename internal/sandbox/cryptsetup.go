package sandbox

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// MeasureLogPath is systemd's userspace TPM measurement log below a root.
const MeasureLogPath = "run/log/systemd/tpm2-measure.log"

// The dm-crypt volume WritePlatform puts the root file system on.
const (
	PlatformRootVolume   = "root"
	PlatformRootLUKSUUID = "3f2d0c1b-9a8e-4d7c-6b5a-49382716f0e1"
)

// celHashAlgs are systemd's names of the banks in its measure log.
var celHashAlgs = map[string]string{"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}

// MeasureVolumeKey does what systemd-cryptsetup does when it unlocks a
// volume with tpm2-measure-pcr=yes in /etc/crypttab: it extends PCR 15 in
// every bank with HMAC(volume key, "cryptsetup:<name>:<LUKS UUID>") and
// appends the record to the node's tpm2-measure.log.
func (r *Root) MeasureVolumeKey(t Extender, banks []string, name, luksUUID string, volumeKey []byte) error {
	s := "cryptsetup:" + name + ":" + luksUUID
	digests := map[string][]byte{}
	for _, bank := range banks {
		h, ok := bankHash[bank]
		if !ok {
			return fmt.Errorf("measure volume key: unknown bank %q", bank)
		}
		m := hmac.New(h.New, volumeKey)
		m.Write([]byte(s))
		digests[bank] = m.Sum(nil)
		if err := t.Extend(15, bank, digests[bank]); err != nil {
			return fmt.Errorf("measure volume key: extend pcr 15 %s: %w", bank, err)
		}
	}
	return r.AppendMeasureLog(15, "volume-key", s, digests)
}

// MeasurePlatformRootVolume measures the volume key of the volume
// WritePlatform puts the root file system on.
func (r *Root) MeasurePlatformRootVolume(t Extender, banks []string) error {
	return r.MeasureVolumeKey(t, banks, PlatformRootVolume, PlatformRootLUKSUUID, []byte("sandbox volume key of the root file system"))
}

// ClearMeasureLog removes the node's tpm2-measure.log, as a reboot does
// (/run is a tmpfs): the log then starts over with the PCRs.
func (r *Root) ClearMeasureLog() error {
	err := os.Remove(filepath.Join(r.Dir, MeasureLogPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// AppendMeasureLog appends one record to the node's tpm2-measure.log as
// systemd writes it (RS, one JSON object, LF) without extending anything:
// with it a test forges a log.
func (r *Root) AppendMeasureLog(pcr int, eventType, description string, digests map[string][]byte) error {
	type digest struct {
		HashAlg string `json:"hashAlg"`
		Digest  string `json:"digest"`
	}
	var ds []digest
	for _, bank := range slices.Sorted(maps.Keys(digests)) {
		ds = append(ds, digest{HashAlg: celHashAlgs[bank], Digest: hex.EncodeToString(digests[bank])})
	}
	rec := map[string]any{
		"pcr": pcr, "digests": ds, "content_type": "systemd",
		"content": map[string]any{"string": description, "bootId": "8c4a2e3b5a0c4d8e9b1f0e6c2a7d4f10", "timestamp": 1, "eventType": eventType},
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	p := filepath.Join(r.Dir, MeasureLogPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // fixture directories are public
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600) //nolint:gosec // G304: a path under the sandbox node's own root
	if err != nil {
		return err
	}
	if _, err := f.Write(append(append([]byte{0x1e}, body...), '\n')); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
