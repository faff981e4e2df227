// Package story is test data for the audit service: one order's life told
// as the events every service would store for it — placed, reserved,
// confirmed and captured into escrow, fulfilment requested, shipped,
// scanned in transit, delivered with proof (money to the return window),
// then a damage claim that puts the vendor's share on hold — with the
// times they were recorded at. Domain tests write it into memory stores,
// the service tests into real JetStream stores.
package story

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	fulfilment "github.com/custody/custody/services/fulfilment/domain"
)

// Moments of the story, as offsets from T0.
const (
	Placed    = time.Minute
	Confirmed = 2 * time.Minute
	Requested = 3 * time.Minute
	Shipped   = time.Hour
	InTransit = 2 * time.Hour
	Delivered = 48 * time.Hour
	Claimed   = 72 * time.Hour
	// BetweenShippingAndDelivery is a moment when the parcel is on its way.
	BetweenShippingAndDelivery = 24 * time.Hour
)

// Amounts (EUR minor units): two units at 25.00, a 10% platform fee.
const (
	Total       = 5000
	Fee         = 500
	VendorShare = Total - Fee
	Claim       = 2500
)

// Recipient is the name on the proof of delivery; it appears in exactly
// one stored event (the DELIVERED scan), so a test can edit it there.
const Recipient = "Grace Hopper"

// ProofOfDelivery is the event of stored (a fulfilment stream as read
// back) that names the Recipient: the one tamper tests edit.
func ProofOfDelivery(stored []eventstore.RecordedEvent) (eventstore.RecordedEvent, bool) {
	for _, e := range stored {
		if bytes.Contains(e.Data, []byte(Recipient)) {
			return e, true
		}
	}
	return eventstore.RecordedEvent{}, false
}

// Event is one event a service stores.
type Event struct {
	Service string
	Stream  string
	At      time.Duration // recorded at T0 + At
	Actor   string
	Payload proto.Message
}

// Story is one order's events.
type Story struct {
	T0                                             time.Time
	OrderID, BuyerID, VendorID, ProductID, SKUID   string
	FulfilmentID, ClaimID, Carrier, TrackingNumber string
	Events                                         []Event
}

