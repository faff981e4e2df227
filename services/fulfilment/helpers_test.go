package fulfilment_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The tests run the real thing (platformtest): the fulfilment module in a
// Custody process on an embedded NATS, real gRPC over loopback with minted
// tokens, a fake clock. The order service is not ours, so the tests play
// its part by emitting its events (OrderPlaced, OrderConfirmed,
// OrderCancelled) into its stream.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// shared is the platform of the package's tests that need no options of
// their own; they use their own buyers, vendors and tracking numbers. Tests
// that move its clock, or that compare the store's last position before and
// after a refusal, run one by one; the others call t.Parallel(), so they
// run together only once every one-by-one test has finished: nothing moves
// the clock or writes behind their backs.
//
// Its handling time is a year, so that no ship-by deadline passes however
// far the tests move its clock (go test -count=n moves it n times as far):
// deadlines are TestShipByDeadlines', on a platform of its own.
var shared *fixture

const sharedHandlingTime = 365 * 24 * time.Hour

func TestMain(m *testing.M) {
	clk := clock.NewFake(t0)
	platformtest.Main(m, platformtest.Options{Clock: clk}, func(p *platformtest.Platform) { shared = &fixture{Platform: p, clock: clk} },
		fulfilment.NewModule(fulfilment.Options{HandlingTime: sharedHandlingTime}))
}

// fixture is a platform running the fulfilment module on a fake clock.
type fixture struct {
	*platformtest.Platform
	clock *clock.Fake
}

// start runs the fulfilment module with o on a platform of its own, until
// the test ends.
func start(t *testing.T, o fulfilment.Options) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	return &fixture{Platform: platformtest.Start(t, platformtest.Options{Clock: clk}, fulfilment.NewModule(o)), clock: clk}
}

// as returns a client whose calls carry a token with role: one role, or
// several separated by commas ("" for none).
func (e *fixture) as(t testing.TB, role string) fulfilmentv1.FulfilmentServiceClient {
	t.Helper()
	return platformtest.As(t, e.Platform, fulfilmentv1.NewFulfilmentServiceClient, role)
}

var uniq = platformtest.ID

// trackingSeq makes tracking numbers unique across the tests of a run.
var trackingSeq atomic.Int64

// dhlNumber is a fresh DHL tracking number (10 digits).
func dhlNumber() string { return fmt.Sprintf("%010d", 1_000_000_000+trackingSeq.Add(1)) }

// upsNumber is a fresh UPS tracking number ("1Z" + 16).
func upsNumber() string { return fmt.Sprintf("1Z%016d", trackingSeq.Add(1)) }

// emitOrder appends order events to one order's stream, as the order
// service would.
func (e *fixture) emitOrder(t testing.TB, orderID string, msgs ...proto.Message) {
	t.Helper()
	e.Emit(t, "order", eventstore.StreamName("order", orderID), msgs...)
}

// part is one vendor's lines of an order: sku → quantity, in order.
type part struct {
	vendor string
	lines  []lineQty
}

type lineQty struct {
	sku string
	qty int64
}

func address() *typev1.Address {
	return &typev1.Address{RecipientName: "Ada Lovelace", AddressLines: []string{"Unter den Linden 1"}, Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
}

// placeOrder appends an OrderPlaced for buyer with the parts (line ids
// "1", "2", … across parts) and returns the order id and its lines.
func (e *fixture) placeOrder(t testing.TB, buyer string, parts ...part) (string, []*orderv1.OrderLine, []*orderv1.VendorPart) {
	t.Helper()
	orderID := uniq("o")
	var lines []*orderv1.OrderLine
	var vparts []*orderv1.VendorPart
	n := 0
	for _, p := range parts {
		vp := &orderv1.VendorPart{VendorId: p.vendor}
		for _, l := range p.lines {
			n++
			id := fmt.Sprint(n)
			lines = append(lines, &orderv1.OrderLine{LineId: id, SkuId: l.sku, VendorId: p.vendor, Quantity: l.qty,
				UnitPrice: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}, LineTotal: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100 * l.qty}})
			vp.LineIds = append(vp.LineIds, id)
		}
		vparts = append(vparts, vp)
	}
	e.emitOrder(t, orderID, &orderv1.OrderPlaced{OrderId: orderID, BuyerId: buyer, Lines: lines, Parts: vparts,
		ShippingAddress: address(), PlaceTime: timestamppb.New(e.clock.Now())})
	return orderID, lines, vparts
}

