//go:build linux

package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkTmpfs refuses a directory that is not on a tmpfs (or ramfs): a
// released secret must never reach a disk.
func checkTmpfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC {
		return fmt.Errorf("%w (file system type %#x)", ErrNotTmpfs, st.Type)
	}
	return nil
}
