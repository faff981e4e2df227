package order_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/order"
)

// twoParts is a confirmed order of buyer with two parts: vendor va's line
// "1" (2 × 3.00) and vendor vb's line "2" (1 × 2.00).
type twoParts struct {
	id, buyer, va, vb string
	client            orderv1.OrderServiceClient
}

func (e *env) twoParts(t *testing.T, confirm bool) twoParts {
	t.Helper()
	o := twoParts{va: uniq("v"), vb: uniq("v")}
	sa, sb := e.skuOf(t, o.va, "a", 300), e.skuOf(t, o.vb, "b", 200)
	o.buyer, o.client = e.buyer(t)
	o.id = place(t, o.client, placeRequest(o.buyer, eur(800), line(sa, 2), line(sb, 1))).GetOrderId()
	if confirm {
		e.reserved(t, o.id)
		e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_CONFIRMED)
	}
	return o
}

func (e *env) shipped(t testing.TB, id, vendor string) {
	t.Helper()
	e.Emit(t, "fulfilment", "fulfilment-f"+vendor+id, &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f" + vendor + id, OrderId: id,
		VendorId: vendor, ShipmentId: "s1", ShipTime: timestamppb.New(e.clock.Now())})
}

func (e *env) delivered(t testing.TB, id, vendor string) {
	t.Helper()
	e.Emit(t, "fulfilment", "fulfilment-f"+vendor+id, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f" + vendor + id, OrderId: id,
		VendorId: vendor, WithProof: true, DeliverTime: timestamppb.New(e.clock.Now())})
}

// get reads the order as support.
func (e *env) get(t testing.TB, id string) *orderv1.Order {
	t.Helper()
	resp, err := e.as(t, "support").GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetOrder()
}

func partOf(o *orderv1.Order, vendor string) *orderv1.VendorPart {
	for _, p := range o.GetParts() {
		if p.GetVendorId() == vendor {
			return p
		}
	}
	return nil
}

func lineOf(o *orderv1.Order, id string) *orderv1.OrderLine {
	for _, l := range o.GetLines() {
		if l.GetLineId() == id {
			return l
		}
	}
	return nil
}

// listed reports whether ListOrders (as support, by buyer) in state finds
// the order.
func (e *env) listed(t testing.TB, buyer, id string, state orderv1.OrderState) bool {
	t.Helper()
	resp, err := e.as(t, "support").ListOrders(t.Context(), &orderv1.ListOrdersRequest{BuyerId: buyer, State: state})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetOrders()) == 1 && resp.GetOrders()[0].GetOrderId() == id
}

