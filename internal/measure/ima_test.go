package measure

import (
	"errors"
	"strings"
	"testing"
)

const (
	imaLine0 = "10 0adefe762c149c7cec19da62f0da1297fcfbffff ima-ng sha256:0000000000000000000000000000000000000000000000000000000000000000 boot_aggregate"
	imaLine1 = "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5b8e2b2a0a1a6d4c5b4c5e0f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c /usr/lib/systemd/systemd"
	imaLine2 = "10 7c1f3e2d4b5a69788796a5b4c3d2e1f00f1e2d3c ima-ng sha256:1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100ffee /usr/lib/x86_64-linux-gnu/libc.so.6"
	imaLine3 = "10 8f9e0d1c2b3a49586776859403a2b1c0d9e8f7a6 ima-sig sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 /usr/bin/kubelet 030204a1b2c3d40100"
	imaLine4 = "10 99aa88bb77cc66dd55ee44ff3300221100112233 ima-ng sha256:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100 /etc/kubernetes/kubelet with space.conf"
)

func TestIMALog(t *testing.T) {
	all := []string{imaLine0, imaLine1, imaLine2, imaLine3, imaLine4}
	join := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	tests := []struct {
		name      string
		root      string
		offset    int
		opts      []Option
		want      string
		wantTotal int
		wantErr   error
	}{
		{name: "offset zero returns the whole log", root: "testdata/root-luks-lvm", offset: 0, want: join(all...), wantTotal: 5},
		{name: "an offset in the middle returns the entries from there on", root: "testdata/root-luks-lvm", offset: 3, want: join(imaLine3, imaLine4), wantTotal: 5},
		{name: "an offset at the end returns no lines and the total", root: "testdata/root-luks-lvm", offset: 5, want: "", wantTotal: 5},
		{name: "an offset beyond the end is an error the verifier can recognise", root: "testdata/root-luks-lvm", offset: 6, wantTotal: 5, wantErr: ErrIMAOffset},
		{name: "the old ima template is accepted", root: "testdata/root-plain", offset: 1, want: "10 1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e ima 2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f /sbin/init\n", wantTotal: 2},
		{name: "a node without ima reports ErrNoIMA", root: "testdata/root-overlay", wantErr: ErrNoIMA},
		{name: "returned lines beyond the size limit are refused", root: "testdata/root-luks-lvm", opts: []Option{WithMaxLogSize(300)}, wantErr: ErrTooLarge},
		{name: "lines before the offset do not count against the size limit", root: "testdata/root-luks-lvm", offset: 4, opts: []Option{WithMaxLogSize(300)}, want: join(imaLine4), wantTotal: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, used, total, err := New(tt.root, tt.opts...).IMALog(tt.offset)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("IMALog(%d) error = %v, want %v", tt.offset, err, tt.wantErr)
			}
			if total != tt.wantTotal {
				t.Errorf("IMALog(%d) total = %d, want %d", tt.offset, total, tt.wantTotal)
			}
			if err != nil {
				return
			}
			if lines != tt.want {
				t.Errorf("IMALog(%d) lines =\n%q\nwant\n%q", tt.offset, lines, tt.want)
			}
			if used != tt.offset {
				t.Errorf("IMALog(%d) offset used = %d", tt.offset, used)
			}
		})
	}
}

func TestIMALogRejects(t *testing.T) {
	tests := []struct {
		name    string
		log     string
		offset  int
		wantErr error
	}{
		{name: "a negative offset is refused", log: imaLine0 + "\n", offset: -1},
		{name: "a malformed line among those returned is an error", log: imaLine0 + "\nnot an ima line\n", offset: 0, wantErr: ErrMalformedIMA},
		{name: "an empty line among those returned is an error", log: imaLine0 + "\n\n" + imaLine1 + "\n", offset: 0, wantErr: ErrMalformedIMA},
		{name: "a line longer than the line limit is an error", log: imaLine0 + " " + strings.Repeat("a", maxIMALine) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{imaLogPath: tt.log})
			_, _, _, err := New(root).IMALog(tt.offset)
			if err == nil {
				t.Fatalf("IMALog(%d) succeeded, want an error", tt.offset)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("IMALog(%d) error = %v, want %v", tt.offset, err, tt.wantErr)
			}
		})
	}
}

