package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryLimit is the soft memory limit for the Go runtime: ratio of the
// limit that cgroup reports (memlimit.FromCgroup in the verifier), or 0 for
// none: when ratio is 0, when GOMEMLIMIT is set (the runtime read it), or
// when the cgroup sets no limit or there is none to read.
func memoryLimit(ratio float64, getenv func(string) string, cgroup memlimit.Provider) (int64, error) {
	if ratio == 0 || getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, err := cgroup()
	switch {
	case errors.Is(err, memlimit.ErrNoLimit), errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("memory_limit_ratio: read the cgroup's memory limit: %w", err)
	}
	return int64(float64(min(limit, 1<<62)) * ratio), nil
}

// tuneMemory sets the garbage collector's target percentage (gcPercent,
// unless GOGC is set) and the runtime's soft memory limit (memoryLimit),
// and logs what it set. A cgroup that cannot be read is logged and leaves
// the runtime without a limit, as the verifier runs without the setting.
func tuneMemory(gcPercent int, ratio float64, getenv func(string) string, cgroup memlimit.Provider, logger *slog.Logger) {
	gc := strconv.Itoa(gcPercent)
	if v := getenv("GOGC"); v != "" {
		gc = "GOGC=" + v // the runtime read it
	} else {
		debug.SetGCPercent(gcPercent)
	}
	limit, err := memoryLimit(ratio, getenv, cgroup)
	if err != nil {
		logger.Warn("no soft memory limit", "error", err.Error())
	} else if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	soft := "none"
	switch {
	case getenv("GOMEMLIMIT") != "":
		soft = "GOMEMLIMIT=" + getenv("GOMEMLIMIT")
	case limit > 0:
		soft = strconv.FormatInt(limit, 10)
	}
	logger.Info("memory", "gc_percent", gc, "soft_limit_bytes", soft, "memory_limit_ratio", ratio)
}
