package main

import (
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 << 20},
		{"2GiB", 2 << 30},
		{"1000000000", 1000000000},
		{"64KiB", 64 << 10},
		{"10B", 10},
		{"1TiB", 1 << 40},
	} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1MiB", "1.5GiB", "1GB", "lots", "99999999999TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): no error", bad)
		}
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // unset below; restores it after
	os.Unsetenv("GOMEMLIMIT")
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	if n, from, err := applyMemoryLimit("512MiB"); err != nil || n != 512<<20 || from != "--memory-limit" || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Fatalf("512MiB: %d %q %v; in force %d", n, from, err, debug.SetMemoryLimit(-1))
	}
	if _, _, err := applyMemoryLimit("lots"); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
		t.Fatalf("a bad size: %v", err)
	}
	if n, _, err := applyMemoryLimit("off"); err != nil || n != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("off: %d %v; in force %d", n, err, debug.SetMemoryLimit(-1))
	}
	// The runtime reads GOMEMLIMIT at start; the flag then changes nothing.
	t.Setenv("GOMEMLIMIT", "1GiB")
	if _, from, err := applyMemoryLimit("256MiB"); err != nil || from != "GOMEMLIMIT=1GiB" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("GOMEMLIMIT set: from %q %v; the flag must not win", from, err)
	}
}
