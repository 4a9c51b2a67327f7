package measure

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"

	"trustedcompute.io/tc/internal/evidence"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[string]string
	}{
		{name: "double-quoted values lose their quotes", text: "NAME=\"Debian GNU/Linux\"\n", want: map[string]string{"NAME": "Debian GNU/Linux"}},
		{name: "single-quoted values are taken literally", text: `NAME='a \" b $x'` + "\n", want: map[string]string{"NAME": `a \" b $x`}},
		{name: "unquoted values are taken as they are", text: "ID=debian\nVERSION_ID=12\n", want: map[string]string{"ID": "debian", "VERSION_ID": "12"}},
		{name: "backslash escapes inside double quotes are decoded", text: `PRETTY_NAME="say \"hi\" \\ \$HOME \` + "`" + `x\` + "`" + `"` + "\n", want: map[string]string{"PRETTY_NAME": "say \"hi\" \\ $HOME `x`"}},
		{name: "other backslashes inside double quotes stay", text: `NAME="a\nb"` + "\n", want: map[string]string{"NAME": `a\nb`}},
		{name: "a backslash in an unquoted value escapes the next character", text: `NAME=a\ b` + "\n", want: map[string]string{"NAME": "a b"}},
		{name: "comments and blank lines are skipped", text: "# comment\n\n   # indented\nID=x\n", want: map[string]string{"ID": "x"}},
		{name: "surrounding white space is ignored", text: "  ID=x  \r\n", want: map[string]string{"ID": "x"}},
		{name: "an empty value is kept", text: "VARIANT=\n", want: map[string]string{"VARIANT": ""}},
		{name: "an empty quoted value is kept", text: "VARIANT=\"\"\n", want: map[string]string{"VARIANT": ""}},
		{name: "a value containing an equals sign keeps it", text: "URL=\"https://x/?a=b\"\n", want: map[string]string{"URL": "https://x/?a=b"}},
		{name: "an unterminated double quote drops the line", text: "NAME=\"Debian\nID=debian\n", want: map[string]string{"ID": "debian"}},
		{name: "an unterminated single quote drops the line", text: "NAME='Debian\n", want: map[string]string{}},
		{name: "concatenated quoted strings drop the line", text: "NAME=\"a\"\"b\"\n", want: map[string]string{}},
		{name: "an unquoted value with a space drops the line", text: "NAME=Debian Linux\n", want: map[string]string{}},
		{name: "an unescaped dollar inside double quotes drops the line", text: "NAME=\"$HOME\"\n", want: map[string]string{}},
		{name: "a key that is not a shell variable name drops the line", text: "1NAME=x\nNA-ME=y\n=z\n", want: map[string]string{}},
		{name: "a line without an equals sign is skipped", text: "NAME\nID=x\n", want: map[string]string{"ID": "x"}},
		{name: "a later assignment wins", text: "ID=a\nID=b\n", want: map[string]string{"ID": "b"}},
		{name: "a last line without a newline is read", text: "ID=a", want: map[string]string{"ID": "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseOSRelease(tt.text)
			if !maps.Equal(got, tt.want) {
				t.Errorf("parseOSRelease(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestNormalizeUUID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "an upper-case canonical uuid is lowered", in: "4C4C4544-0042-3510-8052-B4C04F595432", want: "4c4c4544-0042-3510-8052-b4c04f595432"},
		{name: "a lower-case canonical uuid is kept", in: "4c4c4544-0042-3510-8052-b4c04f595432", want: "4c4c4544-0042-3510-8052-b4c04f595432"},
		{name: "a trailing newline is trimmed", in: "4c4c4544-0042-3510-8052-b4c04f595432\n", want: "4c4c4544-0042-3510-8052-b4c04f595432"},
		{name: "braces are removed", in: "{4c4c4544-0042-3510-8052-b4c04f595432}", want: "4c4c4544-0042-3510-8052-b4c04f595432"},
		{name: "32 hex digits gain their hyphens", in: "8F3B0A1C2D4E4F60A1B2C3D4E5F60718", want: "8f3b0a1c-2d4e-4f60-a1b2-c3d4e5f60718"},
		{name: "hyphens in the wrong places are refused", in: "4c4c454-40042-3510-8052-b4c04f595432", wantErr: true},
		{name: "a non-hex digit is refused", in: "4c4c4544-0042-3510-8052-b4c04f59543g", wantErr: true},
		{name: "a short uuid is refused", in: "4c4c4544-0042-3510-8052", wantErr: true},
		{name: "an empty value is refused", in: "", wantErr: true},
		{name: "the all-zero placeholder is refused", in: "00000000-0000-0000-0000-000000000000", wantErr: true},
		{name: "the all-ones placeholder is refused", in: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", wantErr: true},
		{name: "firmware filler text is refused", in: "Not Settable", wantErr: true},
		{name: "a uuid with a sign inside is refused", in: "+c4c4544-0042-3510-8052-b4c04f595432", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeUUID(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrHardwareUUID) {
					t.Fatalf("normalizeUUID(%q) = %q, %v, want ErrHardwareUUID", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("normalizeUUID(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSecureBootEfivar(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  *bool
	}{
		{name: "a data byte of 1 means enabled", files: map[string]string{secureBootPath: "\x06\x00\x00\x00\x01"}, want: boolPtr(true)},
		{name: "a data byte of 0 means disabled", files: map[string]string{secureBootPath: "\x06\x00\x00\x00\x00"}, want: boolPtr(false)},
		{name: "a missing variable gives no claim", files: map[string]string{efiDir + "/": ""}, want: nil},
		{name: "a variable with only attributes gives no claim", files: map[string]string{secureBootPath: "\x06\x00\x00\x00"}, want: nil},
		{name: "an empty variable gives no claim", files: map[string]string{secureBootPath: ""}, want: nil},
		{name: "a variable longer than one data byte gives no claim", files: map[string]string{secureBootPath: "\x06\x00\x00\x00\x01\x00"}, want: nil},
		{name: "a data byte other than 0 or 1 gives no claim", files: map[string]string{secureBootPath: "\x06\x00\x00\x00\x02"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(writeTree(t, tt.files))
			got := c.secureBoot(mustOpenRoot(t, c))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("secureBoot() = %v, want %v", fmtBoolPtr(got), fmtBoolPtr(tt.want))
			}
		})
	}
}

func fmtBoolPtr(b *bool) string {
	switch {
	case b == nil:
		return "nil"
	case *b:
		return "true"
	default:
		return "false"
	}
}

func TestHostInfoFromFixtures(t *testing.T) {
	tests := []struct {
		name string
		root string
		want evidence.HostInfo
	}{
		{
			name: "a uefi node with secure boot, ima and lvm on luks reports every fact",
			root: "testdata/root-luks-lvm",
			want: evidence.HostInfo{
				Version: evidence.Version, HostName: "edge-node-1", HardwareUUID: "4c4c4544-0042-3510-8052-b4c04f595432",
				OSName: "Debian GNU/Linux", OSVersion: "12", KernelRelease: "6.1.0-28-amd64",
				BIOSName: "EFI Development Kit II / OVMF", BIOSVersion: "0.0.0", BIOSDate: "02/06/2015",
				BootID: "9b2d6f0e-3c1a-4f5e-8d7c-2a1b0c9d8e7f", UEFIEnabled: true, SecureBootEfivar: boolPtr(true),
				DiskEncryption: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-1", Method: "dm-crypt/LUKS2",
					Volumes: []evidence.CryptVolume{{Name: "luks-5f4b3c2a-1e0d-4c8b-9a7f-6e5d4c3b2a19", UUID: "5f4b3c2a-1e0d-4c8b-9a7f-6e5d4c3b2a19"}}},
				IMAEnabled: true,
			},
		},
		{
			name: "a uefi node with secure boot off and a plain root partition says why it is not encrypted",
			root: "testdata/root-plain",
			want: evidence.HostInfo{
				Version: evidence.Version, HostName: "edge-node-2", HardwareUUID: "8f3b0a1c-2d4e-4f60-a1b2-c3d4e5f60718",
				OSName: "Ubuntu", OSVersion: "24.04", KernelRelease: "6.8.0-45-generic",
				BIOSName: "SeaBIOS", BIOSVersion: "1.16.2-debian-1.16.2-1", BIOSDate: "04/01/2014",
				UEFIEnabled: true, SecureBootEfivar: boolPtr(false),
				DiskEncryption: evidence.DiskEncryption{RootDevice: "vda2", Reason: "root device vda2 is not a dm-crypt device and has no underlying devices"},
				IMAEnabled:     true,
			},
		},
		{
			name: "a container-like root on overlay reports what it can without error",
			root: "testdata/root-overlay",
			want: evidence.HostInfo{
				Version: evidence.Version, HostName: "agent-pod-7d9f",
				OSName: "Alpine Linux", OSVersion: "3.20.3", KernelRelease: "6.1.0-28-amd64",
				DiskEncryption: evidence.DiskEncryption{Reason: "root file system is overlay, not on a block device"},
			},
		},
		{
			name: "a legacy bios node with luks directly under the root has no uefi facts",
			root: "testdata/root-no-efi",
			want: evidence.HostInfo{
				Version: evidence.Version, HostName: "edge-node-3", HardwareUUID: "4c4c4544-0042-3510-8052-b4c04f595433",
				OSName: "Red Hat Enterprise Linux", OSVersion: "9.4", KernelRelease: "5.14.0-427.13.1.el9_4.x86_64",
				BIOSName: "Dell Inc.", BIOSVersion: "2.19.0", BIOSDate: "09/14/2023",
				DiskEncryption: evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2",
					Volumes: []evidence.CryptVolume{{Name: "luks-root", UUID: "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.root).HostInfo(context.Background())
			if err != nil {
				t.Fatalf("HostInfo() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HostInfo() =\n%+v\nwant\n%+v", got, tt.want)
				if !reflect.DeepEqual(got.SecureBootEfivar, tt.want.SecureBootEfivar) {
					t.Errorf("SecureBootEfivar = %s, want %s", fmtBoolPtr(got.SecureBootEfivar), fmtBoolPtr(tt.want.SecureBootEfivar))
				}
			}
		})
	}
}

func TestHostInfoRefusesAMalformedHardwareUUID(t *testing.T) {
	root := writeTree(t, map[string]string{
		dmiDir + "product_uuid": "Not Settable\n",
		hostnamePath:            "n1\n",
	})
	got, err := New(root).HostInfo(context.Background())
	if !errors.Is(err, ErrHardwareUUID) {
		t.Fatalf("HostInfo() error = %v, want ErrHardwareUUID", err)
	}
	if got.HostName != "" {
		t.Errorf("HostInfo() returned facts alongside the error: %+v", got)
	}
}

func TestHostInfoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New("testdata/root-luks-lvm").HostInfo(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("HostInfo() error = %v, want context.Canceled", err)
	}
}

func TestHostInfoOfAnEmptyRootIsNotAnError(t *testing.T) {
	got, err := New(t.TempDir()).HostInfo(context.Background())
	if err != nil {
		t.Fatalf("HostInfo() error = %v", err)
	}
	want := evidence.HostInfo{Version: evidence.Version, OSName: "", DiskEncryption: evidence.DiskEncryption{Reason: "cannot find the root mount: proc/self/mountinfo does not exist"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HostInfo() = %+v, want %+v", got, want)
	}
}

func TestSymlinksCannotLeaveTheRoot(t *testing.T) {
	outside := writeTree(t, map[string]string{"hostname": "outside\n"})
	root := writeTree(t, map[string]string{
		hostnamePath:    "-> " + outside + "/hostname",
		etcHostnamePath: "-> ../../../../../../../../../../../../" + outside + "/hostname",
	})
	got, err := New(root).HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.HostName != "" {
		t.Errorf("HostName = %q read through a link that leaves the root", got.HostName)
	}
}
