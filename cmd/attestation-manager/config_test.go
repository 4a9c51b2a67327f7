package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/errtest"
	"trustedcompute.io/tc/internal/manager"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestDefaultsArePinned fails when a default changes; run with -update to
// accept the change on purpose.
func TestDefaultsArePinned(t *testing.T) {
	got, err := yaml.Marshal(defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "defaults.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("defaults changed (run go test -update to accept):\n%s\nwant:\n%s", got, want)
	}
	mc, err := defaultConfig().managerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if mc.PollDuration != time.Hour || mc.Jitter != 0.1 || mc.GoldenFlavors != manager.EveryBoot {
		t.Fatalf("manager defaults %+v", mc)
	}
}

const complete = `
pollDuration: 30
goldenFlavors: firstBoot
evictNamespaces: [default, apps]
verifier:
  url: https://verifier:8443
  cmsRootSHA384: 0a0b
  passwordFile: /etc/tc/password
nats:
  url: tls://verifier:4222
  credsFile: /etc/tc/nats.creds
eim:
  address: eim:443
  caFile: /etc/tc/eim-ca.pem
  tokenFile: /etc/tc/eim-token
`

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		check      func(*testing.T, Config)
		wantErr    []string // substrings of the load or validate error
	}{
		{
			name: "a complete file is valid and its pollDuration is minutes like the Helm value",
			file: complete,
			check: func(t *testing.T, c Config) {
				mc, _ := c.managerConfig()
				if mc.PollDuration != 30*time.Minute || mc.GoldenFlavors != manager.FirstBoot || len(mc.EvictNamespaces) != 2 {
					t.Fatalf("manager config %+v", mc)
				}
			},
		},
		{
			name: "environment variables override the file",
			file: complete,
			env: map[string]string{"TC_POLL_DURATION": "15", "TC_GOLDEN_FLAVORS": "provided",
				"TC_EVICT_NAMESPACES": "a, b,", "TC_VERIFIER_URL": "https://other:9443", "TC_JITTER": "0"},
			check: func(t *testing.T, c Config) {
				mc, _ := c.managerConfig()
				if mc.PollDuration != 15*time.Minute || mc.GoldenFlavors != manager.Provided ||
					strings.Join(mc.EvictNamespaces, ",") != "a,b" || c.Verifier.URL != "https://other:9443" || mc.Jitter != 0 {
					t.Fatalf("config %+v, manager %+v", c, mc)
				}
			},
		},
		{
			name: "maxEvidenceAge defaults to twice pollDuration and takes minutes or a duration",
			file: complete,
			env:  map[string]string{"TC_POD_NAMESPACE": "tc-system"},
			check: func(t *testing.T, c Config) {
				mc, _ := c.managerConfig()
				if mc.MaxEvidenceAge != time.Hour || c.Kubernetes.Namespace != "tc-system" {
					t.Fatalf("max evidence age %s namespace %q, want 1h (twice 30m) and the pod's namespace", mc.MaxEvidenceAge, c.Kubernetes.Namespace)
				}
				for in, want := range map[string]time.Duration{"180": 3 * time.Hour, "3h": 3 * time.Hour} {
					c.MaxEvidenceAge = in
					if mc, err := c.managerConfig(); err != nil || mc.MaxEvidenceAge != want {
						t.Fatalf("maxEvidenceAge %q = %s, %v; want %s", in, mc.MaxEvidenceAge, err, want)
					}
				}
			},
		},
		{
			name:    "a maxEvidenceAge below pollDuration is an error",
			file:    complete + "maxEvidenceAge: \"10\"\n",
			env:     map[string]string{"TC_NAMESPACE": "x"},
			wantErr: []string{"max evidence age 10m0s: want at least the poll duration"},
		},
		{
			name:    "an unreadable maxEvidenceAge is an error",
			file:    complete,
			env:     map[string]string{"TC_MAX_EVIDENCE_AGE": "soon"},
			wantErr: []string{"maxEvidenceAge"},
		},
		{
			name:    "an unknown key is an error",
			file:    complete + "pollIntervall: 5\n",
			wantErr: []string{"pollIntervall"},
		},
		{
			name: "every problem is reported at once",
			file: "pollDuration: soon\ngoldenFlavors: always\nverifier:\n  url: http://verifier\nlogLevel: loud\n",
			env:  map[string]string{"TC_EIM_ADDRESS": "eim:443"},
			wantErr: []string{"pollDuration", "verifier.url", "cmsRootFile or verifier.cmsRootSHA384",
				"passwordFile", "nats.url", "nats.credsFile", "eim caFile", "logLevel"},
		},
		{
			name:    "a bad number in the environment is an error",
			env:     map[string]string{"TC_CONCURRENCY": "many"},
			wantErr: []string{"TC_CONCURRENCY"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(configtest.File(t, tt.file), configtest.Env(tt.env))
			if err == nil {
				err = c.validate()
			}
			if errtest.Want(t, err, tt.wantErr...) {
				tt.check(t, c)
			}
		})
	}
}

func TestEveryEnvironmentKeyIsRead(t *testing.T) {
	for _, key := range envKeys {
		t.Run(key, func(t *testing.T) {
			read := false
			_, _ = loadConfig("", func(k string) string {
				if k == key {
					read = true
				}
				return ""
			})
			if !read {
				t.Fatalf("%s is listed but never read", key)
			}
		})
	}
}

// TestPrintEnvKeys lists the binary's environment variables for test/deps.
func TestPrintEnvKeys(t *testing.T) { configtest.PrintEnvKeys(t, defaultConfig()) }

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
