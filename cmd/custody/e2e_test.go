package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// platformWithClock runs every module of the binary in one process, as
// `custody run` does (platformtest: embedded NATS on loopback, real gRPC),
// on clk (nil: wall time). dial returns a client connection with roles; nc
// reads the services' event stores.
func platformWithClock(t *testing.T, clk clock.Clock) (dial func(roles ...string) *grpc.ClientConn, nc *nats.Conn) {
	t.Helper()
	p := platformtest.Start(t, platformtest.Options{Clock: clk}, modules()...)
	return func(roles ...string) *grpc.ClientConn { return p.Conn(t, roles...) }, p.NATS
}

func platformUnderTest(t *testing.T) func(roles ...string) *grpc.ClientConn {
	dial, _ := platformWithClock(t, nil)
	return dial
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

var address = &typev1.Address{RecipientName: "Ada Buyer", AddressLines: []string{"1 Main St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"}

func createProduct(t *testing.T, cat catalogv1.CatalogServiceClient, vendor string, stock int64, price int64) *catalogv1.Product {
	t.Helper()
	ctx := t.Context()
	if _, err := cat.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg-" + vendor, VendorId: vendor, DisplayName: vendor, CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	p, err := cat.CreateProduct(ctx, &catalogv1.CreateProductRequest{
		RequestId: "prod-" + vendor, VendorId: vendor, Title: "Tee by " + vendor, Category: "apparel", AffiliateCommissionBps: 1000,
		Skus: []*catalogv1.SkuSpec{{Code: "one", Title: "One size", Price: eur(price), InitialStock: stock}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.GetProduct()
}

func skuOf(t *testing.T, cat catalogv1.CatalogServiceClient, productID string) *catalogv1.Sku {
	t.Helper()
	p, err := cat.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	return p.GetProduct().GetSkus()[0]
}

// TestFlashSaleNeverOversells: 1,000 buyers tap at once for a SKU with 100
// units. Exactly 100 orders confirm, 900 are rejected, nothing stays
// pending, and the catalog shows 0 available and 100 reserved.
func TestFlashSaleNeverOversells(t *testing.T) {
	t.Parallel()
	dial := platformUnderTest(t)
	conn := dial("platform", "service")
	cat := catalogv1.NewCatalogServiceClient(conn)
	ord := orderv1.NewOrderServiceClient(conn)
	p := createProduct(t, cat, "v-flash", 100, 1500)
	sku := p.GetSkus()[0].GetSkuId()

	const buyers = 1000
	states := make([]orderv1.OrderState, buyers)
	ids := make([]string, buyers)
	var wg sync.WaitGroup
	var refusedAtOnce atomic.Int64
	sem := make(chan struct{}, 200) // client-side cap on open streams
	for i := range buyers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
				RequestId: fmt.Sprintf("flash-%d", i), BuyerId: fmt.Sprintf("b%d", i),
				Lines:           []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
				ShippingAddress: address,
				Payment:         &orderv1.Payment{PspReference: fmt.Sprintf("psp-%d", i), Amount: eur(1500)},
				WaitTimeout:     durationpb.New(20 * time.Second),
			})
			if status.Code(err) == codes.FailedPrecondition && apierr.Reason(err) == "OUT_OF_STOCK" {
				// Refused at once, nothing stored: the order service knew the
				// units were taken (services/order/app/stock.go).
				states[i] = orderv1.OrderState_ORDER_STATE_REJECTED
				refusedAtOnce.Add(1)
				return
			}
			if err != nil {
				t.Errorf("buyer %d: %v", i, err)
				return
			}
			states[i], ids[i] = resp.GetOrder().GetState(), resp.GetOrder().GetOrderId()
		})
	}
	wg.Wait()
	// Anything still pending after its wait is re-read until settled.
	deadline := time.Now().Add(60 * time.Second)
	for i, s := range states {
		for s == orderv1.OrderState_ORDER_STATE_PENDING && ids[i] != "" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			o, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: ids[i]})
			if err != nil {
				t.Fatal(err)
			}
			s = o.GetOrder().GetState()
		}
		states[i] = s
	}
	count := map[orderv1.OrderState]int{}
	for _, s := range states {
		count[s]++
	}
	if count[orderv1.OrderState_ORDER_STATE_CONFIRMED] != 100 || count[orderv1.OrderState_ORDER_STATE_REJECTED] != 900 || len(count) != 2 {
		t.Fatalf("outcomes %v, want exactly 100 CONFIRMED and 900 REJECTED", count)
	}
	t.Logf("%d of the 900 rejections were refused at once, without an order", refusedAtOnce.Load())
	s := skuOf(t, cat, p.GetProductId())
	if s.GetAvailable() != 0 || s.GetReserved() != 100 || s.GetSold() != 0 {
		t.Fatalf("sku available %d reserved %d sold %d, want 0/100/0", s.GetAvailable(), s.GetReserved(), s.GetSold())
	}
}

