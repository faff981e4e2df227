package fulfilment_test

import (
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/services/fulfilment"
)

// flags parses args (and env, as the binary reads it) into DefaultOptions.
func flags(env map[string]string, args ...string) (fulfilment.Options, error) {
	return platformtest.ParseOptions(fulfilment.DefaultOptions(), env, args...)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	o, err := flags(nil)
	if err != nil || o.HandlingTime != 72*time.Hour || o.ShipByPolicy != "grace" || o.ShipByGrace != 24*time.Hour ||
		len(o.TransitTimes) != 0 || o.DefaultTransit != 120*time.Hour || o.DeadlinesHeld != 4096 {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	o, err = flags(nil, "--fulfilment-handling-time=48h", "--fulfilment-ship-by-policy=cancel", "--fulfilment-ship-by-grace=12h",
		"--fulfilment-transit=dhl=72h, royal_mail=96h,default=100h", "--fulfilment-deadlines-held=100")
	if err != nil {
		t.Fatal(err)
	}
	if o.HandlingTime != 48*time.Hour || o.ShipByPolicy != "cancel" || o.ShipByGrace != 12*time.Hour ||
		o.TransitTimes["dhl"] != 72*time.Hour || o.TransitTimes["royal_mail"] != 96*time.Hour || o.DefaultTransit != 100*time.Hour ||
		o.DeadlinesHeld != 100 {
		t.Fatalf("from the flags: %+v", o)
	}
	// Without default=, the default transit time stays.
	if o, err = flags(nil, "--fulfilment-transit=ups=48h"); err != nil || o.TransitTimes["ups"] != 48*time.Hour || o.DefaultTransit != 120*time.Hour {
		t.Fatalf("transit without a default: %+v, %v", o, err)
	}
	env := map[string]string{"CUSTODY_FULFILMENT_HANDLING_TIME": "36h", "CUSTODY_FULFILMENT_TRANSIT": "dpd=24h"}
	if o, err = flags(env); err != nil || o.HandlingTime != 36*time.Hour || o.TransitTimes["dpd"] != 24*time.Hour {
		t.Fatalf("from the environment: %+v, %v", o, err)
	}
	if o, err = flags(env, "--fulfilment-handling-time=2h"); err != nil || o.HandlingTime != 2*time.Hour {
		t.Fatalf("the flag wins over the environment: %+v, %v", o, err)
	}
	if fulfilment.NewModule(fulfilment.Options{}).RegisterFlags != nil {
		t.Error("NewModule's options are explicit: it must not register flags")
	}
}

func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ flag, bad string }{
		{"fulfilment-handling-time", "three days"},
		{"fulfilment-handling-time", "0s"},
		{"fulfilment-ship-by-policy", "forgive"},
		{"fulfilment-ship-by-grace", "-1h"},
		{"fulfilment-transit", "pigeon=1h"},
		{"fulfilment-transit", "dhl=soon"},
		{"fulfilment-deadlines-held", "0"},
		{"fulfilment-deadlines-held", "many"},
	} {
		t.Run(tt.flag+"="+tt.bad, func(t *testing.T) {
			t.Parallel()
			if _, err := flags(nil, "--"+tt.flag+"="+tt.bad); err == nil {
				t.Errorf("--%s=%q accepted", tt.flag, tt.bad)
			}
			if _, err := flags(map[string]string{platform.EnvName(tt.flag): tt.bad}); err == nil {
				t.Errorf("%s=%q accepted", platform.EnvName(tt.flag), tt.bad)
			}
		})
	}
}

// Options given in code are checked when the module is built, before it
// opens anything.
func TestNewModuleRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]fulfilment.Options{
		"unknown policy":                {ShipByPolicy: "forgive"},
		"transit of an unknown carrier": {TransitTimes: map[string]time.Duration{"pigeon": time.Hour}},
	} {
		if _, err := fulfilment.NewModule(o).New(t.Context(), platform.Deps{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseTransit(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"dhl", "dhl=", "dhl=0s", "dhl=x", "nope=1h"} {
		if _, _, err := fulfilment.ParseTransit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	m, def, err := fulfilment.ParseTransit("")
	if err != nil || len(m) != 0 || def != 0 {
		t.Fatalf("empty: %v %v %v", m, def, err)
	}
}
