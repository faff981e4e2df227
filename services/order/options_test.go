package order_test

import (
	"testing"
	"time"

	"github.com/custody/custody/services/order"
)

func TestDefaultOptions(t *testing.T) {
	t.Setenv(order.EnvAttributionWindow, "")
	o, err := order.DefaultOptions()
	if err != nil || o.AttributionWindow != 7*24*time.Hour || o.MaxWait != 30*time.Second {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	t.Setenv(order.EnvAttributionWindow, "36h")
	if o, err = order.DefaultOptions(); err != nil || o.AttributionWindow != 36*time.Hour {
		t.Fatalf("from the environment: %+v, %v", o, err)
	}
	for _, bad := range []string{"a week", "-1h", "0s"} {
		t.Setenv(order.EnvAttributionWindow, bad)
		if _, err := order.DefaultOptions(); err == nil {
			t.Errorf("%s=%q accepted", order.EnvAttributionWindow, bad)
		}
	}
}