// TestMultiVendorOrderOutOfStockReleasesEverything: an order across two
// vendors where one SKU is short is rejected naming that SKU, and the
// other vendor's stock is fully released.
func TestMultiVendorOrderOutOfStockReleasesEverything(t *testing.T) {
	t.Parallel()
	dial := platformUnderTest(t)
	conn := dial("platform", "service")
	cat := catalogv1.NewCatalogServiceClient(conn)
	ord := orderv1.NewOrderServiceClient(conn)
	plenty := createProduct(t, cat, "v-plenty", 10, 1000)
	short := createProduct(t, cat, "v-short", 1, 2500)
	resp, err := ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "mv-1", BuyerId: "b1",
		Lines: []*orderv1.LineRequest{
			{SkuId: plenty.GetSkus()[0].GetSkuId(), Quantity: 3},
			{SkuId: short.GetSkus()[0].GetSkuId(), Quantity: 2},
		},
		ShippingAddress: address,
		Payment:         &orderv1.Payment{PspReference: "psp-mv-1", Amount: eur(3*1000 + 2*2500)},
		WaitTimeout:     durationpb.New(20 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	o := resp.GetOrder()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_REJECTED {
		t.Fatalf("order state %v, want REJECTED", o.GetState())
	}
	if len(o.GetParts()) != 2 {
		t.Errorf("order has %d vendor parts, want 2", len(o.GetParts()))
	}
	if want := short.GetSkus()[0].GetSkuId(); !strings.Contains(o.GetReason(), want) {
		t.Errorf("reject reason %q does not name the short SKU %s", o.GetReason(), want)
	}
	for _, p := range []*catalogv1.Product{plenty, short} {
		s := skuOf(t, cat, p.GetProductId())
		if s.GetReserved() != 0 || s.GetAvailable() != p.GetSkus()[0].GetAvailable() {
			t.Errorf("%s: available %d reserved %d after the rejection, want %d/0", s.GetSkuId(), s.GetAvailable(), s.GetReserved(), p.GetSkus()[0].GetAvailable())
		}
	}
}

// TestOneTraceFromPlaceOrderToConfirmation: the trace of the PlaceOrder
// call runs through the catalog's reservation (on the product) and back to the order's
// confirmation — across two services and two NATS consumers.
func TestOneTraceFromPlaceOrderToConfirmation(t *testing.T) {
	dial, nc := platformWithClock(t, nil)
	conn := dial("platform", "service")
	cat := catalogv1.NewCatalogServiceClient(conn)
	p := createProduct(t, cat, "v-trace", 5, 700)
	resp, err := orderv1.NewOrderServiceClient(conn).PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "trace-1", BuyerId: "b1", Lines: []*orderv1.LineRequest{{SkuId: p.GetSkus()[0].GetSkuId(), Quantity: 1}},
		ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-t", Amount: eur(700)},
		WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("place: %v %v", resp.GetOrder().GetState(), err)
	}
	orderID := resp.GetOrder().GetOrderId()
	traceOf := func(service, stream string) map[string]string {
		st, err := esjs.Open(t.Context(), nc, esjs.Config{Service: service, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.ReadStream(t.Context(), stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range evs {
			parts := strings.Split(e.Metadata.TraceParent, "-")
			if len(parts) != 4 {
				t.Fatalf("%s in %s has traceparent %q", e.Type, stream, e.Metadata.TraceParent)
			}
			out[e.Type] = parts[1]
		}
		return out
	}
	orders := traceOf("order", "order-"+orderID)
	// An order of one product is reserved on the product's stream.
	product := traceOf("catalog", "product-"+p.GetProductId())
	placed := orders["custody.order.v1.OrderPlaced"]
	if placed == "" || orders["custody.order.v1.OrderConfirmed"] != placed || product["custody.catalog.v1.StockReserved"] != placed {
		t.Fatalf("trace ids: order stream %v, product stream %v; want one trace", orders, product)
	}
}

var eventually = platformtest.Until

const photo = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestOrderDeliveredEndToEnd: place → confirm → ship with packing
// evidence → carrier scans (late and duplicate too) → delivered with proof
// → the order is DELIVERED, and the catalog moved the units from reserved
// to sold.
func TestOrderDeliveredEndToEnd(t *testing.T) {
	t.Parallel()
	dial := platformUnderTest(t)
	ops := dial("platform", "service")
	cat := catalogv1.NewCatalogServiceClient(ops)
	p := createProduct(t, cat, "v-ship", 10, 1200)
	sku := p.GetSkus()[0].GetSkuId()
	resp, err := orderv1.NewOrderServiceClient(dial("buyer:ada")).PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "ship-1", BuyerId: "ada", Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 2}},
		ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-s", Amount: eur(2400)},
		WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("place: %v %v", resp.GetOrder().GetState(), err)
	}
	orderID := resp.GetOrder().GetOrderId()

	vendor := fulfilmentv1.NewFulfilmentServiceClient(dial("vendor:v-ship"))
	var f *fulfilmentv1.Fulfilment
	eventually(t, "the fulfilment", func() bool {
		l, err := vendor.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: "v-ship", OrderId: orderID})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.GetFulfilments()) == 1 {
			f = l.GetFulfilments()[0]
		}
		return f != nil
	})
	if _, err := vendor.ShipFulfilment(t.Context(), &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-1", FulfilmentId: f.GetFulfilmentId(), Carrier: "dhl", TrackingNumber: "1234567890",
		Packages: []*fulfilmentv1.Package{{PackageId: "1",
			Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 2}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}, Units: []*fulfilmentv1.PackedUnit{
				{LineId: "1", SkuId: sku, SerialNumber: "SN-0001"}, {LineId: "1", SkuId: sku, SerialNumber: "SN-0002"}}},
		}},
	}); err != nil {
		t.Fatalf("ship: %v", err)
	}
	eventually(t, "sold units", func() bool {
		s := skuOf(t, cat, p.GetProductId())
		return s.GetSold() == 2 && s.GetReserved() == 0 && s.GetAvailable() == 8
	})

	carrier := fulfilmentv1.NewFulfilmentServiceClient(dial("carrier:dhl"))
	now := time.Now().Add(-3 * time.Hour) // scans are in the past
	scans := []*fulfilmentv1.RecordTrackingEventRequest{
		{CarrierEventId: "e1", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, OccurTime: timestamppb.New(now)},
		{CarrierEventId: "e3", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(now.Add(2 * time.Hour)),
			Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada", PhotoSha256: photo}},
		{CarrierEventId: "e2", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, OccurTime: timestamppb.New(now.Add(time.Hour))},    // late
		{CarrierEventId: "e3", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(now.Add(2 * time.Hour))}, // duplicate
	}
	for i, s := range scans {
		s.RequestId, s.Carrier, s.TrackingNumber = fmt.Sprintf("scan-%d", i), "dhl", "1234567890"
		if _, err := carrier.RecordTrackingEvent(t.Context(), s); err != nil {
			t.Fatalf("scan %s: %v", s.GetCarrierEventId(), err)
		}
	}
	ord := orderv1.NewOrderServiceClient(ops)
	eventually(t, "the order to be delivered", func() bool {
		o, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orderID})
		return err == nil && o.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_DELIVERED
	})
	got, err := vendor.GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: f.GetFulfilmentId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetFulfilment().GetState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED {
		t.Fatalf("fulfilment state %v", got.GetFulfilment().GetState())
	}

	// Ada changes her mind about one tee and sends it back; the vendor
	// receives it as expected: trust refunds it, the order counts the
	// refund, and the unit goes back on sale (the reactions to trust,
	// which the server hands the claims aggregate's events only).
	var claim *trustv1.Claim
	eventually(t, "the claim to be accepted", func() bool {
		c, err := trustv1.NewTrustServiceClient(dial("buyer:ada")).OpenClaim(t.Context(), &trustv1.OpenClaimRequest{
			RequestId: "cm-1", OrderId: orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND,
			Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		})
		claim = c.GetClaim()
		return err == nil // trust may not have counted the delivery yet
	})
	if claim.GetState() != trustv1.ClaimState_CLAIM_STATE_RETURN_AUTHORISED {
		t.Fatalf("changed-mind claim %v, want RETURN_AUTHORISED", claim.GetState())
	}
	if _, err := trustv1.NewTrustServiceClient(dial("buyer:ada")).RecordReturnShipment(t.Context(), &trustv1.RecordReturnShipmentRequest{
		RequestId: "cm-ship", ClaimId: claim.GetClaimId(), Carrier: "dhl", TrackingNumber: "RET-1"}); err != nil {
		t.Fatalf("return shipment: %v", err)
	}
	received, err := trustv1.NewTrustServiceClient(dial("vendor:v-ship")).ReceiveReturn(t.Context(), &trustv1.ReceiveReturnRequest{
		RequestId: "cm-receive", ClaimId: claim.GetClaimId(), Condition: trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED})
	if err != nil || !received.GetClaim().GetReturn().GetReceived().GetRestock() || len(received.GetClaim().GetRefunds()) != 1 {
		t.Fatalf("return received: %v, %v", received.GetClaim(), err)
	}
	refund := received.GetClaim().GetRefunds()[0].GetAmount().GetAmountMinor()
	eventually(t, "the returned unit back on sale", func() bool {
		s := skuOf(t, cat, p.GetProductId())
		return s.GetAvailable() == 9 && s.GetSold() == 1
	})
	eventually(t, "the refund on the order", func() bool {
		o, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orderID})
		return err == nil && o.GetOrder().GetRefundedTotal().GetAmountMinor() == refund && refund > 0
	})
}

