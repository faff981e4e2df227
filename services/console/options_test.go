package console

import (
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform/platformtest"
)

func TestModuleFlags(t *testing.T) {
	t.Parallel()
	names := platformtest.FlagNames(Module().RegisterFlags)
	want := []string{"console-addr", "console-claim-target", "console-secure-cookie", "console-services"}
	if !slices.Equal(names, want) {
		t.Fatalf("flags %v, want %v", names, want)
	}
	if NewModule(Options{}).RegisterFlags != nil {
		t.Fatal("NewModule's options are explicit: it declares no flags")
	}
	o, err := platformtest.ParseOptions(DefaultOptions(), nil)
	if err != nil || o.Addr != DefaultAddr || o.ClaimTarget != 48*time.Hour || o.Services != "" {
		t.Fatalf("defaults as the binary parses them: %+v %v", o, err)
	}
	if o := DefaultOptions(); o.Addr != "" {
		t.Fatalf("options in code serve no console unless asked: %q", o.Addr)
	}
	o, err = platformtest.ParseOptions(DefaultOptions(), map[string]string{"CUSTODY_CONSOLE_ADDR": "0.0.0.0:8080"},
		"--console-services={service}:7070", "--console-claim-target=24h")
	if err != nil || o.Addr != "0.0.0.0:8080" || o.Services != "{service}:7070" || o.ClaimTarget != 24*time.Hour {
		t.Fatalf("set: %+v %v", o, err)
	}
	if _, err := platformtest.ParseOptions(DefaultOptions(), nil, "--console-claim-target=-1h"); err == nil {
		t.Fatal("a negative claim target was accepted")
	}
}

func TestServiceAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		services, own, service, want string
		bad                          bool
	}{
		{"", "127.0.0.1:7070", "trust", "127.0.0.1:7070", false},
		{"custody:7070", "127.0.0.1:7070", "trust", "custody:7070", false},
		{"{service}:7070", "", "payouts", "payouts:7070", false},
		{"dns:///{service}.custody.svc:7070", "", "audit", "dns:///audit.custody.svc:7070", false},
		{"{svc}:7070", "", "audit", "", true},
		{"", "", "audit", "", true},
	} {
		got, err := addressOf(tc.services, tc.own, tc.service)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("addressOf(%q, %q, %q) = %q, %v", tc.services, tc.own, tc.service, got, err)
		}
	}
}
