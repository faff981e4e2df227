package trust_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust"
)

// The tests run the real thing (platformtest): the trust module in a
// Custody process on an embedded NATS, real gRPC over loopback with
// tokens. The order and fulfilment services are not ours, so the tests
// play their part by emitting their events (OrderConfirmed,
// FulfilmentShipped, TrackingEventRecorded, …) into their streams. Time is
// a fake clock the tests move, so the tests, which share one platform and
// use their own buyers, vendors and orders, run one after the other.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

var (
	shared *platformtest.Platform
	clk    *clock.Fake
)

func TestMain(m *testing.M) {
	clk = clock.NewFake(t0)
	// The upstream streams exist before the trust service starts, as in
	// the all-in-one.
	platformtest.Main(m, platformtest.Options{Clock: clk, Streams: []string{"order", "fulfilment"}},
		func(p *platformtest.Platform) { shared = p }, trust.NewModule(trust.Options{}))
}

// as is a client of the trust service whose calls carry a token with
// roles (none: unauthenticated).
func as(t testing.TB, roles ...string) trustv1.TrustServiceClient {
	t.Helper()
	return platformtest.Client(t, shared, trustv1.NewTrustServiceClient, roles...)
}

// emit stores msg in one stream of an upstream service, as that service
// would, and returns its event id.
func emit(t testing.TB, service, stream string, msg proto.Message) string {
	t.Helper()
	return shared.Emit(t, service, stream, msg)[0].ID
}

// claimEvents returns the decoded events of an order's claims stream.
func claimEvents(t testing.TB, orderID string) []proto.Message {
	t.Helper()
	return shared.Events(t, trust.Name, "claims-"+orderID)
}

func eventNames(evs []proto.Message) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, string(e.ProtoReflect().Descriptor().Name()))
	}
	return out
}

var hashes atomic.Int64

// sha256Hex is a fresh photo hash.
func sha256Hex() string { return fmt.Sprintf("%064x", hashes.Add(1)) }

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

func now() *timestamppb.Timestamp { return timestamppb.New(clk.Now()) }

// sale is one order of one buyer from one vendor, as the upstream services
// recorded it, with the ids of their events.
type sale struct {
	orderID, buyer, vendor, fulfilmentID string
	lines                                []*orderv1.OrderLine
	confirmedID, requestedID             string
	shipments                            map[string]*shipment
}

type shipment struct {
	id, tracking string
	eventID      string
	scanIDs      []string
}

// orderLine is quantity × unit price (EUR minor units) of a fresh SKU.
type orderLine struct {
	qty, unit int64
}

// confirm records an order confirmed with lines "1", "2", … of vendor and
// its fulfilment requested (ship by +2 days).
func confirm(t testing.TB, buyer, vendor string, ls ...orderLine) *sale {
	t.Helper()
	s := &sale{orderID: platformtest.ID("o"), buyer: buyer, vendor: vendor, shipments: map[string]*shipment{}}
	s.fulfilmentID = "f" + s.orderID
	var total int64
	var lineIDs []string
	var shipped []*fulfilmentv1.ShippedLine
	for i, l := range ls {
		id := fmt.Sprint(i + 1)
		s.lines = append(s.lines, &orderv1.OrderLine{LineId: id, SkuId: platformtest.ID("sku"), VendorId: vendor, Quantity: l.qty,
			UnitPrice: eur(l.unit), LineTotal: eur(l.qty * l.unit)})
		total += l.qty * l.unit
		lineIDs = append(lineIDs, id)
		shipped = append(shipped, &fulfilmentv1.ShippedLine{LineId: id, Quantity: l.qty})
	}
	s.confirmedID = emit(t, "order", "order-"+s.orderID, &orderv1.OrderConfirmed{OrderId: s.orderID, BuyerId: buyer,
		Parts: []*orderv1.VendorPart{{VendorId: vendor, LineIds: lineIDs, Subtotal: eur(total)}}, Lines: s.lines,
		Total: eur(total), ConfirmTime: now()})
	s.requestedID = emit(t, "fulfilment", "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentRequested{
		FulfilmentId: s.fulfilmentID, OrderId: s.orderID, VendorId: vendor, BuyerId: buyer, Lines: shipped,
		ShipByTime: timestamppb.New(clk.Now().Add(2 * day)), RequestTime: now()})
	return s
}

