package main

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Every part of an order has its own fate (issue 15): the tests below run
// every service in one process on a fake clock and follow an order's parts
// through their gRPC APIs.

// partsPlatform is a platform of every module on a fake clock, with the
// clients the tests below use.
type partsPlatform struct {
	plat  *platformtest.Platform
	clk   *clock.Fake
	ops   *orderClients // platform and service roles
	dial  func(roles ...string) *orderClients
	audit auditv1.AuditServiceClient
}

func startParts(t *testing.T) *partsPlatform {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	plat := platformtest.Start(t, platformtest.Options{Clock: clk}, modules()...)
	clients := func(roles ...string) *orderClients {
		conn := plat.Conn(t, roles...)
		return &orderClients{cat: catalogv1.NewCatalogServiceClient(conn), ord: orderv1.NewOrderServiceClient(conn),
			ful: fulfilmentv1.NewFulfilmentServiceClient(conn), pay: payoutsv1.NewPayoutsServiceClient(conn),
			audit: auditv1.NewAuditServiceClient(conn)}
	}
	return &partsPlatform{plat: plat, clk: clk, ops: clients("platform", "service"), dial: clients, audit: clients("support").audit}
}

// order returns the order as GetOrder shows it now.
func (p *partsPlatform) order(t *testing.T, id string) *orderv1.Order {
	t.Helper()
	o, err := p.ops.ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	return o.GetOrder()
}

// awaitOrder waits until the order satisfies ok, which says what it
// still misses.
func (p *partsPlatform) awaitOrder(t *testing.T, what, id string, ok func(o *orderv1.Order) error) *orderv1.Order {
	t.Helper()
	var last error
	var o *orderv1.Order
	eventually(t, what, func() bool {
		o = p.order(t, id)
		last = ok(o)
		return last == nil
	})
	if last != nil {
		t.Fatalf("%s: %v", what, last)
	}
	return o
}

// fulfilment waits for the vendor's fulfilment of the order.
func (p *partsPlatform) fulfilment(t *testing.T, vendor, orderID string) *fulfilmentv1.Fulfilment {
	t.Helper()
	var f *fulfilmentv1.Fulfilment
	eventually(t, "the fulfilment of "+vendor, func() bool {
		l, err := p.ops.ful.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, OrderId: orderID})
		if err == nil && len(l.GetFulfilments()) == 1 {
			f = l.GetFulfilments()[0]
		}
		return f != nil
	})
	return f
}

// shipAndDeliver ships lines of the vendor's fulfilment (one unit serial
// each) and has the carrier deliver them with proof.
func (p *partsPlatform) shipAndDeliver(t *testing.T, vendor, fulfilmentID, tracking string, lines ...*fulfilmentv1.ShippedLine) {
	t.Helper()
	var units []*fulfilmentv1.PackedUnit
	for _, l := range lines {
		for i := range l.GetQuantity() {
			units = append(units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), SkuId: l.GetSkuId(), SerialNumber: fmt.Sprintf("SN-%s-%s-%d", tracking, l.GetLineId(), i)})
		}
	}
	if _, err := p.dial("vendor:"+vendor).ful.ShipFulfilment(t.Context(), &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-" + tracking, FulfilmentId: fulfilmentID, Carrier: "dhl", TrackingNumber: tracking,
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: lines, Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}, Units: units}}},
	}); err != nil {
		t.Fatalf("ship %s: %v", vendor, err)
	}
	p.clk.Advance(time.Hour)
	if _, err := p.dial("carrier:dhl").ful.RecordTrackingEvent(t.Context(), &fulfilmentv1.RecordTrackingEventRequest{
		RequestId: "d-" + tracking, Carrier: "dhl", TrackingNumber: tracking, CarrierEventId: "d-" + tracking,
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(p.clk.Now()),
		Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada", PhotoSha256: photo},
	}); err != nil {
		t.Fatalf("deliver %s: %v", tracking, err)
	}
}

// balance is the owner's EUR balance in payouts.
func (p *partsPlatform) balance(t *testing.T, owner string) *payoutsv1.Balance {
	t.Helper()
	return eurBalance(t, p.ops.pay, owner)
}

