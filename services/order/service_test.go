package order_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/order"
)

const day = 24 * time.Hour

func TestPlaceOrderValidation(t *testing.T) {
	e := shared
	now := e.clock.Now()
	v1 := uniq("v")
	p := e.product(t, v1, 500, sku{"a", "EUR", 1000}, sku{"b", "EUR", 250})
	pa, pb := p+"-a", p+"-b"
	usd := e.product(t, v1, 0, sku{"x", "USD", 100}) + "-x"
	// Listed before prices were bounded, at int64's limit: the reported
	// order for it confirmed and wrapped the vendor's escrow balance.
	huge := e.product(t, v1, 0, sku{"h", "EUR", math.MaxInt64}) + "-h"
	other := e.product(t, v1, 0, sku{"z", "EUR", 1})
	goodLink := e.link(t, uniq("c"), p, v1, 800)
	otherLink := e.link(t, uniq("c"), other, v1, 800)
	pinned := e.session(t, uniq("c"), now.Add(-2*time.Hour))
	e.pin(t, pinned, p, 600, now.Add(-time.Hour))
	unpinned := e.session(t, uniq("c"), now.Add(-2*time.Hour))
	e.pin(t, unpinned, other, 600, now.Add(-time.Hour))

	buyer := uniq("b")
	// 2 × 10.00 + 3 × 2.50 = 27.50
	valid := func() *orderv1.PlaceOrderRequest {
		return placeRequest(buyer, eur(2750), line(pa, 2), line(pb, 3))
	}
	withLink := func(id string) func(*orderv1.PlaceOrderRequest) {
		return func(r *orderv1.PlaceOrderRequest) {
			r.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: id}}
		}
	}
	withSession := func(id string, touch time.Time) func(*orderv1.PlaceOrderRequest) {
		return func(r *orderv1.PlaceOrderRequest) {
			r.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: id}}
			if !touch.IsZero() {
				r.Attribution.TouchTime = timestamppb.New(touch)
			}
		}
	}
	tests := []platformtest.BadRequest[*orderv1.PlaceOrderRequest]{
		{Name: "missing request_id", Change: func(r *orderv1.PlaceOrderRequest) { r.RequestId = "" }, Field: "request_id"},
		{Name: "missing buyer_id", Change: func(r *orderv1.PlaceOrderRequest) { r.BuyerId = "" }, Field: "buyer_id"},
		{Name: "no lines", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines = nil }, Field: "lines"},
		{Name: "zero quantity", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[0].Quantity = 0 }, Field: "lines[0].quantity"},
		{Name: "negative quantity", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1].Quantity = -3 }, Field: "lines[1].quantity"},
		{Name: "absurd quantity", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1].Quantity = 1001 }, Field: "lines[1].quantity"},
		{Name: "quantity of int64's limit", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[0].Quantity = math.MaxInt64 }, Field: "lines[0].quantity"},
		{Name: "too many lines", Change: func(r *orderv1.PlaceOrderRequest) {
			for i := len(r.Lines); i <= money.MaxOrderLines; i++ {
				r.Lines = append(r.Lines, line(fmt.Sprintf("%s-l%d", p, i), 1))
			}
		}, Field: "lines"},
		{Name: "sku priced beyond the bound", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1] = line(huge, 1) }, Field: "lines[1].sku_id"},
		{Name: "payment beyond the bound", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.AmountMinor = money.MaxAmount + 1 }, Field: "payment.amount.amount_minor"},
		{Name: "payment of int64's limit", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.AmountMinor = math.MaxInt64 }, Field: "payment.amount.amount_minor"},
		{Name: "missing sku", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1].SkuId = "" }, Field: "lines[1].sku_id"},
		{Name: "unknown sku", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1].SkuId = p + "-nope" }, Field: "lines[1].sku_id"},
		{Name: "sku repeated", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines[1].SkuId = pa }, Field: "lines[1].sku_id"},
		{Name: "mixed currencies", Change: func(r *orderv1.PlaceOrderRequest) { r.Lines = append(r.Lines, line(usd, 1)) }, Field: "lines[2].sku_id"},
		{Name: "unknown currency", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.CurrencyCode = "XYZ" }, Field: "payment.amount.currency_code"},
		{Name: "malformed currency", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.CurrencyCode = "eur" }, Field: "payment.amount.currency_code"},
		{Name: "payment not the total", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.AmountMinor = 2749 }, Field: "payment.amount"},
		{Name: "payment in another currency", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.CurrencyCode = "USD" }, Field: "payment.amount"},
		{Name: "payment not positive", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount.AmountMinor = 0 }, Field: "payment.amount.amount_minor"},
		{Name: "missing payment", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment = nil }, Field: "payment"},
		{Name: "missing payment amount", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.Amount = nil }, Field: "payment.amount"},
		{Name: "missing psp reference", Change: func(r *orderv1.PlaceOrderRequest) { r.Payment.PspReference = "" }, Field: "payment.psp_reference"},
		{Name: "missing address", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress = nil }, Field: "shipping_address"},
		{Name: "missing recipient", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.RecipientName = "" }, Field: "shipping_address.recipient_name"},
		{Name: "missing address lines", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.AddressLines = nil }, Field: "shipping_address.address_lines"},
		{Name: "blank address line", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.AddressLines = []string{" "} }, Field: "shipping_address.address_lines[0]"},
		{Name: "missing locality", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.Locality = "" }, Field: "shipping_address.locality"},
		{Name: "bad country", Change: func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.CountryCode = "Germany" }, Field: "shipping_address.country_code"},
		{Name: "empty attribution", Change: func(r *orderv1.PlaceOrderRequest) { r.Attribution = &orderv1.Attribution{} }, Field: "attribution"},
		{Name: "unknown link", Change: withLink("l-nope"), Field: "attribution.affiliate_link_id"},
		{Name: "link for a product not ordered", Change: withLink(otherLink), Field: "attribution.affiliate_link_id"},
		{Name: "unknown session", Change: withSession("s-nope", time.Time{}), Field: "attribution.live_session_id"},
		{Name: "product not pinned in the session", Change: withSession(unpinned, time.Time{}), Field: "attribution.live_session_id"},
		{Name: "touch before the window", Change: withSession(pinned, now.Add(-8*day)), Field: "attribution.touch_time"},
		{Name: "touch in the future", Change: withSession(pinned, now.Add(time.Hour)), Field: "attribution.touch_time"},
		{Name: "link touch before the window", Change: func(r *orderv1.PlaceOrderRequest) {
			withLink(goodLink)(r)
			r.Attribution.TouchTime = timestamppb.New(now.Add(-7*day - time.Second))
		}, Field: "attribution.touch_time"},
		{Name: "negative wait", Change: func(r *orderv1.PlaceOrderRequest) { r.WaitTimeout = durationpb.New(-time.Second) }, Field: "wait_timeout"},
	}
	client := e.as(t, "service")
	// The refusals side by side: none writes, so each sees the order store
	// unchanged.
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.Name, func(t *testing.T) {
				t.Parallel()
				e.WantRefused(t, order.Name, tt.Field, platformtest.Call(client.PlaceOrder, t.Context(), tt.Of(valid)))
			})
		}
		// Bytes no Go client can send: refused as bad input, not Internal.
		t.Run("buyer_id not UTF-8", func(t *testing.T) {
			t.Parallel()
			e.WantRefused(t, order.Name, "buyer_id", servertest.CallInvalidUTF8(client.PlaceOrder, t.Context(), valid(), "buyer_id"))
		})
	})
	// And the valid request, with each valid attribution, is accepted.
	for _, change := range []func(*orderv1.PlaceOrderRequest){func(*orderv1.PlaceOrderRequest) {}, withLink(goodLink), withSession(pinned, now.Add(-30*time.Minute))} {
		req := valid()
		change(req)
		resp, err := client.PlaceOrder(t.Context(), req)
		if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_PENDING {
			t.Fatalf("valid order: %v, %v", resp, err)
		}
	}
}