func (s *sale) captured() int64 {
	var total int64
	for _, l := range s.lines {
		total += l.GetLineTotal().GetAmountMinor()
	}
	return total
}

// ship ships every line in one shipment, expected in 3 days; serials are
// packed per line ("line id" → serials).
func ship(t testing.TB, s *sale, serials map[string][]string) *shipment {
	t.Helper()
	sh := &shipment{id: fmt.Sprintf("s%d", len(s.shipments)+1), tracking: platformtest.ID("TRK")}
	ev := &fulfilmentv1.PackingEvidence{PhotoSha256: []string{sha256Hex()}}
	var lines []*fulfilmentv1.ShippedLine
	for _, l := range s.lines {
		lines = append(lines, &fulfilmentv1.ShippedLine{LineId: l.GetLineId(), SkuId: l.GetSkuId(), Quantity: l.GetQuantity()})
		for _, sn := range serials[l.GetLineId()] {
			ev.Units = append(ev.Units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), SerialNumber: sn})
		}
	}
	sh.eventID = emit(t, "fulfilment", "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentShipped{
		FulfilmentId: s.fulfilmentID, OrderId: s.orderID, VendorId: s.vendor, ShipmentId: sh.id, Carrier: "dhl",
		TrackingNumber: sh.tracking, Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: lines, Evidence: ev}},
		Lines: lines, FullyShipped: true, ShipTime: now(), ExpectedDeliveryTime: timestamppb.New(clk.Now().Add(3 * day))})
	s.shipments[sh.id] = sh
	return sh
}

// scan records a carrier scan of a shipment, now.
func scan(t testing.TB, s *sale, sh *shipment, st fulfilmentv1.TrackingStatus, proof *fulfilmentv1.ProofOfDelivery) string {
	t.Helper()
	id := emit(t, "fulfilment", "fulfilment-"+s.fulfilmentID, &fulfilmentv1.TrackingEventRecorded{
		FulfilmentId: s.fulfilmentID, ShipmentId: sh.id, Carrier: "dhl", TrackingNumber: sh.tracking,
		CarrierEventId: platformtest.ID("c"), Status: st, OccurTime: now(), Proof: proof, BuyerId: s.buyer})
	sh.scanIDs = append(sh.scanIDs, id)
	return id
}

// deliver scans the shipment DELIVERED (with proof or not) and records the
// fulfilment delivered; it returns the scan's and the delivery's event ids.
func deliver(t testing.TB, s *sale, sh *shipment, withProof bool) (string, string) {
	t.Helper()
	var proof *fulfilmentv1.ProofOfDelivery
	if withProof {
		proof = &fulfilmentv1.ProofOfDelivery{RecipientName: "A. Buyer", PhotoSha256: sha256Hex()}
	}
	scanID := scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, proof)
	id := emit(t, "fulfilment", "fulfilment-"+s.fulfilmentID, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: s.fulfilmentID,
		OrderId: s.orderID, VendorId: s.vendor, BuyerId: s.buyer, DeliverTime: now(), WithProof: withProof})
	return scanID, id
}

// openClaim opens, as s's buyer, a claim of reason on one unit of line
// "1" with evidence (nil: none) and returns it.
func openClaim(t testing.TB, s *sale, reason trustv1.ClaimReason, evidence *trustv1.Evidence) *trustv1.Claim {
	t.Helper()
	resp, err := as(t, "buyer:"+s.buyer).OpenClaim(t.Context(), &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID,
		Reason: reason, Lines: claimLines("1", 1), Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetClaim()
}

// photoEvidence is a claim's evidence: one photo.
func photoEvidence() *trustv1.Evidence { return &trustv1.Evidence{Sha256: []string{photo}} }

// delivered is a whole clean sale: confirmed, shipped, scanned, delivered
// with proof.
func delivered(t testing.TB, buyer, vendor string, serials map[string][]string, ls ...orderLine) *sale {
	t.Helper()
	s := confirm(t, buyer, vendor, ls...)
	sh := ship(t, s, serials)
	scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, nil)
	deliver(t, s, sh, true)
	return s
}