// eurBalance is the owner's EUR balance as pay reports it.
func eurBalance(t *testing.T, pay payoutsv1.PayoutsServiceClient, owner string) *payoutsv1.Balance {
	t.Helper()
	b, err := pay.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range b.GetBalances() {
		if x.GetCurrencyCode() == "EUR" {
			return x
		}
	}
	return &payoutsv1.Balance{}
}

func partOf(o *orderv1.Order, vendor string) *orderv1.VendorPart {
	for _, p := range o.GetParts() {
		if p.GetVendorId() == vendor {
			return p
		}
	}
	return nil
}

// TestOnePartDeliveredTheOtherCancelledByShipBy: a two-vendor order; one
// vendor ships and the parcel is delivered, the other never ships and the
// ship-by policy cancels its part (a grace day, then the cancellation).
// The order ends DELIVERED, not CANCELLED, with refunded_total equal to the
// cancelled part and that part's stock back on sale; once the delivered
// part's return window closes with no claim, its money is released and the
// order is COMPLETED.
func TestOnePartDeliveredTheOtherCancelledByShipBy(t *testing.T) {
	t.Parallel()
	p := startParts(t)
	ctx := t.Context()
	fast := createProduct(t, p.ops.cat, "v-fast", 10, 1500)
	slow := createProduct(t, p.ops.cat, "v-slow", 10, 2500)
	resp, err := p.dial("buyer:ada").ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: "two-parts", BuyerId: "ada", ShippingAddress: address,
		Lines:   []*orderv1.LineRequest{{SkuId: fast.GetSkus()[0].GetSkuId(), Quantity: 2}, {SkuId: slow.GetSkus()[0].GetSkuId(), Quantity: 1}},
		Payment: &orderv1.Payment{PspReference: "psp-two", Amount: eur(2*1500 + 2500)}, WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("place: %v %v", resp.GetOrder().GetState(), err)
	}
	id := resp.GetOrder().GetOrderId()
	f := p.fulfilment(t, "v-fast", id)
	p.fulfilment(t, "v-slow", id)
	p.shipAndDeliver(t, "v-fast", f.GetFulfilmentId(), "1111111111", &fulfilmentv1.ShippedLine{LineId: "1", SkuId: fast.GetSkus()[0].GetSkuId(), Quantity: 2})
	p.awaitOrder(t, "v-fast's part delivered", id, func(o *orderv1.Order) error {
		if s := partOf(o, "v-fast").GetState(); s != orderv1.PartState_PART_STATE_DELIVERED {
			return fmt.Errorf("v-fast's part %v", s)
		}
		if o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			return fmt.Errorf("order %v, want CONFIRMED while v-slow's part is open", o.GetState())
		}
		return nil
	})

	// The default policy: ship-by 3 days after confirmation, one grace day,
	// then the part is cancelled.
	p.clk.Advance(3*24*time.Hour + time.Hour)
	eventually(t, "the grace day", func() bool { return p.fulfilment(t, "v-slow", id).GetShipByMissed() })
	p.clk.Advance(24*time.Hour + time.Hour)
	o := p.awaitOrder(t, "v-slow's part cancelled by the ship-by policy", id, func(o *orderv1.Order) error {
		if part := partOf(o, "v-slow"); part.GetState() != orderv1.PartState_PART_STATE_CANCELLED {
			return fmt.Errorf("v-slow's part %v", part.GetState())
		}
		return nil
	})
	if o.GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED {
		t.Errorf("order %v, want DELIVERED: every part that was not cancelled was delivered", o.GetState())
	}
	if got := o.GetRefundedTotal().GetAmountMinor(); got != 2500 {
		t.Errorf("refunded_total %d, want 2500 (the cancelled part)", got)
	}
	slowPart := partOf(o, "v-slow")
	if slowPart.GetRefunded().GetAmountMinor() != 2500 || slowPart.GetCancelledBy() == "" || slowPart.GetCancelReason() == "" {
		t.Errorf("v-slow's part %v, want refunded 2500 with who and why", slowPart)
	}
	if l := o.GetLines()[1]; l.GetCancelledQuantity() != 1 {
		t.Errorf("line 2 cancelled units %d, want 1", l.GetCancelledQuantity())
	}
	if part := partOf(o, "v-fast"); part.GetRefunded().GetAmountMinor() != 0 {
		t.Errorf("v-fast's part refunded %v, want nothing", part.GetRefunded())
	}
	eventually(t, "v-slow's unit back on sale", func() bool { return skuOf(t, p.ops.cat, slow.GetProductId()).GetAvailable() == 10 })

	// The delivered part's 7-day return window closes with no claim.
	p.clk.Advance(8 * 24 * time.Hour)
	o = p.awaitOrder(t, "the order completed", id, func(o *orderv1.Order) error {
		if o.GetState() != orderv1.OrderState_ORDER_STATE_COMPLETED {
			return fmt.Errorf("order %v, parts %v", o.GetState(), o.GetParts())
		}
		return nil
	})
	if s := partOf(o, "v-fast").GetState(); s != orderv1.PartState_PART_STATE_SETTLED {
		t.Errorf("v-fast's part %v, want SETTLED", s)
	}
	if got := o.GetRefundedTotal().GetAmountMinor(); got != 2500 {
		t.Errorf("refunded_total after completion %d, want 2500", got)
	}
	if v := p.balance(t, "vendor:v-slow"); v.GetAvailable().GetAmountMinor()+v.GetReserve().GetAmountMinor()+v.GetPending().GetAmountMinor() != 0 {
		t.Errorf("v-slow, whose part was cancelled, has %v", v)
	}
	// 3000 delivered: platform fee 5% = 150, the vendor the remaining 2850.
	if v := p.balance(t, "vendor:v-fast"); v.GetAvailable().GetAmountMinor()+v.GetReserve().GetAmountMinor() != 2850 {
		t.Errorf("v-fast released %v, want 2850 in all", v)
	}
	verifyChain(t, p.audit, id)
}

