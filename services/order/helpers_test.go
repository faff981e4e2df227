package order_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order"
)

// The tests run the real thing: the order module in a platform under test
// (an embedded NATS with JetStream, platform.Run, gRPC over loopback with
// role tokens). The catalog is not ours, so the tests play its part by
// emitting its events (ProductCreated, StockReserved, …) into its stream.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a platform running the order module on a fake clock.
type env struct {
	*platformtest.Platform
	clock *clock.Fake
}

// shared is the platform of the package's tests. They use their own
// buyers, vendors and products, but do not run in parallel: several assert
// that a refused call wrote nothing to the order store, which another
// test's orders would.
var shared *env

func TestMain(m *testing.M) {
	clk := clock.NewFake(t0)
	// The catalog's stream exists first, as when the catalog runs in the
	// same process.
	platformtest.Main(m, platformtest.Options{Clock: clk, Streams: []string{"catalog"}},
		func(p *platformtest.Platform) { shared = &env{p, clk} }, order.NewModule(order.Options{}))
}

// start runs m on a platform of the test's own; withCatalog creates the
// catalog's stream first (without it the order module starts before the
// catalog).
func start(t *testing.T, m platform.Module, withCatalog bool) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	o := platformtest.Options{Clock: clk}
	if withCatalog {
		o.Streams = []string{"catalog"}
	}
	return &env{platformtest.Start(t, o, m), clk}
}

// as returns an order client whose calls carry a token with role ("" for none).
func (e *env) as(t testing.TB, role string) orderv1.OrderServiceClient {
	t.Helper()
	return platformtest.As(t, e.Platform, orderv1.NewOrderServiceClient, role)
}

func uniq(prefix string) string { return platformtest.ID(prefix) }

// buyer is a fresh buyer and its client.
func (e *env) buyer(t testing.TB) (string, orderv1.OrderServiceClient) {
	t.Helper()
	id := uniq("b")
	return id, e.as(t, "buyer:"+id)
}

// place places req with client and returns the order; a refusal fails t.
func place(t testing.TB, client orderv1.OrderServiceClient, req *orderv1.PlaceOrderRequest) *orderv1.Order {
	t.Helper()
	resp, err := client.PlaceOrder(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetOrder()
}

type sku struct {
	code     string
	currency string
	price    int64
}

// product creates a product of vendor with SKUs; their ids are
// "<product>-<code>".
func (e *env) product(t testing.TB, vendor string, commissionBps int32, skus ...sku) string {
	t.Helper()
	pid := uniq("p")
	pc := &catalogv1.ProductCreated{ProductId: pid, VendorId: vendor, Title: "Product " + pid,
		AffiliateCommissionBps: commissionBps, CreateTime: timestamppb.New(e.clock.Now())}
	for _, s := range skus {
		pc.Skus = append(pc.Skus, &catalogv1.SkuCreated{SkuId: pid + "-" + s.code, Code: s.code, Title: pid + " " + s.code,
			Price: &typev1.Money{CurrencyCode: s.currency, AmountMinor: s.price}, InitialStock: 100})
	}
	e.Emit(t, "catalog", "product-"+pid, pc)
	return pid
}

// skuOf creates a product of vendor with one SKU, code at price (EUR
// minor units), and returns the SKU's id.
func (e *env) skuOf(t testing.TB, vendor, code string, price int64) string {
	t.Helper()
	return e.product(t, vendor, 0, sku{code, "EUR", price}) + "-" + code
}

func (e *env) link(t testing.TB, creator, product, vendor string, bps int32) string {
	t.Helper()
	id := uniq("l")
	e.Emit(t, "catalog", "link-"+id, &catalogv1.AffiliateLinkCreated{LinkId: id, CreatorId: creator, ProductId: product,
		VendorId: vendor, CommissionBps: bps, CreateTime: timestamppb.New(e.clock.Now())})
	return id
}

func (e *env) session(t testing.TB, creator string, start time.Time) string {
	t.Helper()
	id := uniq("s")
	e.Emit(t, "catalog", "session-"+id, &catalogv1.LiveSessionStarted{SessionId: id, CreatorId: creator, Title: "live", StartTime: timestamppb.New(start)})
	return id
}

func (e *env) pin(t testing.TB, session, product string, bps int32, at time.Time) {
	t.Helper()
	e.Emit(t, "catalog", "session-"+session, &catalogv1.ProductPinned{SessionId: session, ProductId: product, CommissionBps: bps, PinTime: timestamppb.New(at)})
}

func (e *env) unpin(t testing.TB, session, product string, at time.Time) {
	t.Helper()
	e.Emit(t, "catalog", "session-"+session, &catalogv1.ProductUnpinned{SessionId: session, ProductId: product, UnpinTime: timestamppb.New(at)})
}

func (e *env) reserved(t testing.TB, orderID string) {
	t.Helper()
	e.Emit(t, "catalog", "reservation-"+orderID, &catalogv1.StockReserved{OrderId: orderID, ReserveTime: timestamppb.New(e.clock.Now())})
}

func (e *env) reservationFailed(t testing.TB, orderID, sku string) string {
	t.Helper()
	reason := fmt.Sprintf("sku %s: 2 requested, 0 available", sku)
	e.Emit(t, "catalog", "reservation-"+orderID, &catalogv1.StockReservationFailed{OrderId: orderID, SkuId: sku, Requested: 2, Available: 0,
		Reason: reason, FailTime: timestamppb.New(e.clock.Now())})
	return reason
}

// orderEvents returns the decoded events of an order's stream.
func (e *env) orderEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	return e.Events(t, "order", "order-"+orderID)
}

// waitState polls GetOrder (as support) until the order reaches want.
func (e *env) waitState(t testing.TB, orderID string, want orderv1.OrderState) *orderv1.Order {
	t.Helper()
	return platformtest.Await(t, "order "+orderID+" to be "+want.String(), func() (*orderv1.Order, error) {
		resp, err := e.as(t, "support").GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: orderID})
		return resp.GetOrder(), err
	}, func(o *orderv1.Order) error {
		if o.GetState() != want {
			return fmt.Errorf("order %s is %s", orderID, o.GetState())
		}
		return nil
	})
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

func address() *typev1.Address {
	return &typev1.Address{RecipientName: "Ada Lovelace", AddressLines: []string{"Unter den Linden 1"}, Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
}

// placeRequest is a valid request for buyer; amount must be the total.
func placeRequest(buyer string, amount *typev1.Money, lines ...*orderv1.LineRequest) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{RequestId: uniq("req-"), BuyerId: buyer, Lines: lines, ShippingAddress: address(),
		Payment: &orderv1.Payment{PspReference: uniq("psp-"), Amount: amount}}
}

func line(skuID string, qty int64) *orderv1.LineRequest {
	return &orderv1.LineRequest{SkuId: skuID, Quantity: qty}
}