// TestParcelNeverDeliveredIsRefundedAutomatically: the vendor ships, the
// parcel is never scanned as delivered; after the expected delivery date
// (an injected clock moves five days on) the buyer's not-received claim is
// refunded automatically from the custody record, and the order shows
// REFUNDED.
func TestParcelNeverDeliveredIsRefundedAutomatically(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	dial, _ := platformWithClock(t, clk)
	ops := dial("platform", "service")
	p := createProduct(t, catalogv1.NewCatalogServiceClient(ops), "v-lost", 10, 1200)
	sku := p.GetSkus()[0].GetSkuId()
	buyer := dial("buyer:ada")
	resp, err := orderv1.NewOrderServiceClient(buyer).PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "lost-1", BuyerId: "ada", Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 2}},
		ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-l", Amount: eur(2400)},
		WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil || resp.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("place: %v %v", resp.GetOrder().GetState(), err)
	}
	orderID := resp.GetOrder().GetOrderId()
	vendor := fulfilmentv1.NewFulfilmentServiceClient(dial("vendor:v-lost"))
	var fid string
	eventually(t, "the fulfilment", func() bool {
		l, err := vendor.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: "v-lost", OrderId: orderID})
		if err == nil && len(l.GetFulfilments()) == 1 {
			fid = l.GetFulfilments()[0].GetFulfilmentId()
		}
		return fid != ""
	})
	if _, err := vendor.ShipFulfilment(t.Context(), &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-l", FulfilmentId: fid, Carrier: "dhl", TrackingNumber: "5555555555",
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 2}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}, Units: []*fulfilmentv1.PackedUnit{
				{LineId: "1", SkuId: sku, LotNumber: "LOT-7"}, {LineId: "1", SkuId: sku, LotNumber: "LOT-7"}}}}},
	}); err != nil {
		t.Fatalf("ship: %v", err)
	}
	clk.Advance(6 * 24 * time.Hour) // past the expected delivery; no DELIVERED scan ever came

	claims := trustv1.NewTrustServiceClient(buyer)
	var claim *trustv1.Claim
	eventually(t, "the claim to be accepted", func() bool {
		c, err := claims.OpenClaim(t.Context(), &trustv1.OpenClaimRequest{
			RequestId: "nr-1", OrderId: orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED,
			Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 2}},
		})
		if err != nil {
			return false // the trust service may not have seen the shipment yet
		}
		claim = c.GetClaim()
		return true
	})
	if len(claim.GetRefunds()) != 1 || claim.GetRefunds()[0].GetAmount().GetAmountMinor() != 2400 {
		t.Fatalf("claim refunds %v, want one automatic refund of 2400", claim.GetRefunds())
	}
	if len(claim.GetAssessments()) == 0 || len(claim.GetAssessments()[0].GetReliedOnEventIds()) == 0 {
		t.Fatalf("the automatic decision names no events it relied on: %v", claim.GetAssessments())
	}
	ord := orderv1.NewOrderServiceClient(ops)
	eventually(t, "the order to be refunded", func() bool {
		o, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orderID})
		return err == nil && o.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_REFUNDED &&
			o.GetOrder().GetRefundedTotal().GetAmountMinor() == 2400
	})
}