func TestPlaceOrderIsIdempotent(t *testing.T) {
	e := shared
	v := uniq("v")
	s := e.skuOf(t, v, "a", 1999)
	buyer, client := e.buyer(t)
	req := placeRequest(buyer, eur(3998), line(s, 2))

	first, err := client.PlaceOrder(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	o := first.GetOrder()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_PENDING || o.GetBuyerId() != buyer || len(o.GetOrderId()) < 25 ||
		!proto.Equal(o.GetTotal(), eur(3998)) || o.GetRevision() != 0 {
		t.Fatalf("placed %v", o)
	}
	again, err := client.PlaceOrder(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) {
		t.Fatalf("the same request answered differently:\n%v\n%v", first, again)
	}
	// wait_timeout does not change what is asked: the same request waiting
	// is a retry too.
	waiting := proto.Clone(req).(*orderv1.PlaceOrderRequest)
	waiting.WaitTimeout = durationpb.New(time.Millisecond)
	if w, err := client.PlaceOrder(t.Context(), waiting); err != nil || w.GetOrder().GetOrderId() != o.GetOrderId() {
		t.Fatalf("the same request with a wait: %v, %v", w, err)
	}
	// A changed body under the same request id is refused (AIP-155), naming
	// request_id, whoever sends it — also one the catalog cannot price —
	// and changes nothing.
	for name, change := range map[string]func(*orderv1.PlaceOrderRequest){
		"another quantity": func(r *orderv1.PlaceOrderRequest) { r.Lines[0].Quantity, r.Payment.Amount = 3, eur(5997) },
		"another address":  func(r *orderv1.PlaceOrderRequest) { r.ShippingAddress.Locality = "Hamburg" },
		"an unknown sku":   func(r *orderv1.PlaceOrderRequest) { r.Lines[0].SkuId = s + "x" },
	} {
		changed := proto.Clone(req).(*orderv1.PlaceOrderRequest)
		change(changed)
		for _, c := range []orderv1.OrderServiceClient{client, e.as(t, "service")} {
			e.WantRefused(t, order.Name, "request_id", platformtest.Call(c.PlaceOrder, t.Context(), changed))
		}
		if again, err := client.PlaceOrder(t.Context(), req); err != nil || !proto.Equal(first, again) {
			t.Fatalf("after %s, the first request again: %v, %v", name, again, err)
		}
	}
	if evs := e.orderEvents(t, o.GetOrderId()); len(evs) != 1 {
		t.Fatalf("%d events in the order stream, want one OrderPlaced", len(evs))
	}
	// Concurrent retries of one request: one order, one answer.
	burst := placeRequest(buyer, eur(1999), line(s, 1))
	answers := make(chan *orderv1.PlaceOrderResponse, 16)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			resp, err := client.PlaceOrder(t.Context(), burst)
			answers <- resp
			errs <- err
		}()
	}
	var firstAnswer *orderv1.PlaceOrderResponse
	for range 16 {
		resp, err := <-answers, <-errs
		if err != nil {
			t.Fatal(err)
		}
		if firstAnswer == nil {
			firstAnswer = resp
		} else if !proto.Equal(resp, firstAnswer) {
			t.Fatalf("concurrent retries answered differently:\n%v\n%v", resp, firstAnswer)
		}
	}
	if evs := e.orderEvents(t, firstAnswer.GetOrder().GetOrderId()); len(evs) != 1 {
		t.Fatalf("%d events after concurrent retries", len(evs))
	}

	// A new request id is a new order.
	req2 := proto.Clone(req).(*orderv1.PlaceOrderRequest)
	req2.RequestId = uniq("req-")
	other, err := client.PlaceOrder(t.Context(), req2)
	if err != nil || other.GetOrder().GetOrderId() == o.GetOrderId() {
		t.Fatalf("new request id: %v, %v", other, err)
	}
}

func TestSagaConfirmsOnStockReserved(t *testing.T) {
	e := shared
	s := e.product(t, uniq("v"), 0, sku{"a", "EUR", 500}) + "-a"
	buyer := uniq("b")
	id := place(t, e.as(t, "buyer:"+buyer), placeRequest(buyer, eur(500), line(s, 1))).GetOrderId()
	e.reserved(t, id)
	e.reserved(t, id) // a second answer (another event id) changes nothing
	e.waitState(t, id, orderv1.OrderState_ORDER_STATE_CONFIRMED)
	platformtest.Eventually(t, "OrderConfirmed", func() error {
		evs := e.orderEvents(t, id)
		if len(evs) != 2 {
			return fmt.Errorf("%d events", len(evs))
		}
		c, ok := evs[1].(*orderv1.OrderConfirmed)
		if !ok || c.GetOrderId() != id || !proto.Equal(c.GetTotal(), eur(500)) || len(c.GetParts()) != 1 {
			return fmt.Errorf("second event %v", evs[1])
		}
		return nil
	})
	// Both catalog answers were handled; the second one decided nothing.
	e.Settled(t)
	if n := len(e.orderEvents(t, id)); n != 2 {
		t.Fatalf("%d events after both answers, want 2", n)
	}
}

func TestSagaRejectsOnReservationFailed(t *testing.T) {
	e := shared
	p := e.product(t, uniq("v"), 0, sku{"a", "EUR", 500}, sku{"b", "EUR", 700})
	buyer, client := e.buyer(t)
	id := place(t, client, placeRequest(buyer, eur(1900), line(p+"-a", 1), line(p+"-b", 2))).GetOrderId()
	reason := e.reservationFailed(t, id, p+"-b")
	o := e.waitState(t, id, orderv1.OrderState_ORDER_STATE_REJECTED)
	if o.GetReason() != reason || !strings.Contains(o.GetReason(), p+"-b") {
		t.Fatalf("reason %q, want %q", o.GetReason(), reason)
	}
	rej, ok := e.orderEvents(t, id)[1].(*orderv1.OrderRejected)
	if !ok || rej.GetSkuId() != p+"-b" {
		t.Fatalf("rejected event %v", rej)
	}
	// A late StockReserved does not resurrect it.
	e.reserved(t, id)
	e.Settled(t)

	// Cancelling a rejected order is refused and writes nothing.
	e.WritesNothing(t, order.Name, func() {
		_, err := client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: id, Reason: "too late"})
		platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_REJECTED")
	})
	e.waitState(t, id, orderv1.OrderState_ORDER_STATE_REJECTED)
}

