package measure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/<pid>/mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
type mountInfo struct {
	MountID, ParentID int
	Major, Minor      uint32
	Root              string
	MountPoint        string
	Options           string
	Optional          []string
	FSType            string
	Source            string
	SuperOptions      string
}

// parseMountinfoLine parses one mountinfo line. Root, mount point and source
// have their octal escapes (\040 for a space, \011, \012, \134) decoded.
func parseMountinfoLine(line string) (mountInfo, error) {
	var m mountInfo
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) != sep+4 {
		return m, errors.New("mountinfo line does not have the proc(5) fields")
	}
	var err error
	if m.MountID, err = strconv.Atoi(f[0]); err != nil || m.MountID < 0 {
		return m, fmt.Errorf("mountinfo mount id %q is not a number", clip(f[0]))
	}
	if m.ParentID, err = strconv.Atoi(f[1]); err != nil || m.ParentID < 0 {
		return m, fmt.Errorf("mountinfo parent id %q is not a number", clip(f[1]))
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("mountinfo device %q is not major:minor", clip(f[2]))
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil || !allDigits(maj) || !allDigits(min) {
		return m, fmt.Errorf("mountinfo device %q is not major:minor", clip(f[2]))
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	if m.Root, err = unescapeOctal(f[3]); err != nil {
		return m, fmt.Errorf("mountinfo root: %w", err)
	}
	if m.MountPoint, err = unescapeOctal(f[4]); err != nil {
		return m, fmt.Errorf("mountinfo mount point: %w", err)
	}
	m.Options = f[5]
	m.Optional = f[6:sep]
	if m.FSType, err = unescapeOctal(f[sep+1]); err != nil {
		return m, fmt.Errorf("mountinfo file system type: %w", err)
	}
	if m.Source, err = unescapeOctal(f[sep+2]); err != nil {
		return m, fmt.Errorf("mountinfo source: %w", err)
	}
	m.SuperOptions = f[sep+3]
	if m.MountPoint == "" || m.FSType == "" {
		return m, errors.New("mountinfo line has an empty mount point or file system type")
	}
	return m, nil
}

// unescapeOctal decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash in mountinfo fields.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape in %q", clip(s))
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil || !isOctal(s[i+1:i+4]) {
			return "", fmt.Errorf("bad escape in %q", clip(s))
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}