// New tells the story of order orderID (ids of everything else are
// derived from it, so stories of different orders never meet — except in
// the product stream, which every story of the same vendor shares).
func New(t0 time.Time, orderID string) Story {
	s := Story{T0: t0, OrderID: orderID, BuyerID: "b-" + orderID, VendorID: "v-" + orderID, ProductID: "p-" + orderID,
		Carrier: "dhl", TrackingNumber: "T" + orderID}
	s.SKUID = s.ProductID + "-a"
	s.FulfilmentID = fulfilment.FulfilmentID(s.OrderID, s.VendorID)
	s.ClaimID = s.OrderID + "_c1"
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	eur := func(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }
	addr := &typev1.Address{RecipientName: "Ada Lovelace", AddressLines: []string{"Unter den Linden 1"}, Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
	line := &orderv1.OrderLine{LineId: "1", SkuId: s.SKUID, ProductId: s.ProductID, VendorId: s.VendorID, Title: "Teapot",
		Quantity: 2, UnitPrice: eur(Total / 2), LineTotal: eur(Total)}
	part := &orderv1.VendorPart{VendorId: s.VendorID, LineIds: []string{"1"}, Subtotal: eur(Total)}
	payment := &orderv1.Payment{PspReference: "psp-" + orderID, Amount: eur(Total)}
	shipped := []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: s.SKUID, Quantity: 2}}
	stock := []*catalogv1.StockLine{{SkuId: s.SKUID, Quantity: 2}}
	order, product, reservation := "order-"+orderID, "product-"+s.ProductID, "reservation-"+orderID
	ful, tracking := "fulfilment-"+s.FulfilmentID, "tracking-"+s.Carrier+"_"+s.TrackingNumber
	ledger, claims := "orderledger-"+orderID, "claims-"+orderID
	const (
		cat, ord, fs, tr, po = "catalog", "order", "fulfilment", "trust", "payouts"
		buyer, vendor        = "buyer:", "vendor:"
	)

	s.Events = []Event{
		{cat, product, 0, vendor + s.VendorID, &catalogv1.ProductCreated{ProductId: s.ProductID, VendorId: s.VendorID, Title: "Teapot", CreateTime: at(0),
			Skus: []*catalogv1.SkuCreated{{SkuId: s.SKUID, Code: "a", Title: "Teapot", Price: eur(Total / 2), InitialStock: 10}}}},
		{ord, order, Placed, buyer + s.BuyerID, &orderv1.OrderPlaced{OrderId: orderID, BuyerId: s.BuyerID, Lines: []*orderv1.OrderLine{line},
			Parts: []*orderv1.VendorPart{part}, Total: eur(Total), ShippingAddress: addr, Payment: payment, PlaceTime: at(Placed)}},
		{cat, product, Placed, "service:catalog", &catalogv1.StockHeld{ProductId: s.ProductID, OrderId: orderID, Lines: stock}},
		{cat, reservation, Placed, "service:catalog", &catalogv1.StockReserved{OrderId: orderID, Lines: stock, ReserveTime: at(Placed)}},
		{ord, order, Confirmed, "service:order", &orderv1.OrderConfirmed{OrderId: orderID, BuyerId: s.BuyerID, Parts: []*orderv1.VendorPart{part},
			Lines: []*orderv1.OrderLine{line}, Total: eur(Total), Payment: payment, ShippingAddress: addr, ConfirmTime: at(Confirmed)}},
		{po, ledger, Confirmed, "service:payouts", &payoutsv1.FundsEscrowed{OrderId: orderID, BuyerId: s.BuyerID, Total: eur(Total),
			PspReference: payment.PspReference, CaptureTime: at(Confirmed), EscrowTime: at(Confirmed),
			Parts: []*payoutsv1.PartSplit{{VendorId: s.VendorID, Subtotal: eur(Total), Commission: eur(0), Fee: eur(Fee), VendorShare: eur(VendorShare),
				Lines: []*payoutsv1.LineSplit{{LineId: "1", LineTotal: eur(Total), Commission: eur(0), FeeBps: 1000, Fee: eur(Fee), VendorShare: eur(VendorShare)}}}}}},
		{po, ledger, Confirmed, "service:payouts", txn(orderID, s.VendorID, payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE, at(Confirmed),
			posting("buyers:payments", -Total), posting("vendor:"+s.VendorID+":escrow", Total))},
		{fs, ful, Requested, "service:fulfilment", &fulfilmentv1.FulfilmentRequested{FulfilmentId: s.FulfilmentID, OrderId: orderID, VendorId: s.VendorID,
			BuyerId: s.BuyerID, Lines: shipped, ShippingAddress: addr, ShipByTime: at(Requested + 72*time.Hour), RequestTime: at(Requested)}},
		{fs, tracking, Shipped, vendor + s.VendorID, &fulfilmentv1.TrackingNumberClaimed{Carrier: s.Carrier, TrackingNumber: s.TrackingNumber,
			FulfilmentId: s.FulfilmentID, ShipmentId: "s1", VendorId: s.VendorID, OrderId: orderID}},
		{fs, ful, Shipped, vendor + s.VendorID, &fulfilmentv1.FulfilmentShipped{FulfilmentId: s.FulfilmentID, OrderId: orderID, VendorId: s.VendorID,
			ShipmentId: "s1", Carrier: s.Carrier, TrackingNumber: s.TrackingNumber, Lines: shipped, FullyShipped: true,
			Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: shipped, Evidence: &fulfilmentv1.PackingEvidence{
				Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SkuId: s.SKUID, SerialNumber: "SN-1"}, {LineId: "1", SkuId: s.SKUID, SerialNumber: "SN-2"}}}}},
			ShipTime: at(Shipped), ExpectedDeliveryTime: at(Delivered), RequestId: "ship-" + orderID}},
		{ord, order, Shipped, "service:order", &orderv1.OrderPartShipped{OrderId: orderID, VendorId: s.VendorID, ShipmentId: "s1", ShipTime: at(Shipped)}},
		{cat, product, Shipped, "service:catalog", &catalogv1.StockSold{ProductId: s.ProductID, OrderId: orderID, Lines: stock, ShipmentId: "s1"}},
		{fs, ful, InTransit, "carrier:" + s.Carrier, &fulfilmentv1.TrackingEventRecorded{FulfilmentId: s.FulfilmentID, ShipmentId: "s1", Carrier: s.Carrier,
			TrackingNumber: s.TrackingNumber, CarrierEventId: "scan-1", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT,
			OccurTime: at(InTransit), Location: "Leipzig hub", BuyerId: s.BuyerID}},
		{fs, ful, Delivered, "carrier:" + s.Carrier, &fulfilmentv1.TrackingEventRecorded{FulfilmentId: s.FulfilmentID, ShipmentId: "s1", Carrier: s.Carrier,
			TrackingNumber: s.TrackingNumber, CarrierEventId: "scan-2", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED,
			OccurTime: at(Delivered), Location: "Berlin", Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: Recipient, SignatureSha256: "ab12"}, BuyerId: s.BuyerID}},
		{fs, ful, Delivered, "carrier:" + s.Carrier, &fulfilmentv1.FulfilmentDelivered{FulfilmentId: s.FulfilmentID, OrderId: orderID, VendorId: s.VendorID,
			BuyerId: s.BuyerID, DeliverTime: at(Delivered), WithProof: true, CarrierEventIds: []string{"scan-2"}}},
		{ord, order, Delivered, "service:order", &orderv1.OrderPartDelivered{OrderId: orderID, VendorId: s.VendorID, FulfilmentId: s.FulfilmentID,
			WithProof: true, DeliverTime: at(Delivered)}},
		{ord, order, Delivered, "service:order", &orderv1.OrderDelivered{OrderId: orderID, DeliverTime: at(Delivered)}},
		{po, ledger, Delivered, "service:payouts", &payoutsv1.ReturnWindowStarted{OrderId: orderID, VendorId: s.VendorID, FulfilmentId: s.FulfilmentID,
			DeliverTime: at(Delivered), CloseTime: at(Delivered + 14*24*time.Hour), Tier: "standard"}},
		{po, ledger, Delivered, "service:payouts", txn(orderID, s.VendorID, payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY, at(Delivered),
			posting("vendor:"+s.VendorID+":escrow", -Total), posting("vendor:"+s.VendorID+":pending", VendorShare), posting("platform:pending", Fee))},
		{tr, claims, Claimed, buyer + s.BuyerID, &trustv1.ClaimOpened{ClaimId: s.ClaimID, OrderId: orderID, FulfilmentId: s.FulfilmentID,
			VendorId: s.VendorID, BuyerId: s.BuyerID, Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
			Lines:         []*trustv1.ClaimLine{{LineId: "1", SkuId: s.SKUID, Quantity: 1, Amount: eur(Claim)}},
			ClaimedAmount: eur(Claim), OpenTime: at(Claimed), RespondByTime: at(Claimed + 48*time.Hour), OrderCaptured: eur(Total)}},
		{po, ledger, Claimed, "service:payouts", &payoutsv1.ClaimHoldPlaced{OrderId: orderID, VendorId: s.VendorID, ClaimId: s.ClaimID,
			ClaimedAmount: eur(Claim), HeldAmount: eur(VendorShare), HoldTime: at(Claimed)}},
		{po, ledger, Claimed, "service:payouts", txn(orderID, s.VendorID, payoutsv1.TransactionKind_TRANSACTION_KIND_HOLD, at(Claimed),
			posting("vendor:"+s.VendorID+":pending", -VendorShare), posting("vendor:"+s.VendorID+":held", VendorShare))},
	}
	return s
}