// TestAffiliateOrderPaysOutThenClawsBack: an order through a creator's
// affiliate link is shipped and delivered; once the return window has
// passed (fake clock), a payout run pays the vendor, the creator and the
// platform exactly what the split says. A refund after that payout claws
// the money back: the next run pays them nothing.
func TestAffiliateOrderPaysOutThenClawsBack(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	dial, _ := platformWithClock(t, clk)
	ops := dial("platform", "service")
	cat := catalogv1.NewCatalogServiceClient(ops)
	p := createProduct(t, cat, "v-pay", 5, 12000) // live/link commission 1000 bps
	sku := p.GetSkus()[0].GetSkuId()
	link, err := catalogv1.NewCatalogServiceClient(dial("creator:c-pay")).CreateAffiliateLink(t.Context(),
		&catalogv1.CreateAffiliateLinkRequest{RequestId: "l1", CreatorId: "c-pay", ProductId: p.GetProductId()})
	if err != nil {
		t.Fatal(err)
	}
	buyer := dial("buyer:bea")
	var resp *orderv1.PlaceOrderResponse
	eventually(t, "the order to see the link", func() bool {
		resp, err = orderv1.NewOrderServiceClient(buyer).PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
			RequestId: "pay-1", BuyerId: "bea", Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
			ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-p", Amount: eur(12000)},
			Attribution: &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link.GetLink().GetLinkId()}},
			WaitTimeout: durationpb.New(20 * time.Second),
		})
		return err == nil
	})
	o := resp.GetOrder()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || o.GetLines()[0].GetCreatorId() != "c-pay" || o.GetLines()[0].GetCommissionBps() != 1000 {
		t.Fatalf("order %v, line %v", o.GetState(), o.GetLines()[0])
	}
	vendor := fulfilmentv1.NewFulfilmentServiceClient(dial("vendor:v-pay"))
	var fid string
	eventually(t, "the fulfilment", func() bool {
		l, err := vendor.ListFulfilments(t.Context(), &fulfilmentv1.ListFulfilmentsRequest{VendorId: "v-pay", OrderId: o.GetOrderId()})
		if err == nil && len(l.GetFulfilments()) == 1 {
			fid = l.GetFulfilments()[0].GetFulfilmentId()
		}
		return fid != ""
	})
	if _, err := vendor.ShipFulfilment(t.Context(), &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-p", FulfilmentId: fid, Carrier: "dhl", TrackingNumber: "7777777777",
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 1}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}, Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SkuId: sku, SerialNumber: "SN-9"}}}}},
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := fulfilmentv1.NewFulfilmentServiceClient(dial("carrier:dhl")).RecordTrackingEvent(t.Context(), &fulfilmentv1.RecordTrackingEventRequest{
		RequestId: "d1", Carrier: "dhl", TrackingNumber: "7777777777", CarrierEventId: "d1",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(clk.Now()),
		Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Bea", PhotoSha256: photo},
	}); err != nil {
		t.Fatal(err)
	}
	pay := payoutsv1.NewPayoutsServiceClient(ops)
	balance := func(owner string) *payoutsv1.Balance { return eurBalance(t, pay, owner) }
	eventually(t, "the money to wait out the return window", func() bool { return balance("vendor:v-pay").GetPending().GetAmountMinor() > 0 })
	clk.Advance(8 * 24 * time.Hour) // the 7-day return window closes with no claim
	eventually(t, "the release", func() bool { return balance("creator:c-pay").GetAvailable().GetAmountMinor() == 1200 })
	v := balance("vendor:v-pay")
	// 12000 captured: creator 10% = 1200, platform fee 5% = 600, vendor the
	// remaining 10200, of which the trust tier's reserve is held back.
	if got := v.GetAvailable().GetAmountMinor() + v.GetReserve().GetAmountMinor(); got != 10200 {
		t.Fatalf("vendor available %d + reserve %d = %d, want 10200", v.GetAvailable().GetAmountMinor(), v.GetReserve().GetAmountMinor(), got)
	}
	run, err := pay.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	paid := map[string]int64{}
	for _, l := range run.GetBatch().GetLines() {
		paid[l.GetPayee()] += l.GetAmount().GetAmountMinor()
	}
	if paid["vendor:v-pay"] != v.GetAvailable().GetAmountMinor() || paid["creator:c-pay"] != 1200 {
		t.Fatalf("batch paid %v, want vendor %d and creator 1200", paid, v.GetAvailable().GetAmountMinor())
	}
	again, err := pay.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: "run-1"})
	if err != nil || again.GetBatch().GetBatchId() != run.GetBatch().GetBatchId() {
		t.Fatalf("repeating the run: %v %v", again.GetBatch(), err)
	}

	// A damaged-item claim after the payout: the vendor accepts a full refund.
	claim, err := trustv1.NewTrustServiceClient(buyer).OpenClaim(t.Context(), &trustv1.OpenClaimRequest{
		RequestId: "dmg-1", OrderId: o.GetOrderId(), Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
		Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}}, Evidence: &trustv1.Evidence{Sha256: []string{photo}, Text: "cracked"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trustv1.NewTrustServiceClient(dial("vendor:v-pay")).RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{
		RequestId: "acc-1", ClaimId: claim.GetClaim().GetClaimId(), Response: trustv1.VendorResponse_VENDOR_RESPONSE_ACCEPT_REFUND,
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the clawback", func() bool { return balance("creator:c-pay").GetAvailable().GetAmountMinor() == -1200 })
	// The vendor was paid its available share; the refund takes back its
	// whole share, so available goes negative (the reserve stays held).
	if a := balance("vendor:v-pay").GetAvailable().GetAmountMinor(); a >= 0 {
		t.Fatalf("vendor available after the clawback = %d, want negative", a)
	}
	next, err := pay.RunPayouts(t.Context(), &payoutsv1.RunPayoutsRequest{RequestId: "run-2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range next.GetBatch().GetLines() {
		if l.GetPayee() == "vendor:v-pay" || l.GetPayee() == "creator:c-pay" {
			t.Fatalf("after the clawback the next run still paid %s %d", l.GetPayee(), l.GetAmount().GetAmountMinor())
		}
	}
}

// TestParkedEventsAreVisibleInAudit: a consumer that cannot handle an event
// parks it on the dead-letter stream; support sees it through the audit
// service — never silently dropped.
func TestParkedEventsAreVisibleInAudit(t *testing.T) {
	t.Parallel()
	dial, nc := platformWithClock(t, nil)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bus.Subscribe(t.Context(), js, bus.Config{Name: "test-poison", SourceService: "catalog",
		EventTypes: []string{"custody.catalog.v1.VendorRegistered"}},
		func(context.Context, eventstore.RecordedEvent) error {
			return fault.Permanent(errors.New("cannot handle vendors"))
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	createProduct(t, catalogv1.NewCatalogServiceClient(dial("platform")), "v-poison", 1, 100)
	audit := auditv1.NewAuditServiceClient(dial("support"))
	var parked []*auditv1.ParkedEvent
	eventually(t, "the parked event", func() bool {
		r, err := audit.ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{Consumer: "test-poison"})
		parked = r.GetParked()
		return err == nil && len(parked) == 1
	})
	p := parked[0]
	if p.GetEventType() != "custody.catalog.v1.VendorRegistered" || p.GetCause() != bus.CausePermanent || !strings.Contains(p.GetReason(), "cannot handle vendors") {
		t.Fatalf("parked %v", p)
	}
	if _, err := auditv1.NewAuditServiceClient(dial("buyer:b1")).ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a buyer listing parked events: %v", err)
	}
}
