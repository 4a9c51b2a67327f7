package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/config/configtest"
)

func TestMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	tests := []struct {
		name  string
		limit int64
		env   map[string]string
		want  int64
	}{
		{"the configured limit is set", 6 << 20, nil, 6 << 20},
		{"zero leaves the runtime without a limit", 0, nil, math.MaxInt64},
		{"GOMEMLIMIT in the environment wins over the setting", 6 << 20, map[string]string{"GOMEMLIMIT": "64MiB"}, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			setMemoryLimit(tt.limit, configtest.Env(tt.env))
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Fatalf("memory limit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMemoryLimitDefaultsAndValidation(t *testing.T) {
	cfg, err := loadConfig("", configtest.Env(map[string]string{"TC_MEMORY_LIMIT": "8388608"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemoryLimit != 8<<20 {
		t.Fatalf("memory_limit from TC_MEMORY_LIMIT = %d, want %d", cfg.MemoryLimit, 8<<20)
	}
	if got := defaultConfig().MemoryLimit; got != defaultMemoryLimit {
		t.Fatalf("default memory_limit = %d, want %d", got, defaultMemoryLimit)
	}
	cfg = defaultConfig()
	cfg.MemoryLimit = -1
	if err := cfg.validate(false); err == nil || !strings.Contains(err.Error(), "memory_limit") {
		t.Fatalf("validate with a negative memory_limit: %v, want it named", err)
	}
}
