package main

import (
	"testing"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/errtest"
	"trustedcompute.io/tc/internal/manager"
)

func TestDiskEncryptionPolicyIsConfigured(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       manager.DiskEncryptionPolicy
		wantErr    string
	}{
		{name: "measured disk encryption is the default", want: manager.DiskEncryptionMeasured},
		{name: "the file may accept claimed disk encryption", file: "diskEncryption: claimed\n", want: manager.DiskEncryptionClaimed},
		{name: "TC_DISK_ENCRYPTION overrides the file", file: "diskEncryption: claimed\n",
			env: map[string]string{"TC_DISK_ENCRYPTION": "measured"}, want: manager.DiskEncryptionMeasured},
		{name: "an unknown policy is refused", file: "diskEncryption: trusted\n", wantErr: `disk encryption "trusted": want measured or claimed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(configtest.File(t, tt.file), configtest.Env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			mc, err := cfg.managerConfig()
			if err == nil {
				err = mc.Validate()
			}
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			if mc.DiskEncryption != tt.want {
				t.Fatalf("disk encryption = %q, want %q", mc.DiskEncryption, tt.want)
			}
		})
	}
}
