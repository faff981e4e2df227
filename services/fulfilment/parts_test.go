package fulfilment_test

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// linesCancelled emits the order's OrderLinesCancelled of units of lines
// (line id → units) of vendor's part.
func (e *fixture) linesCancelled(t *testing.T, orderID, vendor string, units map[string]int64) {
	t.Helper()
	ev := &orderv1.OrderLinesCancelled{OrderId: orderID, Reason: "changed my mind", CancelledBy: "buyer:x", CancelTime: timestamppb.New(e.clock.Now())}
	for id, n := range units {
		ev.Lines = append(ev.Lines, &orderv1.CancelledLine{LineId: id, SkuId: "sku-" + id, VendorId: vendor, Quantity: n,
			Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100 * n}})
	}
	e.emitOrder(t, orderID, ev)
}

func unshipped(f *fulfilmentv1.Fulfilment) map[string]int64 {
	out := map[string]int64{}
	for _, l := range f.GetUnshippedLines() {
		out[l.GetLineId()] = l.GetQuantity()
	}
	return out
}

// TestCancelledLinesAreNotShipped: the order cancels units of a line and a
// whole line before they ship. The vendor's fulfilment drops them (a
// redelivery is recognised by the event's id, as for every reaction),
// refuses to ship them, ships what is left
// and is then fully shipped; cancelling every unit of another order's part
// closes its fulfilment, whose ship-by deadline no longer runs.
func TestCancelledLinesAreNotShipped(t *testing.T) {
	e := shared
	vendor, buyer := uniq("v"), uniq("b")
	orderID := e.confirmOrder(t, buyer, part{vendor, []lineQty{{"sku-1", 3}, {"sku-2", 1}}})
	fid := fulfilmentID(orderID, vendor)

	e.linesCancelled(t, orderID, vendor, map[string]int64{"1": 2, "2": 1})
	e.Settled(t)
	f := e.waitState(t, fid, stateRequested)
	if got := unshipped(f); len(got) != 1 || got["1"] != 1 {
		t.Fatalf("left to ship %v, want one unit of line 1", got)
	}
	removed := eventsOf[*fulfilmentv1.FulfilmentLinesRemoved](t, e, fid)
	if n := len(removed); n != 1 {
		t.Fatalf("%d FulfilmentLinesRemoved, want 1", n)
	}
	// Who cancelled, not the canceller's words (sealed on the order's event).
	if r := removed[0].GetReason(); r != "order lines cancelled by buyer:x" {
		t.Errorf("reason %q, want who cancelled", r)
	}
	vendorClient := e.as(t, "vendor:"+vendor)
	e.WritesNothing(t, fulfilment.Name, func() {
		_, err := vendorClient.ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("2", 1))))
		wantField(t, err, "packages[0].lines[0].line_id")
		_, err = vendorClient.ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("1", 2))))
		wantField(t, err, "packages[0].lines[0].quantity")
	})
	resp, err := vendorClient.ShipFulfilment(t.Context(), shipReq(fid, "dhl", dhlNumber(), box(line("1", 1))))
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetFulfilment().GetState(); s != stateShipped {
		t.Fatalf("after shipping what was left: %v, want SHIPPED", s)
	}

	// Every unit of a part cancelled: the fulfilment is closed.
	other := e.confirmOrder(t, buyer, part{vendor, []lineQty{{"sku-1", 1}}})
	closed := fulfilmentID(other, vendor)
	e.linesCancelled(t, other, vendor, map[string]int64{"1": 1})
	got := e.waitState(t, closed, stateCancelled)
	if got.GetCancelReason() == "" || len(got.GetUnshippedLines()) != 0 {
		t.Fatalf("closed fulfilment %v", got)
	}
	if n := len(eventsOf[*fulfilmentv1.FulfilmentCancelled](t, e, closed)); n != 0 {
		t.Fatalf("a closed fulfilment emitted %d FulfilmentCancelled: the catalog and payouts would act twice", n)
	}
	e.WritesNothing(t, fulfilment.Name, func() {
		_, err := vendorClient.ShipFulfilment(t.Context(), shipReq(closed, "dhl", dhlNumber(), box(line("1", 1))))
		wantReason(t, err, "FULFILMENT_CANCELLED")
	})
}

// TestClosedFulfilmentMissesNoDeadline: a fulfilment whose every unit the
// order cancelled is never cancelled again by the ship-by policy.
func TestClosedFulfilmentMissesNoDeadline(t *testing.T) {
	e := start(t, fulfilment.Options{HandlingTime: day, ShipByPolicy: fulfilment.PolicyCancel})
	vendor := uniq("v")
	orderID := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"sku-1", 1}}})
	fid := fulfilmentID(orderID, vendor)
	e.linesCancelled(t, orderID, vendor, map[string]int64{"1": 1})
	e.waitState(t, fid, stateCancelled)
	e.clock.Advance(3 * day)
	e.Settled(t)
	if evs := eventsOf[*fulfilmentv1.ShipByDeadlineMissed](t, e, fid); len(evs) != 0 {
		t.Fatalf("ship-by missed on a closed fulfilment: %v", evs)
	}
}

// TestAddressChangeReachesUnshippedFulfilments: the order's new address
// replaces the old one on each fulfilment that has not shipped; one that
// shipped keeps the address it shipped to.
func TestAddressChangeReachesUnshippedFulfilments(t *testing.T) {
	e := shared
	v1, v2, buyer := uniq("v"), uniq("v"), uniq("b")
	orderID := e.confirmOrder(t, buyer, part{v1, []lineQty{{"a", 1}}}, part{v2, []lineQty{{"b", 1}}})
	f1, f2 := fulfilmentID(orderID, v1), fulfilmentID(orderID, v2)
	if _, err := e.as(t, "vendor:"+v2).ShipFulfilment(t.Context(), shipReq(f2, "dhl", dhlNumber(), box(line("2", 1)))); err != nil {
		t.Fatal(err)
	}
	moved := address()
	moved.AddressLines = []string{"Karl-Marx-Allee 90"}
	e.emitOrder(t, orderID, &orderv1.OrderAddressChanged{OrderId: orderID, ShippingAddress: moved, ChangedBy: "buyer:" + buyer, ChangeTime: timestamppb.New(e.clock.Now()), BuyerId: buyer})
	e.Settled(t)
	got := e.waitState(t, f1, stateRequested)
	if a := got.GetShippingAddress().GetAddressLines(); len(a) != 1 || a[0] != "Karl-Marx-Allee 90" {
		t.Fatalf("unshipped fulfilment's address %v", a)
	}
	shipped := e.waitState(t, f2, stateShipped)
	if a := shipped.GetShippingAddress().GetAddressLines(); a[0] != "Unter den Linden 1" {
		t.Fatalf("shipped fulfilment's address changed to %v", a)
	}
	if evs := eventsOf[*fulfilmentv1.FulfilmentAddressChanged](t, e, f1); len(evs) != 1 || evs[0].GetBuyerId() != buyer {
		t.Fatalf("FulfilmentAddressChanged %v, want one naming buyer %s", evs, buyer)
	}
}
