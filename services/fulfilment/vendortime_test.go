package fulfilment_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/fulfilment"
)

// A vendor's handling time, set in the catalog, gives its parts their
// ship-by deadline; a vendor that set none, or cleared it, has the
// platform's (Options.HandlingTime). The catalog is not ours: the test
// plays it by emitting its vendor events.
func TestVendorHandlingTimeSetsShipBy(t *testing.T) {
	t.Parallel()
	const platform, own = 3 * day, 12 * time.Hour
	e := start(t, fulfilment.Options{HandlingTime: platform})
	fast, plain := uniq("v"), uniq("v")
	e.Emit(t, "catalog", "vendor-"+fast, &catalogv1.VendorRegistered{VendorId: fast, DisplayName: "Fast", CountryCode: "DE",
		RegisteredTime: timestamppb.New(e.clock.Now()), HandlingTime: durationpb.New(own)})
	e.Emit(t, "catalog", "vendor-"+plain, &catalogv1.VendorRegistered{VendorId: plain, DisplayName: "Plain", CountryCode: "DE",
		RegisteredTime: timestamppb.New(e.clock.Now())})
	e.Settled(t) // the vendors' handling times have both

	shipBy := func(orderID, vendor string) time.Duration {
		t.Helper()
		f := e.waitState(t, fulfilmentID(orderID, vendor), stateRequested)
		return f.GetShipByTime().AsTime().Sub(e.clock.Now())
	}
	confirmedAt := e.clock.Now()
	o1 := e.confirmOrder(t, uniq("b"), part{fast, []lineQty{{"a", 1}}}, part{plain, []lineQty{{"b", 1}}})
	if got := shipBy(o1, fast); got != own {
		t.Errorf("the fast vendor's part: ship-by after %s, want its own %s", got, own)
	}
	if got := shipBy(o1, plain); got != platform {
		t.Errorf("the other vendor's part: ship-by after %s, want the platform's %s", got, platform)
	}
	if !e.clock.Now().Equal(confirmedAt) {
		t.Fatal("the clock moved")
	}

	// The fast vendor goes back to the platform's default: parts confirmed
	// after it get that; the one before keeps its deadline.
	e.Emit(t, "catalog", "vendor-"+fast, &catalogv1.VendorHandlingTimeSet{VendorId: fast, SetTime: timestamppb.New(e.clock.Now())})
	e.Settled(t)
	o2 := e.confirmOrder(t, uniq("b"), part{fast, []lineQty{{"a", 1}}})
	if got := shipBy(o2, fast); got != platform {
		t.Errorf("after clearing: ship-by after %s, want the platform's %s", got, platform)
	}
	if got := shipBy(o1, fast); got != own {
		t.Errorf("the part confirmed before: ship-by after %s, want %s still", got, own)
	}
}