// TestBuyerCancelsOneLineOfThree: an order of three lines of one vendor's
// product, bought through a creator's affiliate link. Before anything
// ships the buyer cancels the second line: exactly its price is refunded,
// its stock is back on sale, the vendor ships the two other lines only,
// and at release the creator's commission and the platform's fee are those
// of the two lines that remain.
func TestBuyerCancelsOneLineOfThree(t *testing.T) {
	t.Parallel()
	p := startParts(t)
	ctx := t.Context()
	if _, err := p.ops.cat.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg", VendorId: "v-three", DisplayName: "Three", CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	prod, err := p.ops.cat.CreateProduct(ctx, &catalogv1.CreateProductRequest{
		RequestId: "prod", VendorId: "v-three", Title: "Mugs", Category: "kitchen", AffiliateCommissionBps: 1000,
		Skus: []*catalogv1.SkuSpec{
			{Code: "s", Title: "Small", Price: eur(1000), InitialStock: 10},
			{Code: "m", Title: "Medium", Price: eur(2000), InitialStock: 10},
			{Code: "l", Title: "Large", Price: eur(3000), InitialStock: 10},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	skus := prod.GetProduct().GetSkus()
	link, err := p.dial("creator:c-three").cat.CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l", CreatorId: "c-three", ProductId: prod.GetProduct().GetProductId()})
	if err != nil {
		t.Fatal(err)
	}
	buyer := p.dial("buyer:bea")
	var resp *orderv1.PlaceOrderResponse
	eventually(t, "the order to see the link", func() bool {
		resp, err = buyer.ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			RequestId: "three", BuyerId: "bea", ShippingAddress: address,
			Lines:       []*orderv1.LineRequest{{SkuId: skus[0].GetSkuId(), Quantity: 1}, {SkuId: skus[1].GetSkuId(), Quantity: 2}, {SkuId: skus[2].GetSkuId(), Quantity: 1}},
			Attribution: &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link.GetLink().GetLinkId()}},
			Payment:     &orderv1.Payment{PspReference: "psp-three", Amount: eur(1000 + 2*2000 + 3000)}, WaitTimeout: durationpb.New(20 * time.Second),
		})
		return err == nil
	})
	if resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("order %v", resp.GetOrder().GetState())
	}
	id := resp.GetOrder().GetOrderId()
	f := p.fulfilment(t, "v-three", id)
	eventually(t, "the capture", func() bool { return p.balance(t, "vendor:v-three").GetEscrow().GetAmountMinor() > 0 })

	cancel := &orderv1.CancelOrderLinesRequest{RequestId: "cancel-m", OrderId: id, Reason: "changed my mind",
		Lines: []*orderv1.LineCancellation{{LineId: "2"}}}
	got, err := buyer.ord.CancelOrderLines(ctx, cancel)
	if err != nil {
		t.Fatalf("cancel line 2: %v", err)
	}
	o := got.GetOrder()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || o.GetRefundedTotal().GetAmountMinor() != 4000 || o.GetLines()[1].GetCancelledQuantity() != 2 {
		t.Fatalf("after the cancellation: state %v, refunded %v, line 2 %v; want CONFIRMED, 4000, 2 units cancelled", o.GetState(), o.GetRefundedTotal(), o.GetLines()[1])
	}
	again, err := buyer.ord.CancelOrderLines(ctx, cancel)
	if err != nil || again.GetOrder().GetRefundedTotal().GetAmountMinor() != 4000 {
		t.Fatalf("the same request again: %v %v, want the same order", again.GetOrder().GetRefundedTotal(), err)
	}
	_, err = buyer.ord.CancelOrderLines(ctx, &orderv1.CancelOrderLinesRequest{RequestId: "cancel-m-2", OrderId: id, Reason: "again",
		Lines: []*orderv1.LineCancellation{{LineId: "2", Quantity: 1}}})
	if status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("cancelling a cancelled line's units: %v, want a refusal", err)
	}
	eventually(t, "line 2's units back on sale", func() bool {
		s := skuAt(t, p.ops.cat, prod.GetProduct().GetProductId(), 1)
		return s.GetAvailable() == 10 && s.GetReserved() == 0
	})
	eventually(t, "the fulfilment without line 2", func() bool {
		return unshippedUnits(p.fulfilment(t, "v-three", id)) == 2
	})

	// Shipping the cancelled line is refused; the two others ship.
	_, err = p.dial("vendor:v-three").ful.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-cancelled", FulfilmentId: f.GetFulfilmentId(), Carrier: "dhl", TrackingNumber: "2222222222",
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: []*fulfilmentv1.ShippedLine{{LineId: "2", SkuId: skus[1].GetSkuId(), Quantity: 2}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}}}},
	})
	if status.Code(err) == codes.OK {
		t.Fatal("shipping the cancelled line was accepted")
	}
	p.shipAndDeliver(t, "v-three", f.GetFulfilmentId(), "3333333333",
		&fulfilmentv1.ShippedLine{LineId: "1", SkuId: skus[0].GetSkuId(), Quantity: 1}, &fulfilmentv1.ShippedLine{LineId: "3", SkuId: skus[2].GetSkuId(), Quantity: 1})
	p.awaitOrder(t, "the order delivered", id, func(o *orderv1.Order) error {
		if o.GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED {
			return fmt.Errorf("order %v", o.GetState())
		}
		return nil
	})
	p.clk.Advance(8 * 24 * time.Hour)
	eventually(t, "the release", func() bool { return p.balance(t, "creator:c-three").GetAvailable().GetAmountMinor() > 0 })
	// 4000 remain: creator 10% = 400 (not 800 of the whole 8000), platform
	// fee 5% = 200, the vendor 3400.
	if c := p.balance(t, "creator:c-three").GetAvailable().GetAmountMinor(); c != 400 {
		t.Errorf("creator's commission %d, want 400: the lines that remain", c)
	}
	if v := p.balance(t, "vendor:v-three"); v.GetAvailable().GetAmountMinor()+v.GetReserve().GetAmountMinor() != 3400 || v.GetPending().GetAmountMinor() != 0 {
		t.Errorf("vendor %v, want 3400 released and nothing pending", v)
	}
	p.awaitOrder(t, "the order completed", id, func(o *orderv1.Order) error {
		if o.GetState() != orderv1.OrderState_ORDER_STATE_COMPLETED || o.GetRefundedTotal().GetAmountMinor() != 4000 {
			return fmt.Errorf("order %v, refunded %v", o.GetState(), o.GetRefundedTotal())
		}
		return nil
	})
	verifyChain(t, p.audit, id)
}