func TestCancelOrderLines(t *testing.T) {
	e := shared
	o := e.twoParts(t, true)
	valid := func() *orderv1.CancelOrderLinesRequest {
		return &orderv1.CancelOrderLinesRequest{RequestId: uniq("r"), OrderId: o.id, Lines: []*orderv1.LineCancellation{{LineId: "1", Quantity: 1}}, Reason: "too many"}
	}

	t.Run("bad requests change nothing", func(t *testing.T) {
		for _, b := range []platformtest.BadRequest[*orderv1.CancelOrderLinesRequest]{
			{Name: "no request id", Change: func(r *orderv1.CancelOrderLinesRequest) { r.RequestId = "" }, Field: "request_id"},
			{Name: "bad order id", Change: func(r *orderv1.CancelOrderLinesRequest) { r.OrderId = "not an id!" }, Field: "order_id"},
			{Name: "neither lines nor vendor", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines = nil }, Field: "lines"},
			{Name: "both lines and vendor", Change: func(r *orderv1.CancelOrderLinesRequest) { r.VendorId = o.va }, Field: "vendor_id"},
			{Name: "no line id", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines[0].LineId = "" }, Field: "lines[0].line_id"},
			{Name: "negative quantity", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines[0].Quantity = -1 }, Field: "lines[0].quantity"},
			{Name: "a line twice", Change: func(r *orderv1.CancelOrderLinesRequest) {
				r.Lines = append(r.Lines, &orderv1.LineCancellation{LineId: "1"})
			}, Field: "lines[1].line_id"},
			{Name: "unknown line", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines[0].LineId = "9" }, Field: "lines[0].line_id"},
			{Name: "more units than left", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines[0].Quantity = 3 }, Field: "lines[0].quantity"},
			{Name: "unknown vendor", Change: func(r *orderv1.CancelOrderLinesRequest) { r.Lines, r.VendorId = nil, uniq("v") }, Field: "vendor_id"},
		} {
			t.Run(b.Name, func(t *testing.T) {
				e.WantRefused(t, order.Name, b.Field, platformtest.Call(o.client.CancelOrderLines, t.Context(), b.Of(valid)))
			})
		}
	})
	t.Run("access", func(t *testing.T) {
		other := func(r *orderv1.CancelOrderLinesRequest) *orderv1.CancelOrderLinesRequest {
			r.Lines, r.VendorId = nil, o.va
			return r
		}
		for _, c := range []struct {
			name, role string
			req        *orderv1.CancelOrderLinesRequest
		}{
			{"another buyer", "buyer:" + uniq("b"), valid()},
			{"a vendor, another vendor's line", "vendor:" + o.vb, valid()},
			{"a vendor, another vendor's part", "vendor:" + o.vb, other(valid())},
			{"a vendor without a part", "vendor:" + uniq("v"), valid()},
			{"platform", "platform", valid()},
			{"a creator", "creator:" + uniq("c"), valid()},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.WritesNothing(t, order.Name, func() {
					_, err := e.as(t, c.role).CancelOrderLines(t.Context(), c.req)
					platformtest.WantCode(t, err, codes.PermissionDenied)
				})
			})
		}
	})
	t.Run("pending", func(t *testing.T) {
		p := e.twoParts(t, false)
		e.WritesNothing(t, order.Name, func() {
			_, err := p.client.CancelOrderLines(t.Context(), &orderv1.CancelOrderLinesRequest{RequestId: uniq("r"), OrderId: p.id, VendorId: p.vb})
			platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_PENDING")
		})
	})

	// The buyer cancels one unit of line 1: 3.00 back, once.
	req := valid()
	resp, err := o.client.CancelOrderLines(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetOrder()
	if lineOf(got, "1").GetCancelledQuantity() != 1 || !proto.Equal(got.GetRefundedTotal(), eur(300)) || !proto.Equal(partOf(got, o.va).GetRefunded(), eur(300)) ||
		got.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || partOf(got, o.va).GetState() != orderv1.PartState_PART_STATE_OPEN {
		t.Fatalf("after cancelling a unit: %v", got)
	}
	evs := e.orderEvents(t, o.id)
	lc, ok := evs[len(evs)-1].(*orderv1.OrderLinesCancelled)
	if !ok || len(lc.GetLines()) != 1 || !proto.Equal(lc.GetRefund(), eur(300)) || lc.GetCancelledBy() != "buyer:"+o.buyer || len(lc.GetClosedVendorIds()) != 0 {
		t.Fatalf("events %v", evs)
	}
	e.WritesNothing(t, order.Name, func() {
		again, err := o.client.CancelOrderLines(t.Context(), req)
		if err != nil || !proto.Equal(again, resp) {
			t.Fatalf("again: %v, %v (first %v)", again, err, resp)
		}
	})
	reused := proto.Clone(req).(*orderv1.CancelOrderLinesRequest)
	reused.Lines[0].Quantity = 0
	e.WantRefused(t, order.Name, "request_id", platformtest.Call(o.client.CancelOrderLines, t.Context(), reused))

	// Vendor b cancels its own part: closed, the order goes on.
	vresp, err := e.as(t, "vendor:"+o.vb).CancelOrderLines(t.Context(), &orderv1.CancelOrderLinesRequest{RequestId: uniq("r"), OrderId: o.id, VendorId: o.vb, Reason: "out of stock"})
	if err != nil {
		t.Fatal(err)
	}
	if p := vresp.GetOrder().GetParts(); len(p) != 1 || p[0].GetState() != orderv1.PartState_PART_STATE_CANCELLED || p[0].GetCancelledBy() != "vendor:"+o.vb ||
		p[0].GetCancelReason() != "out of stock" || !proto.Equal(p[0].GetRefunded(), eur(200)) || len(vresp.GetOrder().GetLines()) != 1 {
		t.Fatalf("vendor's view after cancelling its part: %v", vresp.GetOrder())
	}
	if got := e.get(t, o.id); got.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || !proto.Equal(got.GetRefundedTotal(), eur(500)) {
		t.Fatalf("after the part: %v", got)
	}

	// Vendor a ships: its line can no longer be cancelled; the order is
	// SHIPPED (its only part kept has shipped).
	e.shipped(t, o.id, o.va)
	e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_SHIPPED)
	e.WritesNothing(t, order.Name, func() {
		_, err := o.client.CancelOrderLines(t.Context(), valid())
		platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_SHIPPED")
	})
	if !e.listed(t, o.buyer, o.id, orderv1.OrderState_ORDER_STATE_SHIPPED) {
		t.Fatal("ListOrders by state SHIPPED does not find the order")
	}
	// Delivered, then settled by payouts: COMPLETED.
	e.delivered(t, o.id, o.va)
	e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_DELIVERED)
	e.Emit(t, "payouts", "orderledger-"+o.id, &payoutsv1.ReturnWindowClosed{OrderId: o.id, VendorId: o.va, CloseTime: timestamppb.New(e.clock.Now())},
		&payoutsv1.FundsReleased{OrderId: o.id, VendorId: o.va, ReleaseTime: timestamppb.New(e.clock.Now())})
	done := e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_COMPLETED)
	if partOf(done, o.va).GetState() != orderv1.PartState_PART_STATE_SETTLED || partOf(done, o.vb).GetState() != orderv1.PartState_PART_STATE_CANCELLED {
		t.Fatalf("completed: %v", done.GetParts())
	}
	if !e.listed(t, o.buyer, o.id, orderv1.OrderState_ORDER_STATE_COMPLETED) {
		t.Fatal("ListOrders by state COMPLETED does not find the order")
	}
	evs = e.orderEvents(t, o.id)
	if _, ok := evs[len(evs)-1].(*orderv1.OrderCompleted); !ok {
		t.Fatalf("events end %v, want OrderCompleted", evs[len(evs)-1])
	}

	// Everything left of an order that shipped nothing: the order is
	// cancelled, the existing whole-order way.
	whole := e.twoParts(t, true)
	all, err := whole.client.CancelOrderLines(t.Context(), &orderv1.CancelOrderLinesRequest{RequestId: uniq("r"), OrderId: whole.id,
		Lines: []*orderv1.LineCancellation{{LineId: "1"}, {LineId: "2"}}})
	if err != nil || all.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CANCELLED || !proto.Equal(all.GetOrder().GetRefundedTotal(), eur(800)) {
		t.Fatalf("cancel every line: %v, %v", all, err)
	}
	if evs := e.orderEvents(t, whole.id); fmt.Sprintf("%T", evs[len(evs)-1]) != "*orderv1.OrderCancelled" {
		t.Fatalf("events %v, want OrderCancelled last", evs)
	}
}

