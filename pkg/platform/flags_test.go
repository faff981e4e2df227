package platform

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestSetFromEnvThenFlagsWin(t *testing.T) {
	env := map[string]string{
		"CUSTODY_HANDLING_TIME": "48h",
		"CUSTODY_DATA_DIR":      "/from/env",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	handling := fs.Duration("handling-time", 72*time.Hour, "")
	dir := fs.String("data-dir", "./data", "")
	untouched := fs.String("grpc-addr", "127.0.0.1:7070", "")
	if err := SetFromEnv(fs, lookup); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if *handling != 48*time.Hour || *dir != "/from/flag" || *untouched != "127.0.0.1:7070" {
		t.Fatalf("handling %v, dir %q, grpc %q", *handling, *dir, *untouched)
	}

	env["CUSTODY_HANDLING_TIME"] = "soon"
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("handling-time", 0, "")
	if err := SetFromEnv(fs, lookup); err == nil || !strings.Contains(err.Error(), `CUSTODY_HANDLING_TIME="soon"`) {
		t.Fatalf("bad value: %v, want an error naming the variable", err)
	}
}
