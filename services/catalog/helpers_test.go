package catalog_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/clock"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// start runs the catalog alone in a platform of its own (a real process on
// an embedded NATS) whose clock stands at t0. The order, fulfilment and
// trust services do not run: a test plays them by emitting their events.
func start(t *testing.T) (*platformtest.Platform, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	return platformtest.Start(t, platformtest.Options{Clock: clk}, catalog.Module()), clk
}

// vendor registers vendorID and returns its client.
func vendor(t *testing.T, p *platformtest.Platform, vendorID string) catalogv1.CatalogServiceClient {
	t.Helper()
	c := client(t, p, "vendor:"+vendorID)
	register(t, c, vendorID)
	return c
}

// register registers vendorID through c.
func register(t *testing.T, c catalogv1.CatalogServiceClient, vendorID string) {
	t.Helper()
	if _, err := c.RegisterVendor(t.Context(), &catalogv1.RegisterVendorRequest{
		RequestId: "reg-" + vendorID, VendorId: vendorID, DisplayName: "Vendor " + vendorID, CountryCode: "DE",
	}); err != nil {
		t.Fatal(err)
	}
}

// client returns a CatalogService client holding a token for roles.
func client(t *testing.T, p *platformtest.Platform, roles ...string) catalogv1.CatalogServiceClient {
	t.Helper()
	return platformtest.Client(t, p, catalogv1.NewCatalogServiceClient, roles...)
}

// events returns the types of a catalog stream's events.
func events(t *testing.T, p *platformtest.Platform, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range p.Events(t, catalog.Name, stream) {
		out = append(out, string(m.ProtoReflect().Descriptor().FullName()))
	}
	return out
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// ledger returns available/reserved/sold per SKU code.
func ledger(t *testing.T, c catalogv1.CatalogServiceClient, productID string) map[string][3]int64 {
	t.Helper()
	resp, err := c.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][3]int64{}
	for _, k := range resp.GetProduct().GetSkus() {
		out[k.GetCode()] = [3]int64{k.GetAvailable(), k.GetReserved(), k.GetSold()}
	}
	return out
}

// stockIs checks one SKU's available/reserved/sold.
func stockIs(t *testing.T, c catalogv1.CatalogServiceClient, productID, code string, want [3]int64) func() error {
	return func() error {
		if got := ledger(t, c, productID)[code]; got != want {
			return fmt.Errorf("%s %s available/reserved/sold = %v, want %v", productID, code, got, want)
		}
		return nil
	}
}

// eventsAre checks the types of a catalog stream's events.
func eventsAre(t *testing.T, p *platformtest.Platform, stream string, want ...string) func() error {
	return func() error {
		if got := events(t, p, stream); !slices.Equal(got, want) {
			return fmt.Errorf("%s events %v, want %v", stream, got, want)
		}
		return nil
	}
}

// endsWith checks the types of a catalog stream's last events.
func endsWith(t *testing.T, p *platformtest.Platform, stream string, want ...string) func() error {
	return func() error {
		if got := events(t, p, stream); len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
			return fmt.Errorf("%s events %v, want them to end with %v", stream, got, want)
		}
		return nil
	}
}

// reacted waits until check passes, the effect of the event a test emitted
// last, and then until the platform has settled, so that every event
// emitted before it has been handled as well. (Settled alone may look
// before JetStream has counted a message just emitted as pending for the
// reaction's consumer.)
func reacted(t *testing.T, p *platformtest.Platform, what string, check func() error) {
	t.Helper()
	platformtest.Eventually(t, what, check)
	p.Settled(t)
}

// holds fails t unless every check passes.
func holds(t *testing.T, checks ...func() error) {
	t.Helper()
	for _, check := range checks {
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
}

var wantCode, wantField = platformtest.WantCode, platformtest.WantField

func sameTime(ts interface{ AsTime() time.Time }, want time.Time) error {
	if got := ts.AsTime(); !got.Equal(want) {
		return fmt.Errorf("time %v, want %v", got, want)
	}
	return nil
}

// replayOrders stops the process, deletes the durable consumer of order
// events (as an operator resetting it would) and restarts: the new
// consumer delivers every order event again. Clients made before are
// closed; make new ones.
func replayOrders(t *testing.T, p *platformtest.Platform) {
	t.Helper()
	p.Stop(t)
	js, err := jetstream.New(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(t.Context(), esjs.StreamNameFor("order"), catalog.ConsumerName); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
}
