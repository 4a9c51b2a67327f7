package measure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"trustedcompute.io/tc/internal/evidence"
)

const (
	osReleasePath    = "etc/os-release"
	osReleaseFallbck = "usr/lib/os-release"
	dmiDir           = "sys/class/dmi/id/"
	hostnamePath     = "proc/sys/kernel/hostname"
	etcHostnamePath  = "etc/hostname"
	osReleaseKernel  = "proc/sys/kernel/osrelease"
	bootIDPath       = "proc/sys/kernel/random/boot_id"
)

// HostInfo collects the host facts of evidence.HostInfo, all but TPM (which
// the caller fills from the TPM) and AgentVersion. A fact that is absent or
// unreadable leaves its field empty (DiskEncryption says why in Reason). The
// error is non-nil only when the context ends or when the hardware UUID, which
// identifies the host, is present but malformed (ErrHardwareUUID) or cannot be
// read for a reason other than its absence.
func (c *Collector) HostInfo(ctx context.Context) (evidence.HostInfo, error) {
	hi := evidence.HostInfo{Version: evidence.Version}
	r, err := c.openRoot()
	if err != nil {
		return hi, err
	}
	defer func() { _ = r.Close() }() // read-only root: a close error loses nothing

	hi.HardwareUUID, err = c.hardwareUUID(r)
	if err != nil {
		return evidence.HostInfo{}, err
	}
	hi.OSName, hi.OSVersion = c.osRelease(r)
	hi.BIOSName = c.smallFact(r, "bios vendor", dmiDir+"bios_vendor")
	hi.BIOSVersion = c.smallFact(r, "bios version", dmiDir+"bios_version")
	hi.BIOSDate = c.smallFact(r, "bios date", dmiDir+"bios_date")
	hi.HostName = c.hostName(r)
	hi.KernelRelease = c.smallFact(r, "kernel release", osReleaseKernel)
	if id := c.smallFact(r, "boot id", bootIDPath); id != "" {
		if n, err := normalizeUUID(id); err == nil {
			hi.BootID = n
		} else {
			c.logSkipped("boot id", bootIDPath, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return evidence.HostInfo{}, fmt.Errorf("collect host info: %w", err)
	}
	hi.UEFIEnabled = exists(r, efiDir)
	hi.SecureBootEfivar = c.secureBoot(r)
	hi.IMAEnabled = exists(r, imaDir)
	hi.DiskEncryption = c.diskEncryption(r)
	if err := ctx.Err(); err != nil {
		return evidence.HostInfo{}, fmt.Errorf("collect host info: %w", err)
	}
	return hi, nil
}

// smallFact reads a one-line file and returns it trimmed, or "" when it
// cannot be read.
func (c *Collector) smallFact(r *os.Root, fact, p string) string {
	data, err := readBounded(r, p, smallFileLimit)
	if err != nil {
		c.logSkipped(fact, p, err)
		return ""
	}
	s := strings.TrimSpace(string(data))
	if strings.ContainsAny(s, "\n\x00") {
		c.logSkipped(fact, p, errors.New("value spans several lines or holds a nul byte"))
		return ""
	}
	return s
}

func (c *Collector) hardwareUUID(r *os.Root) (string, error) {
	p := dmiDir + "product_uuid"
	data, err := readBounded(r, p, smallFileLimit)
	switch {
	case isNotExist(err):
		c.logSkipped("hardware uuid", p, err)
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read hardware uuid: %w", err)
	}
	u, err := normalizeUUID(string(data))
	if err != nil {
		return "", fmt.Errorf("hardware uuid from %s: %w", p, err)
	}
	return u, nil
}

func (c *Collector) osRelease(r *os.Root) (name, version string) {
	data, err := readBounded(r, osReleasePath, smallFileLimit)
	p := osReleasePath
	if isNotExist(err) {
		p = osReleaseFallbck
		data, err = readBounded(r, p, smallFileLimit)
	}
	if err != nil {
		c.logSkipped("os release", p, err)
		return "", ""
	}
	vars := parseOSRelease(string(data))
	name = vars["NAME"]
	if name == "" {
		name = vars["PRETTY_NAME"]
	}
	if name == "" {
		name = "Linux" // the default os-release(5) gives for NAME
	}
	version = vars["VERSION_ID"]
	if version == "" {
		version = vars["VERSION"]
	}
	return name, version
}

func (c *Collector) hostName(r *os.Root) string {
	if h := c.smallFact(r, "host name", hostnamePath); h != "" {
		return h
	}
	data, err := readBounded(r, etcHostnamePath, smallFileLimit)
	if err != nil {
		c.logSkipped("host name", etcHostnamePath, err)
		return ""
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line != "" && line[0] != '#' {
			return line
		}
	}
	return ""
}

// secureBoot reads the SecureBoot EFI variable through efivarfs: 4 bytes of
// attributes, then one data byte, 1 for enabled and 0 for disabled. It
// returns nil when the variable is absent, unreadable or not 5 bytes with a
// data byte of 0 or 1.
func (c *Collector) secureBoot(r *os.Root) *bool {
	data, err := readBounded(r, secureBootPath, smallFileLimit)
	if err != nil {
		c.logSkipped("secure boot efivar", secureBootPath, err)
		return nil
	}
	if len(data) != 5 || data[4] > 1 {
		c.logSkipped("secure boot efivar", secureBootPath, fmt.Errorf("want 4 attribute bytes and a data byte of 0 or 1, got % x", data[:min(len(data), 16)]))
		return nil
	}
	on := data[4] == 1
	return &on
}
