package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/config/configtest"
)

func TestKeyEncryptionKeysComeFromTheFileAndTheEnvironment(t *testing.T) {
	path := configtest.File(t, "key_encryption_key_file: /etc/tc/kek\nprevious_key_encryption_key_files: [/etc/tc/kek.old]\n")
	tests := []struct {
		name                      string
		env                       map[string]string
		wantFile, wantKey         string
		wantPrevFiles, wantPrevKs []string
	}{
		{"the config file names the key and the previous keys", nil, "/etc/tc/kek", "", []string{"/etc/tc/kek.old"}, nil},
		{"the environment overrides the files", map[string]string{
			"TC_KEY_ENCRYPTION_KEY_FILE": "/run/kek", "TC_PREVIOUS_KEY_ENCRYPTION_KEY_FILES": "/run/a,/run/b",
		}, "/run/kek", "", []string{"/run/a", "/run/b"}, nil},
		{"the keys themselves may come from the environment", map[string]string{
			"TC_KEY_ENCRYPTION_KEY": "bmV3", "TC_PREVIOUS_KEY_ENCRYPTION_KEY": "b2xk",
		}, "/etc/tc/kek", "bmV3", []string{"/etc/tc/kek.old"}, []string{"b2xk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(path, configtest.Env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = t.TempDir()
			vc, err := cfg.verifierConfig(configtest.Env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			k := vc.KeyEncryption
			if k.KeyFile != tt.wantFile || k.Key != tt.wantKey || !slices.Equal(k.PreviousKeyFiles, tt.wantPrevFiles) || !slices.Equal(k.PreviousKeys, tt.wantPrevKs) {
				t.Errorf("key encryption config = %+v", k)
			}
		})
	}
}

func TestRunRefusesADataDirectoryOthersMayRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := program().Run(t.Context(), []string{"run", "-listen", "127.0.0.1:0", "-data-dir", dir}, os.Stdout, os.Stderr,
		configtest.Env(map[string]string{"TC_NATS_LISTEN": "127.0.0.1:0", "TC_ADMIN_PASSWORD": "not-checked"}))
	if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("err = %v, want one naming the fix chmod 700 %s", err, dir)
	}
}