// confirmOrder places and confirms an order (what the order service does
// once the catalog reserved it) and waits for its fulfilments; it returns
// the order id.
func (e *fixture) confirmOrder(t testing.TB, buyer string, parts ...part) string {
	t.Helper()
	orderID, lines, vparts := e.placeOrder(t, buyer, parts...)
	e.emitOrder(t, orderID, &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: buyer, Parts: vparts, Lines: lines,
		ShippingAddress: address(), ConfirmTime: timestamppb.New(e.clock.Now())})
	for _, p := range parts {
		e.waitState(t, fulfilmentID(orderID, p.vendor), stateRequested)
	}
	return orderID
}

// sell confirms an order of lines from a fresh vendor for a fresh buyer
// and waits for its fulfilment: it returns the vendor, the buyer, the order
// and the fulfilment id.
func (e *fixture) sell(t testing.TB, lines ...lineQty) (vendor, buyer, orderID, fid string) {
	t.Helper()
	vendor, buyer = uniq("v"), uniq("b")
	orderID = e.confirmOrder(t, buyer, part{vendor, lines})
	return vendor, buyer, orderID, fulfilmentID(orderID, vendor)
}

func (e *fixture) cancelOrder(t testing.TB, orderID string) {
	t.Helper()
	e.emitOrder(t, orderID, &orderv1.OrderCancelled{OrderId: orderID, Reason: "changed my mind", CancelledBy: "buyer:x", CancelTime: timestamppb.New(e.clock.Now())})
}

// waitState polls GetFulfilment (as support) until the fulfilment exists
// and is in want (UNSPECIFIED: any state).
func (e *fixture) waitState(t testing.TB, id string, want fulfilmentv1.FulfilmentState) *fulfilmentv1.Fulfilment {
	t.Helper()
	return platformtest.Await(t, "fulfilment "+id+" in "+want.String(), func() (*fulfilmentv1.Fulfilment, error) {
		resp, err := e.as(t, "support").GetFulfilment(t.Context(), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: id})
		return resp.GetFulfilment(), err
	}, func(f *fulfilmentv1.Fulfilment) error {
		if want != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_UNSPECIFIED && f.GetState() != want {
			return fmt.Errorf("fulfilment %s is %s, want %s", id, f.GetState(), want)
		}
		return nil
	})
}

// events returns the decoded events of a fulfilment's stream.
func (e *fixture) events(t testing.TB, id string) []proto.Message {
	t.Helper()
	return e.Events(t, fulfilment.Name, eventstore.StreamName(domain.Decider.Aggregate, id))
}

// eventsOf returns the events of type T of a fulfilment.
func eventsOf[T proto.Message](t testing.TB, e *fixture, id string) []T {
	t.Helper()
	var out []T
	for _, m := range e.events(t, id) {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

const day = 24 * time.Hour

var (
	photo     = strings.Repeat("a1", 32)
	signature = strings.Repeat("5e", 32)
	doorstep  = strings.Repeat("d0", 32)
)

func fulfilmentID(orderID, vendorID string) string { return domain.FulfilmentID(orderID, vendorID) }

func line(id string, qty int64) *fulfilmentv1.ShippedLine {
	return &fulfilmentv1.ShippedLine{LineId: id, Quantity: qty}
}

// box is a package of lines with a packing photo and one serial-numbered
// unit per item.
func box(lines ...*fulfilmentv1.ShippedLine) *fulfilmentv1.Package {
	p := &fulfilmentv1.Package{Lines: lines, Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}}}
	for _, l := range lines {
		for range l.GetQuantity() {
			p.Evidence.Units = append(p.Evidence.Units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), SkuId: l.GetSkuId(), SerialNumber: uniq("SN-")})
		}
	}
	return p
}

func shipReq(fid, carrier, number string, pkgs ...*fulfilmentv1.Package) *fulfilmentv1.ShipFulfilmentRequest {
	return &fulfilmentv1.ShipFulfilmentRequest{RequestId: uniq("req-"), FulfilmentId: fid, Carrier: carrier, TrackingNumber: number, Packages: pkgs}
}

func scanReq(carrier, number, eventID string, st fulfilmentv1.TrackingStatus, at time.Time, proof *fulfilmentv1.ProofOfDelivery) *fulfilmentv1.RecordTrackingEventRequest {
	return &fulfilmentv1.RecordTrackingEventRequest{Carrier: carrier, TrackingNumber: number, CarrierEventId: eventID, Status: st,
		OccurTime: timestamppb.New(at), Location: "Berlin hub", Proof: proof}
}

// The states the API reports (scan statuses are the domain's: domain.InTransit, …).
const (
	stateRequested = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED
	statePartial   = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_PARTIALLY_SHIPPED
	stateShipped   = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED
	stateDelivered = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED
	stateFailed    = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERY_FAILED
	stateCancelled = fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED
)

var wantCode, wantField = platformtest.WantCode, platformtest.WantField

// wantReason fails unless err is FailedPrecondition with reason.
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	platformtest.WantReason(t, err, codes.FailedPrecondition, reason)
}
