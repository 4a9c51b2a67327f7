package measure

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"

	"trustedcompute.io/tc/internal/evidence"
)

const (
	// maxMountinfo bounds the mountinfo file (busy Kubernetes nodes have
	// thousands of mounts, each line well under a kilobyte).
	maxMountinfo = 8 << 20
	// maxStackDepth bounds how many device-mapper layers are followed below
	// the root device.
	maxStackDepth = 8
	// maxStackDevices bounds how many devices are visited in all.
	maxStackDevices = 64
)

// cryptMethods maps the type in a dm-crypt device's dm/uuid
// ("CRYPT-<TYPE>-...") to the method reported. CRYPT-VERITY and
// CRYPT-INTEGRITY, also made by cryptsetup, protect integrity only and are
// deliberately absent.
var cryptMethods = map[string]string{
	"LUKS1":   "dm-crypt/LUKS1",
	"LUKS2":   "dm-crypt/LUKS2",
	"PLAIN":   "dm-crypt/plain",
	"LOOPAES": "dm-crypt/loop-AES",
	"TCRYPT":  "dm-crypt/TCRYPT",
	"BITLK":   "dm-crypt/BitLocker",
	"FVAULT2": "dm-crypt/FileVault2",
}

// diskEncryption finds the block device under "/" and reports whether every
// path down its device stack passes through a dm-crypt device. It never
// fails: what it cannot establish it reports as not encrypted with a Reason.
func (c *Collector) diskEncryption(r *os.Root) evidence.DiskEncryption {
	m, err := c.rootMount(r)
	if err != nil {
		return evidence.DiskEncryption{Reason: err.Error()}
	}
	if m.Major == 0 {
		return evidence.DiskEncryption{Reason: fmt.Sprintf("root file system is %s, not on a block device", m.FSType)}
	}
	devNum := fmt.Sprintf("%d:%d", m.Major, m.Minor)
	dir := "sys/dev/block/" + devNum
	if _, err := r.Stat(dir); err != nil {
		return evidence.DiskEncryption{Reason: fmt.Sprintf("root block device %s has no sysfs entry: %v", devNum, err)}
	}
	name := deviceName(r, dir, devNum)
	w := stackWalk{r: r, budget: maxStackDevices}
	res := w.walk(dir, name, 0)
	de := evidence.DiskEncryption{Enabled: res.encrypted, RootDevice: name, Method: res.method, Volumes: res.volumes}
	if !res.encrypted {
		de.Method = ""
		de.Reason = res.reason
		de.Volumes = nil
	}
	return de
}

// rootMount returns the last mountinfo entry for "/" (the one visible when
// mounts are stacked).
func (c *Collector) rootMount(r *os.Root) (mountInfo, error) {
	f, err := r.Open(c.mountinfoPath)
	if isNotExist(err) {
		return mountInfo{}, fmt.Errorf("cannot find the root mount: %s does not exist", c.mountinfoPath)
	}
	if err != nil {
		return mountInfo{}, fmt.Errorf("read mountinfo: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	s := bufio.NewScanner(&capReader{r: f, left: maxMountinfo})
	s.Buffer(make([]byte, 0, 64<<10), 64<<10)
	var root mountInfo
	found := false
	for s.Scan() {
		m, err := parseMountinfoLine(s.Text())
		if err != nil {
			c.logger.Debug("skipping mountinfo line", logKeyPath, c.mountinfoPath, logKeyError, err)
			continue
		}
		if m.MountPoint == "/" {
			root, found = m, true
		}
	}
	if err := s.Err(); err != nil {
		return mountInfo{}, fmt.Errorf("read mountinfo: %w", err)
	}
	if !found {
		return mountInfo{}, fmt.Errorf("no root mount in %s", c.mountinfoPath)
	}
	return root, nil
}

// deviceName names a block device by its sysfs entry: the target of the
// sys/dev/block symlink, else DEVNAME from its uevent, else major:minor.
func deviceName(r *os.Root, dir, devNum string) string {
	if target, err := r.Readlink(dir); err == nil {
		if b := path.Base(target); validDevName(b) {
			return b
		}
	}
	if data, err := readBounded(r, dir+"/uevent", smallFileLimit); err == nil {
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVNAME="); ok && validDevName(v) {
				return v
			}
		}
	}
	return devNum
}

func validDevName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

type stackResult struct {
	encrypted bool
	method    string
	reason    string
	// volumes are the dm-crypt devices reached, in walk order.
	volumes []evidence.CryptVolume
}

type stackWalk struct {
	r      *os.Root
	budget int
}

func (w *stackWalk) walk(dir, name string, depth int) stackResult {
	w.budget--
	if depth > maxStackDepth || w.budget < 0 {
		return stackResult{reason: fmt.Sprintf("device stack under the root is deeper than %d layers or wider than %d devices", maxStackDepth, maxStackDevices)}
	}
	dmUUID := ""
	if data, err := readBounded(w.r, dir+"/dm/uuid", smallFileLimit); err == nil {
		dmUUID = strings.TrimSpace(string(data))
	}
	if rest, ok := strings.CutPrefix(dmUUID, "CRYPT-"); ok {
		typ, _, _ := strings.Cut(rest, "-")
		if method, ok := cryptMethods[typ]; ok {
			return stackResult{encrypted: true, method: method, volumes: []evidence.CryptVolume{cryptVolume(w.r, dir, rest)}}
		}
	}
	slaves, err := listDir(w.r, dir+"/slaves")
	if err != nil || len(slaves) == 0 {
		if depth == 0 {
			return stackResult{reason: fmt.Sprintf("root device %s is not a dm-crypt device and has no underlying devices", name)}
		}
		return stackResult{reason: fmt.Sprintf("root file system rests on %s, which is not encrypted", name)}
	}
	var first stackResult
	var volumes []evidence.CryptVolume
	for i, s := range slaves {
		if !validDevName(s) {
			return stackResult{reason: fmt.Sprintf("device %s lists an invalid underlying device name", name)}
		}
		res := w.walk("sys/class/block/"+s, s, depth+1)
		if !res.encrypted {
			return res
		}
		if i == 0 {
			first = res
		}
		volumes = append(volumes, res.volumes...)
	}
	first.volumes = volumes
	return first
}

// cryptVolume names a dm-crypt device as systemd-cryptsetup does in its
// volume key measurement ("cryptsetup:<name>:<LUKS UUID>"): its dm/name
// and, for LUKS, the header UUID that dm/uuid carries without hyphens
// ("CRYPT-LUKS2-<32 hex>-<name>"; rest is what follows "CRYPT-").
func cryptVolume(r *os.Root, dir, rest string) evidence.CryptVolume {
	var v evidence.CryptVolume
	if data, err := readBounded(r, dir+"/dm/name", smallFileLimit); err == nil {
		v.Name = strings.TrimSpace(string(data))
	}
	typ, tail, _ := strings.Cut(rest, "-")
	if typ != "LUKS1" && typ != "LUKS2" {
		return v
	}
	hexUUID, _, _ := strings.Cut(tail, "-")
	if len(hexUUID) == 32 && isHex(hexUUID) {
		h := strings.ToLower(hexUUID)
		v.UUID = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	return v
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

func listDir(r *os.Root, dir string) ([]string, error) {
	f, err := r.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	names, err := f.Readdirnames(maxStackDevices + 1)
	slices.Sort(names)
	return names, err
}

// logSkipped records a host fact that could not be collected.
func (c *Collector) logSkipped(fact, p string, err error) {
	c.logger.Debug("host fact not collected", slog.String(logKeyFact, fact), slog.String(logKeyPath, p), slog.Any(logKeyError, err))
}
