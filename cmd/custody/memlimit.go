package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The soft memory limit. --gc-percent lets the heap grow to twice the live
// heap (or more) between collections; the limit makes the collector work
// harder as the heap nears it, so a process stays within its container.
// It is soft: a live heap above it is collected often, never refused.

// memoryLimitAuto is the default: 90 % of the cgroup's memory limit (the
// container's), none without one.
const memoryLimitAuto = "auto"

// applyMemoryLimit sets Go's soft memory limit from flag ("auto", "off",
// or a size such as 512MiB, 2GiB, 1000000000) unless GOMEMLIMIT is set,
// which wins. It returns the limit in force (0: none) and where it came
// from.
func applyMemoryLimit(flag string) (int64, string, error) {
	if v, set := os.LookupEnv("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT=" + v, nil
	}
	var limit int64
	from := "--memory-limit"
	switch flag {
	case "off":
		debug.SetMemoryLimit(math.MaxInt64) // Go's "no limit"
		return 0, from, nil
	case memoryLimitAuto:
		c, ok := cgroupMemoryLimit()
		if !ok {
			return 0, "no cgroup memory limit", nil
		}
		limit, from = c/10*9, "90% of the cgroup's memory limit"
	default:
		n, err := parseSize(flag)
		if err != nil {
			return 0, "", fmt.Errorf("--memory-limit: %w", err)
		}
		limit = n
	}
	debug.SetMemoryLimit(limit)
	return limit, from, nil
}

// parseSize reads a byte count with an optional binary unit (B, KiB, MiB,
// GiB, TiB), as GOMEMLIMIT does.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	num := s
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = rest, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size such as 512MiB, 2GiB or a positive number of bytes", s)
	}
	return n << shift, nil
}

// cgroupMemoryLimit is the memory limit of this process's cgroup (v2, then
// v1), if it has one.
func cgroupMemoryLimit() (int64, bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" (a huge number)
			return 0, false
		}
		return n, true
	}
	return 0, false
}
