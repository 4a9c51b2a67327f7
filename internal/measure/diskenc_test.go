package measure

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

// blockDev adds the sysfs entries of one block device: its sys/dev/block
// link, dm/uuid when it is a device-mapper device, and its slaves.
func blockDev(files map[string]string, name, devNum, dmUUID string, slaves ...string) {
	dir := "sys/class/block/" + name
	files["sys/dev/block/"+devNum] = "-> ../../class/block/" + name
	files[dir+"/uevent"] = "DEVNAME=" + name + "\n"
	if dmUUID != "" {
		files[dir+"/dm/uuid"] = dmUUID + "\n"
		// The volume name ends the dm uuid ("CRYPT-LUKS2-<uuid>-<name>").
		files[dir+"/dm/name"] = dmUUID[strings.LastIndex(dmUUID, "-")+1:] + "\n"
	}
	for _, s := range slaves {
		files[dir+"/slaves/"+s] = "-> ../../" + s
	}
}

func rootMountinfo(devNum, fstype, source string) string {
	return fmt.Sprintf("21 1 0:20 / /proc rw - proc proc rw\n1 0 %s / / rw,relatime shared:1 - %s %s rw\n", devNum, fstype, source)
}

func TestDiskEncryption(t *testing.T) {
	tests := []struct {
		name  string
		build func(f map[string]string)
		want  evidence.DiskEncryption
		// reasonPrefix compares Reason by prefix where it quotes an
		// operating-system error.
		reasonPrefix bool
	}{
		{
			name: "luks directly under the root is encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "ext4", "/dev/mapper/root")
				blockDev(f, "dm-0", "253:0", "CRYPT-LUKS2-0a1b2c3d4e5f40718293a4b5c6d7e8f9-root", "sda2")
				blockDev(f, "sda2", "8:2", "")
			},
			want: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
				Volumes: []evidence.CryptVolume{{Name: "root", UUID: "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9"}}},
		},
		{
			name: "lvm on luks is encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:1", "ext4", "/dev/mapper/vg-root")
				blockDev(f, "dm-1", "253:1", "LVM-abc", "dm-0")
				blockDev(f, "dm-0", "253:0", "CRYPT-LUKS1-0a1b2c3d4e5f40718293a4b5c6d7e8f9-pv", "nvme0n1p3")
				blockDev(f, "nvme0n1p3", "259:3", "")
			},
			want: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-1", Method: "dm-crypt/LUKS1",
				Volumes: []evidence.CryptVolume{{Name: "pv", UUID: "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9"}}},
		},
		{
			name: "plain dm-crypt is encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "ext4", "/dev/mapper/root")
				blockDev(f, "dm-0", "253:0", "CRYPT-PLAIN-root", "sda2")
			},
			want: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/plain",
				Volumes: []evidence.CryptVolume{{Name: "root"}}},
		},
		{
			name: "luks on dm-integrity is encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:1", "ext4", "/dev/mapper/root")
				blockDev(f, "dm-1", "253:1", "CRYPT-LUKS2-0a1b-root", "dm-0")
				blockDev(f, "dm-0", "253:0", "CRYPT-INTEGRITY-root_dif", "sda2")
			},
			want: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-1", Method: "dm-crypt/LUKS2",
				Volumes: []evidence.CryptVolume{{Name: "root"}}},
		},
		{
			name: "dm-verity is not encryption",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "ext4", "/dev/mapper/usr")
				blockDev(f, "dm-0", "253:0", "CRYPT-VERITY-1a2b-usr", "sda3")
				blockDev(f, "sda3", "8:3", "")
			},
			want: evidence.DiskEncryption{RootDevice: "dm-0", Reason: "root file system rests on sda3, which is not encrypted"},
		},
		{
			name: "lvm on a plain partition is not encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "xfs", "/dev/mapper/vg-root")
				blockDev(f, "dm-0", "253:0", "LVM-abc", "sda3")
				blockDev(f, "sda3", "8:3", "")
			},
			want: evidence.DiskEncryption{RootDevice: "dm-0", Reason: "root file system rests on sda3, which is not encrypted"},
		},
		{
			name: "lvm spanning an encrypted and a plain volume is not encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:2", "ext4", "/dev/mapper/vg-root")
				blockDev(f, "dm-2", "253:2", "LVM-abc", "dm-0", "sdb1")
				blockDev(f, "dm-0", "253:0", "CRYPT-LUKS2-0a1b-pv", "sda2")
				blockDev(f, "sdb1", "8:17", "")
			},
			want: evidence.DiskEncryption{RootDevice: "dm-2", Reason: "root file system rests on sdb1, which is not encrypted"},
		},
		{
			name: "a root partition without device mapper is not encrypted",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("8:2", "ext4", "/dev/sda2")
				blockDev(f, "sda2", "8:2", "")
			},
			want: evidence.DiskEncryption{RootDevice: "sda2", Reason: "root device sda2 is not a dm-crypt device and has no underlying devices"},
		},
		{
			name: "an overlay root is not on a block device",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("0:52", "overlay", "overlay")
			},
			want: evidence.DiskEncryption{Reason: "root file system is overlay, not on a block device"},
		},
		{
			name: "a tmpfs root is not on a block device",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("0:23", "tmpfs", "tmpfs")
			},
			want: evidence.DiskEncryption{Reason: "root file system is tmpfs, not on a block device"},
		},
		{
			name: "a btrfs root with an anonymous device number is not followed",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("0:31", "btrfs", "/dev/mapper/root")
			},
			want: evidence.DiskEncryption{Reason: "root file system is btrfs, not on a block device"},
		},
		{
			name: "the last of several root mounts is the one that counts",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("8:2", "ext4", "/dev/sda2") + "90 1 253:0 / / rw - ext4 /dev/mapper/root rw\n"
				blockDev(f, "sda2", "8:2", "")
				blockDev(f, "dm-0", "253:0", "CRYPT-LUKS2-0a1b-root", "sda3")
			},
			want: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
				Volumes: []evidence.CryptVolume{{Name: "root"}}},
		},
		{
			name: "an escaped mount point that decodes to something else is not the root",
			build: func(f map[string]string) {
				f[mountinfoPath] = "1 0 8:2 / /\\040 rw - ext4 /dev/sda2 rw\n"
			},
			want: evidence.DiskEncryption{Reason: "no root mount in proc/self/mountinfo"},
		},
		{
			name: "a root device without a sysfs entry is reported",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("8:2", "ext4", "/dev/sda2")
			},
			want:         evidence.DiskEncryption{Reason: "root block device 8:2 has no sysfs entry: "},
			reasonPrefix: true,
		},
		{
			name: "an unknown crypt type is not counted as encryption",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "ext4", "/dev/mapper/root")
				blockDev(f, "dm-0", "253:0", "CRYPT-NEWTHING-root")
			},
			want: evidence.DiskEncryption{RootDevice: "dm-0", Reason: "root device dm-0 is not a dm-crypt device and has no underlying devices"},
		},
		{
			name: "a device stack that loops back on itself ends at the depth bound",
			build: func(f map[string]string) {
				f[mountinfoPath] = rootMountinfo("253:0", "ext4", "/dev/mapper/root")
				blockDev(f, "dm-0", "253:0", "LVM-a", "dm-1")
				blockDev(f, "dm-1", "253:1", "LVM-b", "dm-0")
			},
			want: evidence.DiskEncryption{RootDevice: "dm-0", Reason: "device stack under the root is deeper than 8 layers or wider than 64 devices"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			tt.build(files)
			c := New(writeTree(t, files))
			got := c.diskEncryption(mustOpenRoot(t, c))
			if tt.reasonPrefix && strings.HasPrefix(got.Reason, tt.want.Reason) {
				got.Reason = tt.want.Reason
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diskEncryption() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDiskEncryptionWithTheHostsMountinfo(t *testing.T) {
	files := map[string]string{"proc/1/mountinfo": rootMountinfo("253:0", "ext4", "/dev/mapper/root")}
	blockDev(files, "dm-0", "253:0", "CRYPT-LUKS2-0a1b-root")
	files[mountinfoPath] = rootMountinfo("0:52", "overlay", "overlay")
	c := New(writeTree(t, files), WithMountinfo("proc/1/mountinfo"))
	if got := c.diskEncryption(mustOpenRoot(t, c)); !got.Enabled {
		t.Errorf("diskEncryption() = %+v, want the host's encrypted root", got)
	}
}
