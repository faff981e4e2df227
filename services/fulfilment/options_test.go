package fulfilment_test

import (
	"testing"
	"time"

	"github.com/custody/custody/services/fulfilment"
)

func TestDefaultOptions(t *testing.T) {
	t.Setenv(fulfilment.EnvHandlingTime, "48h")
	t.Setenv(fulfilment.EnvShipByPolicy, "cancel")
	t.Setenv(fulfilment.EnvShipByGrace, "12h")
	t.Setenv(fulfilment.EnvTransit, "dhl=72h, royal_mail=96h,default=100h")
	o, err := fulfilment.DefaultOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.HandlingTime != 48*time.Hour || o.ShipByPolicy != "cancel" || o.ShipByGrace != 12*time.Hour ||
		o.TransitTimes["dhl"] != 72*time.Hour || o.TransitTimes["royal_mail"] != 96*time.Hour || o.DefaultTransit != 100*time.Hour {
		t.Fatalf("options %+v", o)
	}
	for env, bad := range map[string]string{
		fulfilment.EnvHandlingTime: "three days",
		fulfilment.EnvShipByPolicy: "forgive",
		fulfilment.EnvShipByGrace:  "-1h",
		fulfilment.EnvTransit:      "pigeon=1h",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, bad)
			if _, err := fulfilment.DefaultOptions(); err == nil {
				t.Fatalf("%s=%q accepted", env, bad)
			}
		})
	}
}

func TestParseTransit(t *testing.T) {
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
