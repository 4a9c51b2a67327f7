package measure

import (
	"reflect"
	"testing"
)

func TestParseMountinfoLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    mountInfo
		wantErr bool
	}{
		{
			name: "the proc(5) example parses into its fields",
			line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
			want: mountInfo{MountID: 36, ParentID: 35, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt2", Options: "rw,noatime",
				Optional: []string{"master:1"}, FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue"},
		},
		{
			name: "a line without optional fields parses",
			line: "1 0 253:1 / / rw,relatime - ext4 /dev/mapper/vg0-root rw",
			want: mountInfo{MountID: 1, Major: 253, Minor: 1, Root: "/", MountPoint: "/", Options: "rw,relatime",
				Optional: []string{}, FSType: "ext4", Source: "/dev/mapper/vg0-root", SuperOptions: "rw"},
		},
		{
			name: "several optional fields are kept in order",
			line: "5 1 0:5 / /dev rw shared:2 master:1 propagate_from:1 unbindable - devtmpfs udev rw",
			want: mountInfo{MountID: 5, ParentID: 1, Major: 0, Minor: 5, Root: "/", MountPoint: "/dev", Options: "rw",
				Optional: []string{"shared:2", "master:1", "propagate_from:1", "unbindable"}, FSType: "devtmpfs", Source: "udev", SuperOptions: "rw"},
		},
		{
			name: "octal escapes in paths are decoded",
			line: `30 1 0:25 /a\134b /mnt/my\040data\011x\012 rw - tmpfs my\040src rw`,
			want: mountInfo{MountID: 30, ParentID: 1, Major: 0, Minor: 25, Root: `/a\b`, MountPoint: "/mnt/my data\tx\n", Options: "rw",
				Optional: []string{}, FSType: "tmpfs", Source: "my src", SuperOptions: "rw"},
		},
		{name: "a line without the separator is refused", line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw", wantErr: true},
		{name: "a line with too few fields after the separator is refused", line: "36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root", wantErr: true},
		{name: "a line with too many fields after the separator is refused", line: "36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw extra", wantErr: true},
		{name: "a device without a colon is refused", line: "36 35 980 /mnt1 /mnt2 rw - ext3 /dev/root rw", wantErr: true},
		{name: "a signed device number is refused", line: "36 35 +98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw", wantErr: true},
		{name: "a negative mount id is refused", line: "-36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw", wantErr: true},
		{name: "a truncated escape is refused", line: `36 35 98:0 /mnt1 /mnt\04 rw - ext3 /dev/root rw`, wantErr: true},
		{name: "a non-octal escape is refused", line: `36 35 98:0 /mnt1 /mnt\089 rw - ext3 /dev/root rw`, wantErr: true},
		{name: "an escape above one byte is refused", line: `36 35 98:0 /mnt1 /mnt\777 rw - ext3 /dev/root rw`, wantErr: true},
		{name: "an empty line is refused", line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfoLine(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMountinfoLine(%q) error = %v, want error %v", tt.line, err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMountinfoLine(%q) =\n%+v\nwant\n%+v", tt.line, got, tt.want)
			}
		})
	}
}