func TestPlaceOrderWaitsForTheOutcome(t *testing.T) {
	e := shared
	s := e.product(t, uniq("v"), 0, sku{"a", "EUR", 1234}) + "-a"
	buyer, client := e.buyer(t)

	// The catalog answers while PlaceOrder waits: one call gets CONFIRMED.
	req := placeRequest(buyer, eur(1234), line(s, 1))
	req.WaitTimeout = durationpb.New(platformtest.Wait)
	type result struct {
		resp *orderv1.PlaceOrderResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.PlaceOrder(t.Context(), req)
		done <- result{resp, err}
	}()
	var id string
	platformtest.Eventually(t, "the placed order to be listed", func() error {
		orders, err := e.as(t, "support").ListOrders(t.Context(), &orderv1.ListOrdersRequest{BuyerId: buyer})
		if err != nil || len(orders.GetOrders()) != 1 {
			return fmt.Errorf("placed order not listed yet: %v", err)
		}
		id = orders.GetOrders()[0].GetOrderId()
		return nil
	})
	select {
	case r := <-done:
		t.Fatalf("PlaceOrder returned before the catalog answered: %v %v", r.resp, r.err)
	default:
	}
	e.reserved(t, id)
	r := <-done
	if r.err != nil || r.resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || r.resp.GetOrder().GetOrderId() != id {
		t.Fatalf("PlaceOrder with wait: %v, %v", r.resp, r.err)
	}

	// Without an answer the wait runs out and the order comes back PENDING.
	req = placeRequest(buyer, eur(1234), line(s, 1))
	req.WaitTimeout = durationpb.New(300 * time.Millisecond)
	start := time.Now()
	resp, err := client.PlaceOrder(t.Context(), req)
	if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_PENDING {
		t.Fatalf("PlaceOrder whose wait runs out: %v, %v", resp, err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("returned after %s, before the wait ran out", waited)
	}
	// Asking again once the answer is in returns it at once.
	e.reservationFailed(t, resp.GetOrder().GetOrderId(), s)
	e.waitState(t, resp.GetOrder().GetOrderId(), orderv1.OrderState_ORDER_STATE_REJECTED)
	again, err := client.PlaceOrder(t.Context(), req)
	if err != nil || again.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_REJECTED {
		t.Fatalf("asked again: %v, %v", again, err)
	}
}

// A product created just before the order is priced: PlaceOrder catches
// the catalog view up with the catalog's stream before calling a SKU
// unknown.
func TestPlaceOrderReadsTheCatalogsWrites(t *testing.T) {
	e := shared
	buyer, client := e.buyer(t)
	for i := range 20 {
		s := e.skuOf(t, uniq("v"), "x", 100)
		if _, err := client.PlaceOrder(t.Context(), placeRequest(buyer, eur(100), line(s, 1))); err != nil {
			t.Fatalf("order right after ProductCreated %d: %v", i, err)
		}
	}
}

// TestFulfilmentAndTrustFeedTheOrder: the order follows its parts'
// shipments and deliveries (fulfilment) and its refunds (trust), whose
// services the test plays by emitting their events.
func TestFulfilmentAndTrustFeedTheOrder(t *testing.T) {
	e := shared
	va, vb := uniq("v"), uniq("v")
	sa, sb := e.skuOf(t, va, "a", 300), e.skuOf(t, vb, "b", 200)
	buyer, client := e.buyer(t)
	id := place(t, client, placeRequest(buyer, eur(500), line(sa, 1), line(sb, 1))).GetOrderId()
	e.reserved(t, id)
	e.waitState(t, id, orderv1.OrderState_ORDER_STATE_CONFIRMED)
	at := timestamppb.New(e.clock.Now())

	// Vendor a ships: the order can no longer be cancelled.
	e.Emit(t, "fulfilment", "fulfilment-fa"+id, &fulfilmentv1.FulfilmentShipped{FulfilmentId: "fa" + id, OrderId: id, VendorId: va, ShipmentId: "s1", ShipTime: at})
	e.Settled(t)
	if _, ok := e.orderEvents(t, id)[2].(*orderv1.OrderPartShipped); !ok {
		t.Fatalf("events %v, want OrderPartShipped third", e.orderEvents(t, id))
	}
	_, err := client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: id})
	platformtest.WantReason(t, err, codes.FailedPrecondition, "ORDER_SHIPPED")
	// Both parts delivered: DELIVERED.
	for _, v := range []string{va, vb} {
		e.Emit(t, "fulfilment", "fulfilment-f"+v+id, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f" + v + id, OrderId: id, VendorId: v, DeliverTime: at, WithProof: true})
	}
	o := e.waitState(t, id, orderv1.OrderState_ORDER_STATE_DELIVERED)
	if ps := o.GetParts(); len(ps) != 2 || !ps[0].GetShipped() || !ps[0].GetDelivered() || !ps[1].GetDelivered() {
		t.Fatalf("parts %v", ps)
	}
	// Refunded in two goes: REFUNDED once in full.
	e.Emit(t, "trust", "claims-"+id, &trustv1.RefundIssued{RefundId: "r1" + id, OrderId: id, Amount: eur(200), RefundTime: at})
	e.Settled(t)
	if o := e.waitState(t, id, orderv1.OrderState_ORDER_STATE_DELIVERED); !proto.Equal(o.GetRefundedTotal(), eur(200)) {
		t.Fatalf("after a partial refund: %v", o)
	}
	e.Emit(t, "trust", "claims-"+id, &trustv1.RefundIssued{RefundId: "r2" + id, OrderId: id, Amount: eur(300), RefundTime: at})
	e.waitState(t, id, orderv1.OrderState_ORDER_STATE_REFUNDED)

	// Fulfilment cancelling the only part of an order before it shipped
	// (ship-by deadline missed) cancels the order.
	late := place(t, client, placeRequest(buyer, eur(300), line(sa, 1))).GetOrderId()
	e.reserved(t, late)
	e.waitState(t, late, orderv1.OrderState_ORDER_STATE_CONFIRMED)
	e.Emit(t, "fulfilment", "fulfilment-f"+late, &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f" + late, OrderId: late, VendorId: va, Reason: "ship-by missed", CancelTime: at})
	if o := e.waitState(t, late, orderv1.OrderState_ORDER_STATE_CANCELLED); !strings.Contains(o.GetReason(), "ship-by missed") {
		t.Fatalf("reason %q", o.GetReason())
	}
}

func TestMultiVendorOrderIsSplitIntoParts(t *testing.T) {
	e := shared
	va, vb := uniq("v"), uniq("v")
	pa := e.product(t, va, 0, sku{"s", "EUR", 1999}, sku{"m", "EUR", 2499})
	pb := e.product(t, vb, 0, sku{"x", "EUR", 333})
	buyer := uniq("b")
	// va: 3 × 19.99 + 1 × 24.99 = 84.96; vb: 7 × 3.33 = 23.31; total 108.27
	req := placeRequest(buyer, eur(10827), line(pa+"-s", 3), line(pb+"-x", 7), line(pa+"-m", 1))
	o := place(t, e.as(t, "buyer:"+buyer), req)
	want := []*orderv1.VendorPart{
		{VendorId: va, LineIds: []string{"1", "3"}, Subtotal: eur(8496), State: orderv1.PartState_PART_STATE_OPEN},
		{VendorId: vb, LineIds: []string{"2"}, Subtotal: eur(2331), State: orderv1.PartState_PART_STATE_OPEN},
	}
	if len(o.GetParts()) != 2 || !proto.Equal(o.GetParts()[0], want[0]) || !proto.Equal(o.GetParts()[1], want[1]) {
		t.Fatalf("parts %v, want %v", o.GetParts(), want)
	}
	if !proto.Equal(o.GetTotal(), eur(10827)) {
		t.Fatalf("total %v", o.GetTotal())
	}
	l := o.GetLines()[1]
	if l.GetLineId() != "2" || l.GetSkuId() != pb+"-x" || l.GetProductId() != pb || l.GetVendorId() != vb ||
		!proto.Equal(l.GetUnitPrice(), eur(333)) || !proto.Equal(l.GetLineTotal(), eur(2331)) || l.GetTitle() == "" {
		t.Fatalf("line 2 = %v", l)
	}
	placed := e.orderEvents(t, o.GetOrderId())[0].(*orderv1.OrderPlaced)
	// The event's parts are as placed: their state is the API's reading.
	want[0].State = orderv1.PartState_PART_STATE_UNSPECIFIED
	if !proto.Equal(placed.GetParts()[0], want[0]) || !proto.Equal(placed.GetTotal(), eur(10827)) || placed.GetPayment().GetPspReference() != req.GetPayment().GetPspReference() {
		t.Fatalf("OrderPlaced %v", placed)
	}
}

func TestAttribution(t *testing.T) {
	e := shared
	now := e.clock.Now()
	v := uniq("v")
	p := e.product(t, v, 500, sku{"a", "EUR", 1000})
	q := e.product(t, v, 500, sku{"a", "EUR", 2000})
	buyer, client := e.buyer(t)
	place := func(t *testing.T, attr *orderv1.Attribution) (*orderv1.Order, error) {
		t.Helper()
		// The links, sessions and pins were emitted into the catalog's
		// store: the order service prices from its view of it, which
		// follows the store (it failed once when a pin had not arrived yet).
		e.Settled(t)
		req := placeRequest(buyer, eur(3000), line(p+"-a", 1), line(q+"-a", 1))
		req.Attribution = attr
		resp, err := client.PlaceOrder(t.Context(), req)
		return resp.GetOrder(), err
	}
	credited := func(t *testing.T, o *orderv1.Order, creator string, bps ...int32) {
		t.Helper()
		for i, l := range o.GetLines() {
			wantCreator := creator
			if bps[i] == 0 {
				wantCreator = ""
			}
			if l.GetCreatorId() != wantCreator || l.GetCommissionBps() != bps[i] {
				t.Errorf("line %d: creator %q at %d bps, want %q at %d", i, l.GetCreatorId(), l.GetCommissionBps(), wantCreator, bps[i])
			}
		}
		// Payouts pays from the event: the attribution is recorded there.
		placed := e.orderEvents(t, o.GetOrderId())[0].(*orderv1.OrderPlaced)
		if !proto.Equal(&orderv1.OrderPlaced{Lines: placed.GetLines()}, &orderv1.OrderPlaced{Lines: o.GetLines()}) ||
			placed.GetAttribution().GetCreatorId() != creator {
			t.Errorf("OrderPlaced lines %v attribution %v", placed.GetLines(), placed.GetAttribution())
		}
	}

	t.Run("affiliate link", func(t *testing.T) {
		creator := uniq("c")
		link := e.link(t, creator, q, v, 1200)
		o, err := place(t, &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link},
			TouchTime: timestamppb.New(now.Add(-3 * day))})
		if err != nil {
			t.Fatal(err)
		}
		credited(t, o, creator, 0, 1200)
		if a := o.GetAttribution(); a.GetAffiliateLinkId() != link || !a.GetTouchTime().AsTime().Equal(now.Add(-3*day)) {
			t.Errorf("attribution %v", a)
		}
	})
	t.Run("live session, pinned inside the window", func(t *testing.T) {
		creator := uniq("c")
		s := e.session(t, creator, now.Add(-3*time.Hour))
		e.pin(t, s, p, 700, now.Add(-2*time.Hour))
		e.pin(t, s, q, 300, now.Add(-2*time.Hour))
		e.unpin(t, s, q, now.Add(-90*time.Minute))
		o, err := place(t, &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: s}})
		if err != nil {
			t.Fatal(err)
		}
		// q was pinned (and unpinned) within the window too, at its own rate.
		credited(t, o, creator, 700, 300)
		if a := o.GetAttribution(); a.GetLiveSessionId() != s || !a.GetTouchTime().AsTime().Equal(now) {
			t.Errorf("attribution %v (touch defaults to the order time)", a)
		}
	})
	t.Run("live session, one product pinned only outside the window", func(t *testing.T) {
		creator := uniq("c")
		s := e.session(t, creator, now.Add(-20*day))
		e.pin(t, s, p, 700, now.Add(-10*day))
		e.unpin(t, s, p, now.Add(-9*day))
		e.pin(t, s, q, 400, now.Add(-time.Minute))
		o, err := place(t, &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: s}})
		if err != nil {
			t.Fatal(err)
		}
		credited(t, o, creator, 0, 400)
	})
	t.Run("live session, nothing pinned in the window", func(t *testing.T) {
		s := e.session(t, uniq("c"), now.Add(-20*day))
		e.pin(t, s, p, 700, now.Add(-10*day))
		e.unpin(t, s, p, now.Add(-9*day))
		e.pin(t, s, q, 700, now.Add(time.Hour)) // after the order
		_, err := place(t, &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: s}})
		if status.Code(err) != codes.InvalidArgument || apierr.FieldViolations(err)[0].Field != "attribution.live_session_id" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("live session, touch outside the window", func(t *testing.T) {
		s := e.session(t, uniq("c"), now.Add(-20*day))
		e.pin(t, s, p, 700, now.Add(-10*day))
		_, err := place(t, &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: s}, TouchTime: timestamppb.New(now.Add(-8 * day))})
		if status.Code(err) != codes.InvalidArgument || apierr.FieldViolations(err)[0].Field != "attribution.touch_time" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCancelOrder(t *testing.T) {
	e := shared
	s := e.product(t, uniq("v"), 0, sku{"a", "EUR", 100}) + "-a"
	buyer, client := e.buyer(t)
	placeOne := func() string {
		return place(t, client, placeRequest(buyer, eur(100), line(s, 1))).GetOrderId()
	}

	t.Run("pending", func(t *testing.T) {
		id := placeOne()
		req := &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: id, Reason: "changed my mind"}
		resp, err := client.CancelOrder(t.Context(), req)
		if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CANCELLED || resp.GetOrder().GetReason() != "changed my mind" {
			t.Fatalf("cancel: %v, %v", resp, err)
		}
		again, err := client.CancelOrder(t.Context(), req)
		if err != nil || !proto.Equal(resp, again) {
			t.Fatalf("cancel again: %v, %v (first %v)", again, err, resp)
		}
		// The request id with another reason is another request: refused.
		reused := proto.Clone(req).(*orderv1.CancelOrderRequest)
		reused.Reason = "found it cheaper"
		e.WantRefused(t, order.Name, "request_id", platformtest.Call(client.CancelOrder, t.Context(), reused))
		evs := e.orderEvents(t, id)
		c, ok := evs[len(evs)-1].(*orderv1.OrderCancelled)
		if len(evs) != 2 || !ok || c.GetCancelledBy() != "buyer:"+buyer {
			t.Fatalf("events %v", evs)
		}
		// The buyer's words are stored sealed under the buyer's key (the
		// answer above revealed them).
		if !personal.IsToken(c.GetReason()) || c.GetBuyerId() != buyer {
			t.Fatalf("stored reason %q of buyer %q, want a token of %s", c.GetReason(), c.GetBuyerId(), buyer)
		}
		// The catalog's late answer does not confirm a cancelled order.
		e.reserved(t, id)
		e.Settled(t)
		e.waitState(t, id, orderv1.OrderState_ORDER_STATE_CANCELLED)
	})
	t.Run("confirmed", func(t *testing.T) {
		id := placeOne()
		e.reserved(t, id)
		e.waitState(t, id, orderv1.OrderState_ORDER_STATE_CONFIRMED)
		resp, err := e.as(t, "support").CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: id, Reason: "fraud"})
		if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CANCELLED {
			t.Fatalf("cancel: %v, %v", resp, err)
		}
	})
	t.Run("unknown order", func(t *testing.T) {
		_, err := client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: "o0123456789abcdef0123456789abcdef"})
		platformtest.WantCode(t, err, codes.NotFound)
	})
	t.Run("bad requests", func(t *testing.T) {
		for field, req := range map[string]*orderv1.CancelOrderRequest{
			"request_id": {OrderId: placeOne()},
			"order_id":   {RequestId: uniq("r"), OrderId: "not an id!"},
		} {
			_, err := client.CancelOrder(t.Context(), req)
			if status.Code(err) != codes.InvalidArgument || apierr.FieldViolations(err)[0].Field != field {
				t.Errorf("%s: %v", field, err)
			}
		}
	})
}

