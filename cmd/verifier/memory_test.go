package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"trustedcompute.io/tc/internal/config/configtest"
)

// TestTheSoftMemoryLimitIsAShareOfTheCgroupsUnlessTurnedOffOrSet: the
// limit is memory_limit_ratio of the cgroup's; none when the ratio is 0,
// when GOMEMLIMIT is set (the runtime took it), or when the cgroup sets no
// limit or there is none; a cgroup that cannot be read is an error.
func TestTheSoftMemoryLimitIsAShareOfTheCgroupsUnlessTurnedOffOrSet(t *testing.T) {
	gib := memlimit.Limit(1 << 30)
	failing := func(err error) memlimit.Provider { return func() (uint64, error) { return 0, err } }
	for _, c := range []struct {
		name    string
		ratio   float64
		env     map[string]string
		cgroup  memlimit.Provider
		want    int64
		wantErr bool
	}{
		{name: "the default share", ratio: 0.9, cgroup: gib, want: 966367641},
		{name: "all of it", ratio: 1, cgroup: gib, want: 1 << 30},
		{name: "turned off", ratio: 0, cgroup: gib},
		{name: "GOMEMLIMIT wins", ratio: 0.9, env: map[string]string{"GOMEMLIMIT": "100MiB"}, cgroup: gib},
		{name: "no limit", ratio: 0.9, cgroup: failing(memlimit.ErrNoLimit)},
		{name: "no cgroup", ratio: 0.9, cgroup: failing(memlimit.ErrNoCgroup)},
		{name: "no cgroups here", ratio: 0.9, cgroup: failing(memlimit.ErrCgroupsNotSupported)},
		{name: "unreadable", ratio: 0.9, cgroup: failing(errors.New("permission denied")), wantErr: true},
		{name: "unlimited, as cgroup v1 says it", ratio: 0.5, cgroup: memlimit.Limit(math.MaxUint64), want: 1 << 61},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := memoryLimit(c.ratio, configtest.Env(c.env), c.cgroup)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("memoryLimit = %d, %v; want %d (error %v)", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestTheMemorySettingsAreValidated(t *testing.T) {
	for _, c := range []struct{ env, value, key string }{
		{"TC_MEMORY_LIMIT_RATIO", "-0.1", "memory_limit_ratio"},
		{"TC_MEMORY_LIMIT_RATIO", "1.5", "memory_limit_ratio"},
		{"TC_MEMORY_LIMIT_RATIO", "NaN", "memory_limit_ratio"},
		{"TC_GC_PERCENT", "-1", "gc_percent"},
		{"TC_GC_PERCENT", "10", "gc_percent"},
		{"TC_GC_PERCENT", "5000", "gc_percent"},
	} {
		cfg, err := loadConfig("", configtest.Env(map[string]string{c.env: c.value}))
		if err == nil {
			err = cfg.validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s=%s: %v, want an error naming %s", c.env, c.value, err, c.key)
		}
	}
	cfg, err := loadConfig("", configtest.Env(nil))
	if err != nil || cfg.MemoryLimitRatio != 0.9 || cfg.GCPercent != 200 {
		t.Fatalf("default memory_limit_ratio %v and gc_percent %d (%v), want 0.9 and 200", cfg.MemoryLimitRatio, cfg.GCPercent, err)
	}
}

// helperEnv makes the test binary the helper process of
// TestTheVerifierTakesItsSoftMemoryLimitFromARealCgroup.
const helperEnv = "TC_TEST_MEMORY_LIMIT_HELPER"

// TestMemoryLimitHelper is that helper: it runs the verifier's run command,
// which sets the garbage collector's target and the soft memory limit from
// the environment and the real cgroup before it stops at the missing
// administrator password, and prints the runtime's settings.
func TestMemoryLimitHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("the helper process of TestTheVerifierTakesItsSoftMemoryLimitFromARealCgroup")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case "TC_MEMORY_LIMIT_RATIO", "GOMEMLIMIT", "TC_GC_PERCENT", "GOGC":
			return os.Getenv(k)
		case "TC_NATS_LISTEN":
			return "127.0.0.1:0"
		}
		return ""
	}
	err := program().Run(t.Context(), []string{"run", "-listen", "127.0.0.1:0", "-data-dir", dir}, os.Stdout, os.Stderr, getenv)
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("run: %v, want it to stop at the missing admin password", err)
	}
	gc := debug.SetGCPercent(100)
	fmt.Printf("limit=%d gc=%d\n", debug.SetMemoryLimit(-1), gc)
}

// TestTheVerifierTakesItsSoftMemoryLimitFromARealCgroup runs the verifier's
// settings in a process in a real memory cgroup (v1 or v2) with a limit of
// 768 MiB.
func TestTheVerifierTakesItsSoftMemoryLimitFromARealCgroup(t *testing.T) {
	dir := memoryCgroup(t, 768<<20)
	for _, c := range []struct {
		env    []string
		want   int64
		wantGC int
	}{
		{nil, 768 << 20 * 9 / 10, 200},
		{[]string{"TC_MEMORY_LIMIT_RATIO=0.5", "TC_GC_PERCENT=300"}, 768 << 20 / 2, 300},
		{[]string{"TC_MEMORY_LIMIT_RATIO=0"}, math.MaxInt64, 200},
		{[]string{"GOMEMLIMIT=100MiB", "GOGC=50"}, 100 << 20, 50},
	} {
		cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" -test.run '^TestMemoryLimitHelper$' -test.v`,
			"sh", dir, os.Args[0])
		cmd.Env = append(append(os.Environ(), helperEnv+"=1", "GOMEMLIMIT=", "GOGC=", "TC_MEMORY_LIMIT_RATIO=", "TC_GC_PERCENT="), c.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.env, err, out)
		}
		got, gotGC := int64(-1), -1
		for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
			if _, err := fmt.Sscanf(sc.Text(), "limit=%d gc=%d", &got, &gotGC); err == nil {
				break
			}
		}
		if got != c.want || gotGC != c.wantGC {
			t.Errorf("%v in a cgroup of 768 MiB: soft memory limit %d and GC percent %d, want %d and %d\n%s", c.env, got, gotGC, c.want, c.wantGC, out)
		}
	}
}

// memoryCgroup makes a memory cgroup with the limit below this process's
// own and removes it at the end; it skips the test (fails it in CI) where
// there is none to make.
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	unavailable := func(why string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf("no memory cgroup to run in: "+why, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI runs as root on a machine with a writable memory cgroup)")
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		unavailable("not root")
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		unavailable("%v", err)
	}
	var base, limitFile string
	for line := range strings.Lines(string(own)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" && base == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				base, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max" // v2
			}
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				base, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes" // v1
			}
		}
	}
	if base == "" {
		unavailable("no memory controller in /proc/self/cgroup")
	}
	if _, err := os.Stat(base); err != nil {
		// A container whose cgroup file system is mounted at its own cgroup
		// sees the path of /proc/self/cgroup from the host's root.
		base = "/sys/fs/cgroup" // v2
		if limitFile == "memory.limit_in_bytes" {
			base = "/sys/fs/cgroup/memory" // v1
		}
	}
	dir := filepath.Join(base, fmt.Sprintf("tc-memlimit-test-%x", rand.Uint64()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		unavailable("%v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove the test's cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		unavailable("set %s: %v", limitFile, err)
	}
	return dir
}
