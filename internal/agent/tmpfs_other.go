//go:build !linux

package agent

// checkTmpfs refuses every directory: only Linux can tell a tmpfs here.
func checkTmpfs(string) error { return ErrNotTmpfs }