func txn(orderID, vendorID string, kind payoutsv1.TransactionKind, at *timestamppb.Timestamp, postings ...*payoutsv1.Posting) *payoutsv1.TransactionPosted {
	return &payoutsv1.TransactionPosted{TransactionId: es.DeriveID("txn", orderID, kind.String()), Kind: kind, OrderId: orderID,
		VendorId: vendorID, Postings: postings, PostTime: at}
}

func posting(account string, minor int64) *payoutsv1.Posting {
	return &payoutsv1.Posting{Account: account, Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor}}
}

// Until is the story's events recorded up to (and including) T0 + d.
func (s Story) Until(d time.Duration) []Event {
	var out []Event
	for _, e := range s.Events {
		if e.At <= d {
			out = append(out, e)
		}
	}
	return out
}

// OfOrder counts the events of the order (all but ProductCreated).
func (s Story) OfOrder() int { return len(s.Events) - 1 }

// Clock is a settable clock (clock.Fake) that stamps the stores' events.
type Clock interface{ Set(time.Time) }

// Write appends events to the services' stores, as the services would:
// consecutive events of one stream at one moment are one append (one
// command). The clock is set to each event's moment first.
func (s Story) Write(ctx context.Context, stores map[string]eventstore.Store, clk Clock, events []Event) error {
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].Service == events[i].Service && events[j].Stream == events[i].Stream && events[j].At == events[i].At {
			j++
		}
		var batch []eventstore.EventData
		for _, e := range events[i:j] {
			ed, err := es.Encode(e.Payload)
			if err != nil {
				return err
			}
			ed.ID = es.DeriveID("story", s.OrderID, e.Service, e.Stream, fmt.Sprint(e.At), ed.Type)
			ed.Metadata = eventstore.Metadata{CorrelationID: "corr-" + s.OrderID, CausationID: "cmd-" + ed.ID[:8], Actor: e.Actor}
			batch = append(batch, ed)
		}
		st, ok := stores[events[i].Service]
		if !ok {
			return fmt.Errorf("no store for %s", events[i].Service)
		}
		clk.Set(s.T0.Add(events[i].At))
		if _, err := st.Append(ctx, events[i].Stream, eventstore.Any, batch); err != nil {
			return fmt.Errorf("append to %s/%s: %w", events[i].Service, events[i].Stream, err)
		}
		i = j
	}
	return nil
}