func TestListOrders(t *testing.T) {
	e := shared
	va, vb := uniq("v"), uniq("v")
	sa, sb := e.skuOf(t, va, "a", 100), e.skuOf(t, vb, "b", 200)
	buyer, client := e.buyer(t)
	var ids []string // oldest first
	for i := range 5 {
		req := placeRequest(buyer, eur(200), line(sb, 1))
		if i%2 == 0 {
			req = placeRequest(buyer, eur(300), line(sa, 1), line(sb, 1))
		}
		ids = append(ids, place(t, client, req).GetOrderId())
		e.clock.Advance(time.Minute)
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	list := func(t *testing.T, c orderv1.OrderServiceClient, req *orderv1.ListOrdersRequest) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			resp, err := c.ListOrders(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if req.GetPageSize() > 0 && len(resp.GetOrders()) > int(req.GetPageSize()) {
				t.Fatalf("page of %d > page size %d", len(resp.GetOrders()), req.GetPageSize())
			}
			for _, o := range resp.GetOrders() {
				got = append(got, o.GetOrderId())
			}
			if resp.GetNextPageToken() == "" {
				return got
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			req = proto.Clone(req).(*orderv1.ListOrdersRequest)
			req.PageToken = resp.GetNextPageToken()
		}
	}

	if got := list(t, client, &orderv1.ListOrdersRequest{BuyerId: buyer, PageSize: 2}); !slices.Equal(got, newestFirst) {
		t.Fatalf("buyer's orders in pages of 2: %v, want %v", got, newestFirst)
	}
	if got := list(t, client, &orderv1.ListOrdersRequest{BuyerId: buyer}); !slices.Equal(got, newestFirst) {
		t.Fatalf("buyer's orders: %v, want %v", got, newestFirst)
	}
	wantA := []string{ids[4], ids[2], ids[0]}
	if got := list(t, e.as(t, "vendor:"+va), &orderv1.ListOrdersRequest{VendorId: va, PageSize: 1}); !slices.Equal(got, wantA) {
		t.Fatalf("vendor a's orders: %v, want %v", got, wantA)
	}
	if got := list(t, e.as(t, "vendor:"+vb), &orderv1.ListOrdersRequest{VendorId: vb, PageSize: 3}); !slices.Equal(got, newestFirst) {
		t.Fatalf("vendor b's orders: %v, want %v", got, newestFirst)
	}

	// Filter by state.
	if _, err := client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	e.reserved(t, ids[3])
	e.waitState(t, ids[3], orderv1.OrderState_ORDER_STATE_CONFIRMED)
	platformtest.Eventually(t, "the pending orders", func() error {
		got := list(t, client, &orderv1.ListOrdersRequest{BuyerId: buyer, State: orderv1.OrderState_ORDER_STATE_PENDING, PageSize: 1})
		if want := []string{ids[4], ids[2], ids[0]}; !slices.Equal(got, want) {
			return fmt.Errorf("pending: %v, want %v", got, want)
		}
		return nil
	})
	if got := list(t, client, &orderv1.ListOrdersRequest{BuyerId: buyer, State: orderv1.OrderState_ORDER_STATE_CANCELLED}); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("cancelled: %v", got)
	}
	if got := list(t, e.as(t, "support"), &orderv1.ListOrdersRequest{VendorId: vb, State: orderv1.OrderState_ORDER_STATE_CONFIRMED}); !slices.Equal(got, []string{ids[3]}) {
		t.Fatalf("confirmed: %v", got)
	}

	// Filters narrow each other: the buyer's orders with a part for vendor a.
	if got := list(t, e.as(t, "support"), &orderv1.ListOrdersRequest{BuyerId: buyer, VendorId: va, PageSize: 1}); !slices.Equal(got, []string{ids[4], ids[2], ids[0]}) {
		t.Fatalf("buyer and vendor a: %v", got)
	}

	// Bad requests.
	first, err := client.ListOrders(t.Context(), &orderv1.ListOrdersRequest{BuyerId: buyer, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		req   *orderv1.ListOrdersRequest
		field string
	}{
		"bad buyer id":           {&orderv1.ListOrdersRequest{BuyerId: "a b"}, "buyer_id"},
		"bad vendor id":          {&orderv1.ListOrdersRequest{VendorId: "a/b"}, "vendor_id"},
		"negative page size":     {&orderv1.ListOrdersRequest{BuyerId: buyer, PageSize: -1}, "page_size"},
		"garbage page token":     {&orderv1.ListOrdersRequest{BuyerId: buyer, PageToken: "garbage!"}, "page_token"},
		"token of another query": {&orderv1.ListOrdersRequest{BuyerId: buyer, State: orderv1.OrderState_ORDER_STATE_PENDING, PageToken: first.GetNextPageToken()}, "page_token"},
		"unknown state":          {&orderv1.ListOrdersRequest{BuyerId: buyer, State: 99}, "state"},
	} {
		_, err := e.as(t, "support").ListOrders(t.Context(), tc.req)
		if status.Code(err) != codes.InvalidArgument || apierr.FieldViolations(err)[0].Field != tc.field {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAccessControl(t *testing.T) {
	e := shared
	va, vb, vc := uniq("v"), uniq("v"), uniq("v")
	s, sc := e.skuOf(t, va, "a", 100), e.skuOf(t, vc, "c", 50)
	alice, bob := uniq("b"), uniq("b")
	id := place(t, e.as(t, "buyer:"+alice), placeRequest(alice, eur(150), line(s, 1), line(sc, 1))).GetOrderId()

	// A vendor sees its own share of the order, not the other vendor's.
	got, err := e.as(t, "vendor:"+va).GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	if o := got.GetOrder(); len(o.GetLines()) != 1 || o.GetLines()[0].GetSkuId() != s || len(o.GetParts()) != 1 ||
		o.GetParts()[0].GetVendorId() != va || o.GetPayment() != nil || o.GetTotal() != nil || o.GetShippingAddress() == nil {
		t.Fatalf("vendor's view: %v", o)
	}
	listed, err := e.as(t, "vendor:"+vc).ListOrders(t.Context(), &orderv1.ListOrdersRequest{VendorId: vc})
	if err != nil || len(listed.GetOrders()) != 1 || len(listed.GetOrders()[0].GetLines()) != 1 || listed.GetOrders()[0].GetLines()[0].GetSkuId() != sc {
		t.Fatalf("vendor's list: %v, %v", listed, err)
	}
	if full, err := e.as(t, "support").GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id}); err != nil || len(full.GetOrder().GetLines()) != 2 || full.GetOrder().GetPayment() == nil {
		t.Fatalf("support's view: %v, %v", full, err)
	}
	get := &orderv1.GetOrderRequest{OrderId: id}
	cancel := func() *orderv1.CancelOrderRequest {
		return &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: id}
	}

	type call struct {
		name string
		role string
		do   func(orderv1.OrderServiceClient) error
		want codes.Code
	}
	getIt := platformtest.Method(orderv1.OrderServiceClient.GetOrder, t.Context(), get)
	cancelIt := func(c orderv1.OrderServiceClient) error { _, err := c.CancelOrder(t.Context(), cancel()); return err }
	listBuyer := func(b string) func(orderv1.OrderServiceClient) error {
		return platformtest.Method(orderv1.OrderServiceClient.ListOrders, t.Context(), &orderv1.ListOrdersRequest{BuyerId: b})
	}
	listVendor := func(v string) func(orderv1.OrderServiceClient) error {
		return platformtest.Method(orderv1.OrderServiceClient.ListOrders, t.Context(), &orderv1.ListOrdersRequest{VendorId: v})
	}
	placeFor := func(b string) func(orderv1.OrderServiceClient) error {
		return func(c orderv1.OrderServiceClient) error {
			_, err := c.PlaceOrder(t.Context(), placeRequest(b, eur(100), line(s, 1)))
			return err
		}
	}
	calls := []call{
		{"no token", "", getIt, codes.Unauthenticated},
		{"buyer reads own", "buyer:" + alice, getIt, codes.OK},
		{"other buyer reads", "buyer:" + bob, getIt, codes.PermissionDenied},
		{"other buyer cancels", "buyer:" + bob, cancelIt, codes.PermissionDenied},
		{"other buyer lists", "buyer:" + bob, listBuyer(alice), codes.PermissionDenied},
		{"buyer lists own", "buyer:" + bob, listBuyer(bob), codes.OK},
		{"buyer places for another", "buyer:" + bob, placeFor(alice), codes.PermissionDenied},
		{"buyer lists a vendor", "buyer:" + alice, listVendor(va), codes.PermissionDenied},
		{"vendor with a part reads", "vendor:" + va, getIt, codes.OK},
		{"vendor without a part reads", "vendor:" + vb, getIt, codes.PermissionDenied},
		{"vendor cancels", "vendor:" + va, cancelIt, codes.PermissionDenied},
		{"vendor lists own", "vendor:" + va, listVendor(va), codes.OK},
		{"vendor lists another", "vendor:" + vb, listVendor(va), codes.PermissionDenied},
		{"vendor places", "vendor:" + va, placeFor(alice), codes.PermissionDenied},
		{"creator reads", "creator:" + uniq("c"), getIt, codes.PermissionDenied},
		{"creator lists a buyer", "creator:" + uniq("c"), listBuyer(alice), codes.PermissionDenied},
		{"carrier lists a vendor", "carrier:dhl", listVendor(va), codes.PermissionDenied},
		{"platform reads", "platform", getIt, codes.OK},
		{"platform lists", "platform", listVendor(va), codes.OK},
		{"platform cancels", "platform", cancelIt, codes.PermissionDenied},
		{"support places", "support", placeFor(alice), codes.PermissionDenied},
		{"support reads", "support", getIt, codes.OK},
		{"service places for anyone", "service", placeFor(bob), codes.OK},
		{"service reads", "service", getIt, codes.OK},
		{"unknown order", "support", platformtest.Method(orderv1.OrderServiceClient.GetOrder, t.Context(),
			&orderv1.GetOrderRequest{OrderId: "o0123456789abcdef0123456789abcdef"}), codes.NotFound},
		{"buyer cancels own", "buyer:" + alice, cancelIt, codes.OK},
	}
	for _, c := range calls { // in order: the last cancels
		t.Run(c.name, func(t *testing.T) { platformtest.WantCode(t, c.do(e.as(t, c.role)), c.want) })
	}
	if evs := e.orderEvents(t, id); len(evs) != 2 {
		t.Fatalf("%d events: only alice's cancel may have written one", len(evs))
	}
}

// TestStartsBeforeTheCatalog runs the order service alone, before the
// catalog ever started: it serves, answers PlaceOrder Unavailable, and
// picks the catalog up once its stream appears. Then it restarts and
// resumes the saga and the read model.
func TestStartsBeforeTheCatalog(t *testing.T) {
	t.Parallel()
	e := start(t, order.NewModule(order.Options{}), false)
	buyer, client := e.buyer(t)
	_, err := client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o0123456789abcdef0123456789abcdef"})
	platformtest.WantCode(t, err, codes.NotFound) // GetOrder without a catalog
	req := placeRequest(buyer, eur(100), line("p1-a", 1))
	_, err = client.PlaceOrder(t.Context(), req)
	platformtest.WantCode(t, err, codes.Unavailable) // PlaceOrder without a catalog

	e.Store(t, "catalog") // the catalog starts: its stream appears
	s := e.product(t, uniq("v"), 0, sku{"a", "EUR", 100}) + "-a"
	req = placeRequest(buyer, eur(100), line(s, 1))
	var id string
	platformtest.Eventually(t, "PlaceOrder to find the catalog", func() error {
		resp, err := client.PlaceOrder(t.Context(), req)
		id = resp.GetOrder().GetOrderId()
		return err
	})

	// The catalog answers while the order service is down.
	e.Stop(t)
	e.reserved(t, id)
	e.Restart(t)
	e.waitState(t, id, orderv1.OrderState_ORDER_STATE_CONFIRMED)
	list, err := e.as(t, "buyer:"+buyer).ListOrders(t.Context(), &orderv1.ListOrdersRequest{BuyerId: buyer})
	if err != nil || len(list.GetOrders()) != 1 || list.GetOrders()[0].GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("after restart: %v, %v", list, err)
	}
	if n := len(e.orderEvents(t, id)); n != 2 {
		t.Fatalf("%d events after restart", n)
	}
	// The same request after the restart is still the same order.
	again, err := e.as(t, "buyer:"+buyer).PlaceOrder(t.Context(), req)
	if err != nil || again.GetOrder().GetOrderId() != id || again.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("same request after restart: %v, %v", again, err)
	}
}