func TestIMAEntryCount(t *testing.T) {
	tests := []struct {
		name string
		log  string
		want int
	}{
		{name: "an empty log has no entries", log: "", want: 0},
		{name: "each newline-terminated line is one entry", log: imaLine0 + "\n" + imaLine1 + "\n", want: 2},
		{name: "a last line without a newline still counts", log: imaLine0 + "\n" + imaLine1, want: 2},
		{name: "the count does not check the lines", log: "x\ny\nz\n", want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{imaLogPath: tt.log})
			got, err := New(root).IMAEntryCount()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("IMAEntryCount() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestIMAEntryCountAgreesWithIMALog(t *testing.T) {
	c := New("testdata/root-luks-lvm")
	n, err := c.IMAEntryCount()
	if err != nil {
		t.Fatal(err)
	}
	_, _, total, err := c.IMALog(0)
	if err != nil {
		t.Fatal(err)
	}
	if n != total || n != 5 {
		t.Errorf("IMAEntryCount() = %d, IMALog total = %d, want both 5", n, total)
	}
}

func TestIMAEntryCountWithoutIMA(t *testing.T) {
	_, err := New("testdata/root-overlay").IMAEntryCount()
	if !errors.Is(err, ErrNoIMA) {
		t.Fatalf("IMAEntryCount() error = %v, want ErrNoIMA", err)
	}
}

func TestSplitIMALine(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantOK   bool
		wantData string
	}{
		{name: "an ima-ng line splits into its fields", line: imaLine1, wantOK: true, wantData: "sha256:3e3ab7d5b8e2b2a0a1a6d4c5b4c5e0f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c /usr/lib/systemd/systemd"},
		{name: "a path with spaces stays whole in the data", line: imaLine4, wantOK: true, wantData: "sha256:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100 /etc/kubernetes/kubelet with space.conf"},
		{name: "an ima-sig line with a signature is accepted", line: imaLine3, wantOK: true, wantData: "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 /usr/bin/kubelet 030204a1b2c3d40100"},
		{name: "an ima-sig line without a signature is accepted", line: "10 8f9e0d1c2b3a49586776859403a2b1c0d9e8f7a6 ima-sig sha256:a1b2 /usr/bin/x", wantOK: true, wantData: "sha256:a1b2 /usr/bin/x"},
		{name: "an old ima line is accepted", line: "10 1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e ima 2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f /sbin/init", wantOK: true, wantData: "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f /sbin/init"},
		{name: "an old ima line with an algorithm prefix is refused", line: "10 1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e ima sha1:2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f /sbin/init"},
		{name: "an ima-ng line without an algorithm is refused", line: "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng 3e3ab7d5 /usr/bin/x"},
		{name: "an ima-ng line without a file name is refused", line: "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5"},
		{name: "an odd number of digest digits is refused", line: "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3 /x"},
		{name: "a template hash of the wrong length is refused", line: "10 5a2e8b ima-ng sha256:3e3ab7d5 /x"},
		{name: "an upper-case template hash is refused", line: "10 5A2E8BD2A1F4B2C3D4E5F60718293A4B5C6D7E8F ima-ng sha256:3e3ab7d5 /x"},
		{name: "a pcr index beyond 23 is refused", line: "24 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5 /x"},
		{name: "a signed pcr index is refused", line: "+1 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5 /x"},
		{name: "an unknown template is refused", line: "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f evm-x sha256:3e3ab7d5 /x"},
		{name: "an empty template name is refused", line: "10 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f  sha256:3e3ab7d5 /x"},
		{name: "an empty line is refused", line: ""},
		{name: "a one-digit pcr index padded with a space as the kernel prints it is accepted", line: " 9 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5 /x", wantOK: true, wantData: "sha256:3e3ab7d5 /x"},
		{name: "a one-digit pcr index padded with a zero is refused", line: "09 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5 /x"},
		{name: "a one-digit pcr index without padding is refused", line: "9 5a2e8bd2a1f4b2c3d4e5f60718293a4b5c6d7e8f ima-ng sha256:3e3ab7d5 /x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := splitIMALine(tt.line)
			if (err == nil) != tt.wantOK {
				t.Fatalf("splitIMALine(%q) error = %v, want ok %v", tt.line, err, tt.wantOK)
			}
			if tt.wantOK && e.Data != tt.wantData {
				t.Errorf("splitIMALine(%q) data = %q, want %q", tt.line, e.Data, tt.wantData)
			}
		})
	}
}
