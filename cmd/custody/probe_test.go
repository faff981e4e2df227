package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
)

// The probe publishes for real and reports what it stored; its speed is
// the machine's, so only that it wrote something is asserted.
func TestProbeReportsWhatItWrote(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := run([]string{"probe", "--data-dir", t.TempDir(), "--streams", "2", "--writers", "4", "--batch", "3", "--duration", "300ms"}, &out, &errOut)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, errOut.String())
	}
	m := regexp.MustCompile(`(\d+) messages in \S+: (\d+) messages/s, (\d+) commits/s`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no figures in:\n%s", out.String())
	}
	msgs, _ := strconv.Atoi(m[1])
	perSec, _ := strconv.Atoi(m[2])
	commits, _ := strconv.Atoi(m[3])
	if msgs == 0 || commits < 3*perSec-3 || commits > 3*perSec+3 {
		t.Errorf("messages %d, %d/s, commits %d/s: want some messages, three commits each", msgs, perSec, commits)
	}
	if err := run([]string{"probe", "--batch", "0"}, &out, &errOut); err == nil {
		t.Error("a batch of 0 was accepted")
	}
}