// TestSearchOrders: ListOrders by creator, PSP reference, tracking number
// (learnt from the fulfilment service's events, which the test emits),
// place time range and no filter at all, combined with the others and
// state, paged; who may search how; and what it refuses.
func TestSearchOrders(t *testing.T) {
	e := shared
	e.clock.Advance(time.Minute) // every order of this test is newer than the others'
	from := e.clock.Now()
	va := uniq("v")
	pid := e.product(t, va, 1000, sku{"a", "EUR", 100})
	creator, rival := uniq("c"), uniq("c")
	link, rivalLink := e.link(t, creator, pid, va, 1000), e.link(t, rival, pid, va, 500)
	buyer, client := e.buyer(t)
	var ids, psps []string // oldest first
	var times []time.Time
	for i := range 4 {
		req := placeRequest(buyer, eur(100), line(pid+"-a", 1))
		switch i {
		case 0, 2, 3:
			req.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link}}
		case 1:
			req.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: rivalLink}}
		}
		ids, psps, times = append(ids, place(t, client, req).GetOrderId()), append(psps, req.GetPayment().GetPspReference()), append(times, e.clock.Now())
		e.reserved(t, ids[i])
		e.clock.Advance(time.Minute)
	}
	e.waitState(t, ids[2], orderv1.OrderState_ORDER_STATE_CONFIRMED)
	to := e.clock.Now()
	// Order 2's part ships (the fulfilment service's event); order 0 is cancelled.
	number := fmt.Sprint(time.Now().UnixNano() % 1e10)
	e.Emit(t, "fulfilment", "fulfilment-f"+ids[2], &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f" + ids[2], OrderId: ids[2],
		VendorId: va, ShipmentId: "s1", Carrier: "dhl", TrackingNumber: number, ShipTime: timestamppb.New(e.clock.Now())})
	if _, err := client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{RequestId: uniq("r"), OrderId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	e.Settled(t)

	list := func(t *testing.T, role string, req *orderv1.ListOrdersRequest) ([]string, []*orderv1.Order) {
		t.Helper()
		var got []string
		var orders []*orderv1.Order
		for pages := 0; ; pages++ {
			resp, err := e.as(t, role).ListOrders(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if req.GetPageSize() > 0 && len(resp.GetOrders()) > int(req.GetPageSize()) {
				t.Fatalf("page of %d > page size %d", len(resp.GetOrders()), req.GetPageSize())
			}
			for _, o := range resp.GetOrders() {
				got, orders = append(got, o.GetOrderId()), append(orders, o)
			}
			if resp.GetNextPageToken() == "" {
				return got, orders
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			req = proto.Clone(req).(*orderv1.ListOrdersRequest)
			req.PageToken = resp.GetNextPageToken()
		}
	}
	ts := timestamppb.New
	for name, tc := range map[string]struct {
		role string
		req  *orderv1.ListOrdersRequest
		want []string
	}{
		"tracking number":                  {"support", &orderv1.ListOrdersRequest{Carrier: "dhl", TrackingNumber: number}, []string{ids[2]}},
		"tracking number, another carrier": {"support", &orderv1.ListOrdersRequest{Carrier: "ups", TrackingNumber: number}, nil},
		"tracking number and its buyer":    {"buyer:" + buyer, &orderv1.ListOrdersRequest{BuyerId: buyer, Carrier: "dhl", TrackingNumber: number}, []string{ids[2]}},
		"PSP reference":                    {"platform", &orderv1.ListOrdersRequest{PspReference: psps[3]}, []string{ids[3]}},
		"creator":                          {"support", &orderv1.ListOrdersRequest{CreatorId: creator, PageSize: 1}, []string{ids[3], ids[2], ids[0]}},
		"creator, as the creator":          {"creator:" + creator, &orderv1.ListOrdersRequest{CreatorId: creator, PageSize: 2}, []string{ids[3], ids[2], ids[0]}},
		"creator and state":                {"creator:" + creator, &orderv1.ListOrdersRequest{CreatorId: creator, State: orderv1.OrderState_ORDER_STATE_CANCELLED}, []string{ids[0]}},
		"the other creator":                {"creator:" + rival, &orderv1.ListOrdersRequest{CreatorId: rival}, []string{ids[1]}},
		"place time range":                 {"support", &orderv1.ListOrdersRequest{PlaceTimeFrom: ts(from), PlaceTimeTo: ts(to), PageSize: 3}, []string{ids[3], ids[2], ids[1], ids[0]}},
		"from inclusive, to exclusive":     {"support", &orderv1.ListOrdersRequest{PlaceTimeFrom: ts(times[1]), PlaceTimeTo: ts(times[3])}, []string{ids[2], ids[1]}},
		"creator and range":                {"creator:" + creator, &orderv1.ListOrdersRequest{CreatorId: creator, PlaceTimeFrom: ts(times[1])}, []string{ids[3], ids[2]}},
		"vendor and creator":               {"vendor:" + va, &orderv1.ListOrdersRequest{VendorId: va, CreatorId: rival}, []string{ids[1]}},
		"nothing before this test":         {"support", &orderv1.ListOrdersRequest{CreatorId: creator, PlaceTimeTo: ts(from)}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got, _ := list(t, tc.role, tc.req); !slices.Equal(got, tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}

	// No filter: support and platform see every order, newest first; this
	// test's are the newest.
	for _, role := range []string{"support", "platform", "service"} {
		resp, err := e.as(t, role).ListOrders(t.Context(), &orderv1.ListOrdersRequest{PageSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range resp.GetOrders() {
			got = append(got, o.GetOrderId())
		}
		if want := []string{ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
			t.Fatalf("%s, no filter: %v, want %v first", role, got, want)
		}
	}

	// A creator sees its orders in the creator's view: its lines and the
	// attribution, not the buyer, the address or the money.
	_, seen := list(t, "creator:"+creator, &orderv1.ListOrdersRequest{CreatorId: creator, PspReference: psps[2]})
	if len(seen) != 1 {
		t.Fatalf("creator's search by PSP reference: %v", seen)
	}
	if o := seen[0]; o.GetBuyerId() != "" || o.GetShippingAddress() != nil || o.GetPayment() != nil || o.GetTotal() != nil ||
		len(o.GetParts()) != 0 || len(o.GetLines()) != 1 || o.GetLines()[0].GetCreatorId() != creator ||
		o.GetAttribution().GetCreatorId() != creator || o.GetState() != orderv1.OrderState_ORDER_STATE_SHIPPED { // its one part shipped
		t.Fatalf("creator's view: %v", o)
	}
	if _, full := list(t, "support", &orderv1.ListOrdersRequest{CreatorId: creator, PspReference: psps[2]}); full[0].GetPayment() == nil || full[0].GetBuyerId() != buyer {
		t.Fatalf("support's view: %v", full[0])
	}

	// Who may search how: buyers, vendors and creators only with their own id.
	listAs := func(req *orderv1.ListOrdersRequest) func(orderv1.OrderServiceClient) error {
		return platformtest.Method(orderv1.OrderServiceClient.ListOrders, t.Context(), req)
	}
	for _, c := range []struct {
		name, role string
		req        *orderv1.ListOrdersRequest
		want       codes.Code
	}{
		{"buyer, no filter", "buyer:" + buyer, &orderv1.ListOrdersRequest{}, codes.PermissionDenied},
		{"buyer, tracking number alone", "buyer:" + buyer, &orderv1.ListOrdersRequest{Carrier: "dhl", TrackingNumber: number}, codes.PermissionDenied},
		{"buyer, creator", "buyer:" + buyer, &orderv1.ListOrdersRequest{CreatorId: creator}, codes.PermissionDenied},
		{"vendor, no filter", "vendor:" + va, &orderv1.ListOrdersRequest{}, codes.PermissionDenied},
		{"vendor, PSP reference alone", "vendor:" + va, &orderv1.ListOrdersRequest{PspReference: psps[3]}, codes.PermissionDenied},
		{"vendor, own and a range", "vendor:" + va, &orderv1.ListOrdersRequest{VendorId: va, PlaceTimeFrom: ts(from)}, codes.OK},
		{"creator, no filter", "creator:" + creator, &orderv1.ListOrdersRequest{}, codes.PermissionDenied},
		{"creator, another creator", "creator:" + creator, &orderv1.ListOrdersRequest{CreatorId: rival}, codes.PermissionDenied},
		{"creator, a range alone", "creator:" + creator, &orderv1.ListOrdersRequest{PlaceTimeFrom: ts(from)}, codes.PermissionDenied},
		{"carrier, its tracking number", "carrier:dhl", &orderv1.ListOrdersRequest{Carrier: "dhl", TrackingNumber: number}, codes.PermissionDenied},
		{"no token", "", &orderv1.ListOrdersRequest{}, codes.Unauthenticated},
		{"support, no filter", "support", &orderv1.ListOrdersRequest{}, codes.OK},
	} {
		t.Run(c.name, func(t *testing.T) { platformtest.WantCode(t, listAs(c.req)(e.as(t, c.role)), c.want) })
	}

	// Bad input names the fields.
	first, err := e.as(t, "support").ListOrders(t.Context(), &orderv1.ListOrdersRequest{PlaceTimeFrom: ts(from), PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("%v, %v", first, err)
	}
	for name, tc := range map[string]struct {
		req    *orderv1.ListOrdersRequest
		fields []string
	}{
		"carrier without a number": {&orderv1.ListOrdersRequest{Carrier: "dhl"}, []string{"tracking_number"}},
		"number without a carrier": {&orderv1.ListOrdersRequest{TrackingNumber: number}, []string{"carrier"}},
		"empty range":              {&orderv1.ListOrdersRequest{PlaceTimeFrom: ts(to), PlaceTimeTo: ts(from)}, []string{"place_time_to"}},
		"from = to":                {&orderv1.ListOrdersRequest{PlaceTimeFrom: ts(from), PlaceTimeTo: ts(from)}, []string{"place_time_to"}},
		"invalid time":             {&orderv1.ListOrdersRequest{PlaceTimeFrom: &timestamppb.Timestamp{Nanos: -1}}, []string{"place_time_from"}},
		"bad creator id":           {&orderv1.ListOrdersRequest{CreatorId: "lea/x"}, []string{"creator_id"}},
		"long PSP reference":       {&orderv1.ListOrdersRequest{PspReference: strings.Repeat("p", 257)}, []string{"psp_reference"}},
		"several at once":          {&orderv1.ListOrdersRequest{Carrier: "dhl", CreatorId: "a b", PlaceTimeFrom: ts(to), PlaceTimeTo: ts(from)}, []string{"creator_id", "tracking_number", "place_time_to"}},
		"token of another query":   {&orderv1.ListOrdersRequest{PlaceTimeFrom: ts(from), CreatorId: creator, PageToken: first.GetNextPageToken()}, []string{"page_token"}},
		"token of another range":   {&orderv1.ListOrdersRequest{PlaceTimeFrom: ts(times[1]), PageSize: 1, PageToken: first.GetNextPageToken()}, []string{"page_token"}},
	} {
		_, err := e.as(t, "support").ListOrders(t.Context(), tc.req)
		var fields []string
		for _, v := range apierr.FieldViolations(err) {
			fields = append(fields, v.Field)
		}
		if status.Code(err) != codes.InvalidArgument || !slices.Equal(fields, tc.fields) {
			t.Errorf("%s: %v (fields %v), want InvalidArgument on %v", name, err, fields, tc.fields)
		}
	}
}