// TestShipByCancelsOnlyThatPart: fulfilment's ship-by policy cancelling
// one part of a two-vendor order cancels that part alone, refunding it;
// the other goes on. A refund with lines counts units; a cancellation of a
// part that shipped is not recorded.
func TestShipByCancelsOnlyThatPart(t *testing.T) {
	e := shared
	o := e.twoParts(t, true)
	at := timestamppb.New(e.clock.Now())
	e.Emit(t, "fulfilment", "fulfilment-f"+o.vb+o.id, &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f" + o.vb + o.id, OrderId: o.id, VendorId: o.vb,
		Reason: "ship-by missed", CancelTime: at})
	got := platformtest.Await(t, "vendor b's part cancelled", func() (*orderv1.Order, error) { return e.get(t, o.id), nil }, func(got *orderv1.Order) error {
		if partOf(got, o.vb).GetState() != orderv1.PartState_PART_STATE_CANCELLED {
			return fmt.Errorf("parts %v", got.GetParts())
		}
		return nil
	})
	if got.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || !proto.Equal(got.GetRefundedTotal(), eur(200)) ||
		partOf(got, o.vb).GetCancelledBy() != "service:fulfilment" || partOf(got, o.vb).GetCancelReason() != "ship-by missed" ||
		partOf(got, o.va).GetState() != orderv1.PartState_PART_STATE_OPEN || lineOf(got, "2").GetCancelledQuantity() != 1 {
		t.Fatalf("after ship-by on b: %v", got)
	}
	for _, ev := range e.orderEvents(t, o.id) {
		if _, ok := ev.(*orderv1.OrderCancelled); ok {
			t.Fatal("the whole order was cancelled")
		}
	}
	// Vendor a's part goes on: it ships, and a late cancellation of it is
	// not recorded.
	e.shipped(t, o.id, o.va)
	e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_SHIPPED)
	e.Settled(t)
	e.WritesNothing(t, order.Name, func() {
		e.Emit(t, "fulfilment", "fulfilment-f"+o.va+o.id, &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f" + o.va + o.id, OrderId: o.id, VendorId: o.va,
			Reason: "ship-by missed", CancelTime: at})
		e.Settled(t)
	})
	// Trust refunds one unit of line 1: counted on the line and the part.
	e.delivered(t, o.id, o.va)
	e.Emit(t, "trust", "claims-"+o.id, &trustv1.RefundIssued{RefundId: "r1" + o.id, OrderId: o.id, VendorId: o.va, Amount: eur(300),
		Lines: []*trustv1.ClaimLine{{LineId: "1", Quantity: 1, Amount: eur(300)}}, RefundTime: at})
	got = platformtest.Await(t, "the refund recorded", func() (*orderv1.Order, error) { return e.get(t, o.id), nil }, func(got *orderv1.Order) error {
		if !proto.Equal(got.GetRefundedTotal(), eur(500)) {
			return fmt.Errorf("refunded %v", got.GetRefundedTotal())
		}
		return nil
	})
	if lineOf(got, "1").GetRefundedQuantity() != 1 || !proto.Equal(partOf(got, o.va).GetRefunded(), eur(300)) ||
		got.GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED || partOf(got, o.va).GetState() != orderv1.PartState_PART_STATE_DELIVERED {
		t.Fatalf("after a refund of one unit: %v", got)
	}
	// The other unit too: everything captured went back; REFUNDED.
	e.Emit(t, "trust", "claims-"+o.id, &trustv1.RefundIssued{RefundId: "r2" + o.id, OrderId: o.id, VendorId: o.va, Amount: eur(300),
		Lines: []*trustv1.ClaimLine{{LineId: "1", Quantity: 1, Amount: eur(300)}}, RefundTime: at})
	got = e.waitState(t, o.id, orderv1.OrderState_ORDER_STATE_REFUNDED)
	if partOf(got, o.va).GetState() != orderv1.PartState_PART_STATE_REFUNDED || lineOf(got, "1").GetRefundedQuantity() != 2 {
		t.Fatalf("refunded in full: %v", got)
	}
}

