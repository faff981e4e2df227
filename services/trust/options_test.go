package trust_test

import (
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/services/trust"
	"github.com/custody/custody/services/trust/domain"
)

// The module declares exactly the settings `custody run` has always had
// (deploy/config.md lists them, with their CUSTODY_* variables).
func TestModuleFlags(t *testing.T) {
	t.Parallel()
	names := platformtest.FlagNames(trust.Module().RegisterFlags)
	want := []string{"trust-changed-mind-damaged-bps", "trust-changed-mind-window", "trust-claim-window",
		"trust-not-received-grace", "trust-response-window"}
	if !slices.Equal(names, want) {
		t.Fatalf("flags %v, want %v", names, want)
	}
	if trust.NewModule(trust.Options{}).RegisterFlags != nil {
		t.Fatal("NewModule's options are explicit: it declares no flags")
	}
}

func TestOptionFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		change func(*domain.Policy) // what the flags change in DefaultOptions
		bad    bool
	}{
		{"defaults", nil, func(*domain.Policy) {}, false},
		{"windows", []string{"--trust-claim-window=240h", "--trust-changed-mind-window=72h", "--trust-response-window=24h",
			"--trust-not-received-grace=12h"}, func(p *domain.Policy) {
			p.ClaimWindow, p.ChangedMindWindow, p.ResponseWindow, p.NotReceivedGrace = 240*time.Hour, 72*time.Hour, 24*time.Hour, 12*time.Hour
		}, false},
		{"no grace", []string{"--trust-not-received-grace=0s"}, func(p *domain.Policy) { p.NotReceivedGrace = 0 }, false},
		{"a damaged change of mind refunds a quarter", []string{"--trust-changed-mind-damaged-bps=2500"},
			func(p *domain.Policy) { p.ChangedMindDamagedBps = 2500 }, false},
		{"a damaged change of mind refunds nothing", []string{"--trust-changed-mind-damaged-bps=0"},
			func(p *domain.Policy) { p.ChangedMindDamagedBps = domain.NoRefund }, false},
		{"a claim window of nothing", []string{"--trust-claim-window=0s"}, nil, true},
		{"a response window that is not a duration", []string{"--trust-response-window=2 days"}, nil, true},
		{"a negative grace", []string{"--trust-not-received-grace=-1h"}, nil, true},
		{"more than everything", []string{"--trust-changed-mind-damaged-bps=10001"}, nil, true},
		{"a negative rate", []string{"--trust-changed-mind-damaged-bps=-5"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := platformtest.ParseOptions(trust.DefaultOptions(), nil, tt.args...)
			if tt.bad {
				if err == nil {
					t.Fatalf("%v accepted: %+v", tt.args, o.Policy)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := trust.DefaultOptions()
			tt.change(&want.Policy)
			if o != want {
				t.Fatalf("options %+v, want %+v", o, want)
			}
		})
	}
}
