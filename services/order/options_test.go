package order_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform/platformtest"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/order"
)

// flags parses args (and env, as the binary reads it) into DefaultOptions.
func flags(env map[string]string, args ...string) (order.Options, error) {
	return platformtest.ParseOptions(order.DefaultOptions(), env, args...)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	o, err := flags(nil)
	if err != nil || o.AttributionWindow != 7*24*time.Hour || o.MaxWait != 30*time.Second || o.CatalogWait != 2*time.Second {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if o, err = flags(nil, "--attribution-window=36h"); err != nil || o.AttributionWindow != 36*time.Hour {
		t.Fatalf("from the flag: %+v, %v", o, err)
	}
	if o, err = flags(map[string]string{"CUSTODY_ATTRIBUTION_WINDOW": "30m"}); err != nil || o.AttributionWindow != 30*time.Minute {
		t.Fatalf("from the environment: %+v, %v", o, err)
	}
	if o, err = flags(map[string]string{"CUSTODY_ATTRIBUTION_WINDOW": "30m"}, "--attribution-window=2h"); err != nil || o.AttributionWindow != 2*time.Hour {
		t.Fatalf("the flag wins over the environment: %+v, %v", o, err)
	}
	for _, bad := range []string{"a week", "-1h", "0s"} {
		if _, err := flags(nil, "--attribution-window="+bad); err == nil {
			t.Errorf("--attribution-window=%q accepted", bad)
		}
		if _, err := flags(map[string]string{"CUSTODY_ATTRIBUTION_WINDOW": bad}); err == nil {
			t.Errorf("CUSTODY_ATTRIBUTION_WINDOW=%q accepted", bad)
		}
	}
	if order.NewModule(order.Options{}).RegisterFlags != nil {
		t.Error("NewModule's options are explicit: it must not register flags")
	}
}

// TestAttributionWindowFlag: the window set on Module's flags is the one
// the running service attributes with.
func TestAttributionWindowFlag(t *testing.T) {
	t.Parallel()
	m := order.Module()
	if _, err := platformtest.ParseFlags(m.RegisterFlags, nil, "--attribution-window=1h"); err != nil {
		t.Fatal(err)
	}
	e := start(t, m, true)
	now := e.clock.Now()
	v, buyer := uniq("v"), uniq("b")
	p := e.product(t, v, 0, sku{"a", "EUR", 100})
	link := e.link(t, uniq("c"), p, v, 800)
	place := func(touch time.Time) error {
		req := placeRequest(buyer, eur(100), line(p+"-a", 1))
		req.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link}, TouchTime: timestamppb.New(touch)}
		_, err := e.as(t, "service").PlaceOrder(t.Context(), req)
		return err
	}
	// A touch 2h before the order, with a 1h window.
	platformtest.WantField(t, place(now.Add(-2*time.Hour)), "attribution.touch_time")
	if err := place(now.Add(-30 * time.Minute)); err != nil {
		t.Fatalf("a touch 30m before the order, with a 1h window: %v", err)
	}
}