func TestChangeShippingAddress(t *testing.T) {
	e := shared
	o := e.twoParts(t, true)
	moved := address()
	moved.AddressLines = []string{"Friedrichstraße 2"}
	valid := func() *orderv1.ChangeShippingAddressRequest {
		a := address()
		a.AddressLines = []string{"Friedrichstraße 2"}
		return &orderv1.ChangeShippingAddressRequest{RequestId: uniq("r"), OrderId: o.id, ShippingAddress: a}
	}
	for _, b := range []platformtest.BadRequest[*orderv1.ChangeShippingAddressRequest]{
		{Name: "no request id", Change: func(r *orderv1.ChangeShippingAddressRequest) { r.RequestId = "" }, Field: "request_id"},
		{Name: "bad order id", Change: func(r *orderv1.ChangeShippingAddressRequest) { r.OrderId = "not an id!" }, Field: "order_id"},
		{Name: "no address", Change: func(r *orderv1.ChangeShippingAddressRequest) { r.ShippingAddress = nil }, Field: "shipping_address"},
		{Name: "bad country", Change: func(r *orderv1.ChangeShippingAddressRequest) { r.ShippingAddress.CountryCode = "de" }, Field: "shipping_address.country_code"},
		{Name: "no address line", Change: func(r *orderv1.ChangeShippingAddressRequest) { r.ShippingAddress.AddressLines = nil }, Field: "shipping_address.address_lines"},
	} {
		t.Run(b.Name, func(t *testing.T) {
			e.WantRefused(t, order.Name, b.Field, platformtest.Call(o.client.ChangeShippingAddress, t.Context(), b.Of(valid)))
		})
	}
	for _, role := range []string{"buyer:" + uniq("b"), "vendor:" + o.va, "platform", "creator:" + uniq("c")} {
		e.WritesNothing(t, order.Name, func() {
			_, err := e.as(t, role).ChangeShippingAddress(t.Context(), valid())
			platformtest.WantCode(t, err, codes.PermissionDenied)
		})
	}

	req := valid()
	resp, err := o.client.ChangeShippingAddress(t.Context(), req)
	if err != nil || !proto.Equal(resp.GetOrder().GetShippingAddress(), moved) {
		t.Fatalf("change: %v, %v", resp, err)
	}
	evs := e.orderEvents(t, o.id)
	if c, ok := evs[len(evs)-1].(*orderv1.OrderAddressChanged); !ok || c.GetChangedBy() != "buyer:"+o.buyer || c.GetBuyerId() != o.buyer {
		t.Fatalf("events %v", evs)
	}
	e.WritesNothing(t, order.Name, func() {
		if again, err := o.client.ChangeShippingAddress(t.Context(), req); err != nil || !proto.Equal(again, resp) {
			t.Fatalf("again: %v, %v", again, err)
		}
		// The same address under another request: nothing to change.
		if _, err := e.as(t, "support").ChangeShippingAddress(t.Context(), valid()); err != nil {
			t.Fatal(err)
		}
	})
	back := valid()
	back.ShippingAddress = address()
	if resp, err := e.as(t, "service").ChangeShippingAddress(t.Context(), back); err != nil || !proto.Equal(resp.GetOrder().GetShippingAddress(), address()) {
		t.Fatalf("service changes it back: %v, %v", resp, err)
	}

	// Once a part has shipped, the address stays.
	e.shipped(t, o.id, o.va)
	platformtest.Eventually(t, "the shipment recorded", func() error {
		if !partOf(e.get(t, o.id), o.va).GetShipped() {
			return fmt.Errorf("not shipped yet")
		}
		return nil
	})
	e.WritesNothing(t, order.Name, func() {
		_, err := o.client.ChangeShippingAddress(t.Context(), valid())
		platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_SHIPPED")
	})
	// A cancelled order's address stays too.
	c := e.twoParts(t, true)
	if _, err := c.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: c.id}); err != nil {
		t.Fatal(err)
	}
	e.WritesNothing(t, order.Name, func() {
		req := valid()
		req.OrderId = c.id
		_, err := c.client.ChangeShippingAddress(t.Context(), req)
		platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_CANCELLED")
	})
}
