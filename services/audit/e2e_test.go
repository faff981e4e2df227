package audit_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
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
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/catalog"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/trust"
)

// TestReplayOfRealServices runs every service in one process, as `custody
// run` does (embedded NATS, a fake clock), takes an order from placement
// through shipping to delivery with proof through their gRPC APIs, and
// replays it at a moment between shipping and delivery: SHIPPED, the money
// still in escrow, no claim — from the events the services really stored,
// folded with their own deciders.
func TestReplayOfRealServices(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipped in -short mode: starts every service (make test runs it)")
	}
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	p := allServices(t, clk)
	dial := func(roles ...string) *grpc.ClientConn { return p.Conn(t, roles...) }
	ctx := t.Context()
	const vendor, buyer, tracking = "v-audit", "b-audit", "4242424242"
	sku := teapots(t, p, vendor)
	clk.Advance(time.Minute)
	placed, err := orderv1.NewOrderServiceClient(dial("buyer:"+buyer)).PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: "r1", BuyerId: buyer, Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 2}},
		ShippingAddress: &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
		Payment:         &orderv1.Payment{PspReference: "psp-1", Amount: eur(2400)}, WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil || placed.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("place: %v %v", placed.GetOrder().GetState(), err)
	}
	orderID := placed.GetOrder().GetOrderId()
	support := auditv1.NewAuditServiceClient(dial("support"))

	// Wait for the fulfilment and the capture into escrow.
	vendorClient := fulfilmentv1.NewFulfilmentServiceClient(dial("vendor:" + vendor))
	var fid string
	platformtest.Eventually(t, "the fulfilment and the capture into escrow", func() error {
		l, err := vendorClient.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, OrderId: orderID})
		if err != nil || len(l.GetFulfilments()) != 1 {
			return fmt.Errorf("fulfilments %v: %v", l.GetFulfilments(), err)
		}
		fid = l.GetFulfilments()[0].GetFulfilmentId()
		r, err := support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: orderID})
		if err != nil || r.GetMoney().GetEscrow().GetAmountMinor() != 2400 {
			return fmt.Errorf("money %v: %v", r.GetMoney(), err)
		}
		return nil
	})

	clk.Advance(time.Hour)
	if _, err := vendorClient.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-1", FulfilmentId: fid, Carrier: "dhl", TrackingNumber: tracking,
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 2}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SkuId: sku, SerialNumber: "SN-1"}, {LineId: "1", SkuId: sku, SerialNumber: "SN-2"}}}}},
	}); err != nil {
		t.Fatalf("ship: %v", err)
	}
	carrier := fulfilmentv1.NewFulfilmentServiceClient(dial("carrier:dhl"))
	scan := func(id string, status fulfilmentv1.TrackingStatus, proof *fulfilmentv1.ProofOfDelivery) {
		t.Helper()
		if _, err := carrier.RecordTrackingEvent(ctx, &fulfilmentv1.RecordTrackingEventRequest{RequestId: id, CarrierEventId: id,
			Carrier: "dhl", TrackingNumber: tracking, Status: status, OccurTime: timestamppb.New(clk.Now().Add(-time.Minute)), Proof: proof}); err != nil {
			t.Fatalf("scan %s: %v", id, err)
		}
	}
	clk.Advance(time.Hour)
	scan("e1", fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, nil)
	clk.Advance(time.Hour)
	between := clk.Now()
	clk.Advance(24 * time.Hour)
	scan("e2", fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada", SignatureSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})

	// Wait until the delivery has reached payouts (the return window runs).
	platformtest.Eventually(t, "the delivery in payouts", func() error {
		r, err := support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: orderID})
		if err != nil {
			return err
		}
		if r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED || r.GetMoney().GetEscrow().GetAmountMinor() != 0 {
			return fmt.Errorf("now: order %v, money %v", r.GetOrder().GetState(), r.GetMoney())
		}
		return nil
	})

	r, err := support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: orderID, AsOf: timestamppb.New(between)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetFulfilments()) != 1 || r.GetFulfilments()[0].GetState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED {
		t.Errorf("fulfilments %v, want one SHIPPED", r.GetFulfilments())
	}
	if m := r.GetMoney(); m.GetCaptured().GetAmountMinor() != 2400 || m.GetEscrow().GetAmountMinor() != 2400 || len(m.GetParts()) != 1 ||
		m.GetParts()[0].GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_ESCROW {
		t.Errorf("money %v, want all 2400 in escrow", m)
	}
	if len(r.GetClaims()) != 0 {
		t.Errorf("claims %v", r.GetClaims())
	}
	if o := r.GetOrder(); o.GetState() != orderv1.OrderState_ORDER_STATE_SHIPPED {
		t.Errorf("order %v", o.GetState())
	}
	if !r.GetChainValid() {
		t.Errorf("chain %v", r.GetBrokenLink())
	}

	tl, err := support.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: orderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var services, types []string
	for _, e := range tl.GetEvents() {
		if !slices.Contains(services, e.GetService()) {
			services = append(services, e.GetService())
		}
		types = append(types, e.GetType())
		if e.GetPayloadJson() == "" {
			t.Errorf("%s: %s", e.GetType(), e.GetPayloadError())
		}
	}
	for _, want := range []string{"catalog", "order", "fulfilment", "payouts"} {
		if !slices.Contains(services, want) {
			t.Errorf("no %s events in the timeline: %v", want, types)
		}
	}
	for _, want := range []string{"custody.order.v1.OrderPlaced", "custody.fulfilment.v1.TrackingEventRecorded", "custody.payouts.v1.FundsEscrowed"} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s in the timeline: %v", want, types)
		}
	}
	v, err := support.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{OrderId: orderID})
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetValid() || v.GetEventsChecked() < int64(len(tl.GetEvents())) {
		t.Errorf("verdict %v", v)
	}
	t.Logf("%d events from %v; %d events in %d streams verified: %v", len(tl.GetEvents()), services, v.GetEventsChecked(), v.GetStreamsChecked(), tl.GetStreams())
}

// allServices runs every module on an embedded NATS, as `custody run`
// does.
func allServices(t *testing.T, clk clock.Clock) *platformtest.Platform {
	t.Helper()
	return platformtest.Start(t, platformtest.Options{Clock: clk}, catalog.Module(), order.Module(), fulfilment.Module(), trust.Module(), payouts.Module(), audit.Module())
}

// eur is an amount in euros, in cents.
func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// teapots registers vendor with a teapot at 12.00 EUR, 10 in stock, and
// returns its SKU.
func teapots(t *testing.T, p *platformtest.Platform, vendor string) string {
	t.Helper()
	cat := catalogv1.NewCatalogServiceClient(p.Conn(t, "platform"))
	if _, err := cat.RegisterVendor(t.Context(), &catalogv1.RegisterVendorRequest{RequestId: "reg", VendorId: vendor, DisplayName: vendor, CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	prod, err := cat.CreateProduct(t.Context(), &catalogv1.CreateProductRequest{RequestId: "prod", VendorId: vendor, Title: "Teapot", Category: "kitchen",
		Skus: []*catalogv1.SkuSpec{{Code: "a", Title: "Teapot", Price: eur(1200), InitialStock: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	return prod.GetProduct().GetSkus()[0].GetSkuId()
}
