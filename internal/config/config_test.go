package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	URL   string `yaml:"url" env:"TC_INNER_URL"`
	Plain string `yaml:"plain"`
}

type sample struct {
	Name    string        `yaml:"name" env:"TC_NAME"`
	Poll    time.Duration `yaml:"poll" env:"TC_POLL"`
	Handle  uint32        `yaml:"handle" env:"TC_HANDLE"`
	Jitter  float64       `yaml:"jitter" env:"TC_JITTER"`
	Workers int           `yaml:"workers" env:"TC_WORKERS"`
	On      bool          `yaml:"on" env:"TC_ON"`
	Names   []string      `yaml:"names" env:"TC_NAMES"`
	Inner   inner         `yaml:"inner"`
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadLayersDefaultsFileAndEnvironment(t *testing.T) {
	cfg := sample{Name: "default", Poll: time.Minute, Workers: 4}
	path := writeFile(t, "name: file\npoll: 2m\ninner:\n  url: https://file\n  plain: p\n")
	err := Load(path, env(map[string]string{
		"TC_POLL": "90s", "TC_HANDLE": "0x81000100", "TC_JITTER": "0.25", "TC_ON": "true",
		"TC_NAMES": "a, b,,c", "TC_INNER_URL": "https://env",
	}), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := sample{Name: "file", Poll: 90 * time.Second, Handle: 0x81000100, Jitter: 0.25, Workers: 4, On: true,
		Names: []string{"a", "b", "c"}, Inner: inner{URL: "https://env", Plain: "p"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadRefusesUnknownKeysAndReportsEveryBadVariable(t *testing.T) {
	var cfg sample
	if err := Load(writeFile(t, "name: x\nnmea: typo\n"), env(nil), &cfg); err == nil || !strings.Contains(err.Error(), "nmea") {
		t.Fatalf("unknown key: err = %v", err)
	}
	err := Load("", env(map[string]string{"TC_POLL": "soon", "TC_WORKERS": "many", "TC_ON": "yes please"}), &cfg)
	for _, key := range []string{"TC_POLL", "TC_WORKERS", "TC_ON"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if err := Load(filepath.Join(t.TempDir(), "missing.yaml"), env(nil), &cfg); err == nil {
		t.Error("a missing config file was accepted")
	}
	if err := Load("", env(nil), cfg); err == nil {
		t.Error("a non-pointer was accepted")
	}
}

func TestEnvKeysListsEveryVariable(t *testing.T) {
	got := strings.Join(EnvKeys(sample{}), " ")
	if got != "TC_NAME TC_POLL TC_HANDLE TC_JITTER TC_WORKERS TC_ON TC_NAMES TC_INNER_URL" {
		t.Fatalf("EnvKeys = %s", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: x\npoll: 1m\nnames: [a, b]\n"))
	f.Add([]byte("inner: {url: u}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg sample
		_ = Decode(data, &cfg)
	})
}