// TestAddressChangesUntilTheFirstShipment: the buyer moves the parcel to a
// new address before anything ships; the vendor's fulfilment shows it.
// Once a part has shipped the address can no longer change.
func TestAddressChangesUntilTheFirstShipment(t *testing.T) {
	t.Parallel()
	p := startParts(t)
	ctx := t.Context()
	prod := createProduct(t, p.ops.cat, "v-addr", 10, 1500)
	sku := prod.GetSkus()[0].GetSkuId()
	buyer := p.dial("buyer:cy")
	resp, err := buyer.ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: "addr", BuyerId: "cy", ShippingAddress: address, Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
		Payment: &orderv1.Payment{PspReference: "psp-addr", Amount: eur(1500)}, WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetOrder().GetOrderId()
	f := p.fulfilment(t, "v-addr", id)
	moved := &orderv1.ChangeShippingAddressRequest{RequestId: "move", OrderId: id, ShippingAddress: withStreet(address, "9 New Road")}
	if _, err := buyer.ord.ChangeShippingAddress(ctx, moved); err != nil {
		t.Fatalf("change the address: %v", err)
	}
	if got := p.order(t, id).GetShippingAddress().GetAddressLines()[0]; got != "9 New Road" {
		t.Errorf("order's address %q", got)
	}
	eventually(t, "the fulfilment to ship to the new address", func() bool {
		return p.fulfilment(t, "v-addr", id).GetShippingAddress().GetAddressLines()[0] == "9 New Road"
	})
	p.shipAndDeliver(t, "v-addr", f.GetFulfilmentId(), "4444444444", &fulfilmentv1.ShippedLine{LineId: "1", SkuId: sku, Quantity: 1})
	p.awaitOrder(t, "the shipment on the order", id, func(o *orderv1.Order) error {
		if !o.GetParts()[0].GetShipped() {
			return fmt.Errorf("part %v", o.GetParts()[0])
		}
		return nil
	})
	_, err = buyer.ord.ChangeShippingAddress(ctx, &orderv1.ChangeShippingAddressRequest{RequestId: "move-late", OrderId: id, ShippingAddress: withStreet(address, "1 Late Lane")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("changing the address after the shipment: %v, want FailedPrecondition", err)
	}
	if got := p.order(t, id).GetShippingAddress().GetAddressLines()[0]; got != "9 New Road" {
		t.Errorf("order's address %q after the refused change", got)
	}
}

// withStreet is a copy of a with street as its first address line.
func withStreet(a *typev1.Address, street string) *typev1.Address {
	c := proto.Clone(a).(*typev1.Address)
	c.AddressLines = []string{street}
	return c
}

// skuAt is the product's i-th SKU as the catalog shows it now.
func skuAt(t *testing.T, cat catalogv1.CatalogServiceClient, productID string, i int) *catalogv1.Sku {
	t.Helper()
	p, err := cat.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	return p.GetProduct().GetSkus()[i]
}

// unshippedUnits counts the units a fulfilment has left to ship.
func unshippedUnits(f *fulfilmentv1.Fulfilment) int64 {
	var n int64
	for _, l := range f.GetUnshippedLines() {
		n += l.GetQuantity()
	}
	return n
}

// verifyChain checks every stream of the order's history with the audit.
func verifyChain(t *testing.T, audit auditv1.AuditServiceClient, orderID string) {
	t.Helper()
	v, err := audit.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: orderID})
	if err != nil || !v.GetValid() {
		t.Errorf("chain of %s: %v %v", orderID, v, err)
	}
}
