package measure

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestEventLog(t *testing.T) {
	real, err := os.ReadFile("testdata/root-luks-lvm/sys/kernel/security/tpm0/binary_bios_measurements")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    string
		opts    []Option
		want    []byte
		wantErr error
	}{
		{name: "a real crypto-agile event log is returned byte for byte", root: "testdata/root-luks-lvm", want: real},
		{name: "a node without tpm0 in securityfs has no event log", root: "testdata/root-overlay", wantErr: ErrNoEventLog},
		{name: "an empty event log counts as no event log", root: "testdata/root-no-efi", wantErr: ErrNoEventLog},
		{name: "an event log larger than the limit is refused", root: "testdata/root-luks-lvm", opts: []Option{WithMaxLogSize(1024)}, wantErr: ErrTooLarge},
		{name: "an event log exactly at the limit is accepted", root: "testdata/root-luks-lvm", opts: []Option{WithMaxLogSize(int64(len(real)))}, want: real},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.root, tt.opts...).EventLog()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("EventLog() error = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("EventLog() returned %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestEventLogFixtureIsACryptoAgileLog(t *testing.T) {
	got, err := New("testdata/root-luks-lvm").EventLog()
	if err != nil {
		t.Fatal(err)
	}
	// The first event is the Spec ID event in the SHA-1 log format.
	if len(got) < 48 || !strings.HasPrefix(string(got[32:]), "Spec ID Event03\x00") {
		t.Errorf("event log does not start with a Spec ID Event03 header")
	}
}

func TestEventLogDefaultLimitIsTheMessageLimit(t *testing.T) {
	root := writeTree(t, map[string]string{eventLogPath: ""})
	big := bytes.Repeat([]byte{0xa5}, 16<<20+1)
	if err := os.WriteFile(root+"/"+eventLogPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(root).EventLog()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("EventLog() error = %v, want ErrTooLarge", err)
	}
}
