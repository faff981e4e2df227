package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Command is a command to the fulfilment aggregate. Each command type
// carries its own decision (decide), so the compiler checks that every one
// has one.
type Command interface {
	decide(f Fulfilment) ([]proto.Message, error)
}

// RequestFulfilment opens the fulfilment of a vendor's part of a confirmed
// order.
type RequestFulfilment struct {
	OrderID  string
	VendorID string
	BuyerID  string
	Lines    []Line
	Address  *typev1.Address
	ShipBy   time.Time
	Time     time.Time
}

// ShipFulfilment records a shipment. ShipmentID must be the fulfilment's
// NextShipmentID (else ErrShipmentRace); Carrier and TrackingNumber are
// checked and normalised (CheckTracking), and the tracking number claimed,
// before. Packages name lines by line id or SKU id; Decide resolves them.
type ShipFulfilment struct {
	RequestID        string
	ShipmentID       string
	Carrier          string
	TrackingNumber   string
	Packages         []Package
	Time             time.Time
	ExpectedDelivery time.Time
}

// RecordScan records a carrier scan of the shipment using the tracking
// number. Now bounds how far in the future a scan may claim to be.
type RecordScan struct {
	Carrier        string
	TrackingNumber string
	Scan           Scan
	Now            time.Time
}

// ConfirmReceipt is the buyer's confirmation that the parcel arrived.
type ConfirmReceipt struct{ Time time.Time }

// MissShipBy fires the ship-by deadline Deadline at Now under Policy. A
// deadline that has moved, or a fulfilment that no longer waits for
// shipping, decides nothing.
type MissShipBy struct {
	Deadline time.Time
	Now      time.Time
	Policy   ShipByPolicy
}

// CancelFulfilment cancels a fulfilment that has not shipped.
type CancelFulfilment struct {
	Reason string
	Time   time.Time
}

// RemoveLines drops units the order cancelled before they shipped
// (OrderLinesCancelled). Units already shipped are not removed: a shipment
// is a fact. When nothing is left to ship and nothing has shipped, the
// fulfilment is closed (cancelled) and will not ship.
type RemoveLines struct {
	Lines  []Line // line id and units the order cancelled
	Reason string
	Time   time.Time
}

// ChangeAddress ships what has not shipped to a new address
// (OrderAddressChanged). Once a shipment left, the address stands.
type ChangeAddress struct {
	Address *typev1.Address
	Time    time.Time
}

// ShipByPolicy is what a missed ship-by deadline does.
type ShipByPolicy struct {
	// Grace > 0 grants one grace period of that length (ShipByDeadlineMissed
	// action "grace"); the next miss cancels. Zero cancels at the first
	// miss. A fulfilment that has partly shipped is never cancelled: the
	// miss is flagged (action "flag").
	Grace time.Duration
}

// Ship-by actions (ShipByDeadlineMissed.action).
const (
	ActionCancel = "cancel"
	ActionGrace  = "grace"
	ActionFlag   = "flag"
)

// ReasonShipByMissed is FulfilmentCancelled.reason when the ship-by policy
// cancels.
const ReasonShipByMissed = "ship-by deadline missed"

// MaxClockSkew is how far a carrier scan may lie in the future.
const MaxClockSkew = time.Hour

// Decide returns the events a command produces. Commands that find the
// fulfilment already where they would take it decide nothing; every command
// but RequestFulfilment needs a fulfilment that was requested.
func Decide(f Fulfilment, c Command) ([]proto.Message, error) {
	if _, request := c.(RequestFulfilment); !request && !f.Requested {
		return nil, ErrNotRequested
	}
	return c.decide(f)
}

func (c RequestFulfilment) decide(f Fulfilment) ([]proto.Message, error) {
	if f.Requested {
		return nil, nil // a redelivered OrderConfirmed: the fulfilment stands
	}
	var v Violations
	for field, s := range map[string]string{"order_id": c.OrderID, "vendor_id": c.VendorID, "buyer_id": c.BuyerID} {
		if s == "" {
			v.Add(field, "required")
		}
	}
	if len(c.Lines) == 0 {
		v.Add("lines", "the vendor's part has no lines")
	}
	for i, l := range c.Lines {
		if l.LineID == "" || l.Quantity <= 0 {
			v.Add(fmt.Sprintf("lines[%d]", i), "want a line id and a positive quantity, got %+v", l)
		}
	}
	if c.ShipBy.IsZero() {
		v.Add("ship_by_time", "required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []proto.Message{&fulfilmentv1.FulfilmentRequested{
		FulfilmentId: f.ID, OrderId: c.OrderID, VendorId: c.VendorID, BuyerId: c.BuyerID,
		Lines: LinesProto(c.Lines), ShippingAddress: c.Address,
		ShipByTime: timestamppb.New(c.ShipBy), RequestTime: timestamppb.New(c.Time),
	}}, nil
}

func (c ShipFulfilment) decide(f Fulfilment) ([]proto.Message, error) {
	if _, ok := f.ShipmentByRequest(c.RequestID); ok {
		return nil, nil // the same request again: its shipment stands
	}
	switch {
	case f.Cancelled:
		return nil, fault.Precondition(ReasonCancelled, "fulfilment %s is cancelled (%s); it may not ship", f.ID, f.CancelReason)
	case f.FullyShipped():
		return nil, fault.Precondition(ReasonShipped, "every line of fulfilment %s has shipped already", f.ID)
	case len(f.Shipments) >= MaxShipments:
		return nil, fault.Precondition(ReasonTooMany, "fulfilment %s has %d shipments, the most allowed", f.ID, MaxShipments)
	case c.ShipmentID != f.NextShipmentID():
		return nil, ErrShipmentRace
	}
	if i, ok := f.ShipmentByTracking(c.Carrier, c.TrackingNumber); ok {
		return nil, &TrackingInUseError{Carrier: c.Carrier, TrackingNumber: c.TrackingNumber, FulfilmentID: f.ID, ShipmentID: f.Shipments[i].ID, SameFulfilment: true}
	}
	pkgs, lines, v := CheckShipment(f, c.Packages)
	if err := v.Err(); err != nil {
		return nil, err
	}
	after := f
	after.Shipments = append(slices.Clip(f.Shipments), Shipment{Lines: lines})
	return []proto.Message{&fulfilmentv1.FulfilmentShipped{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, ShipmentId: c.ShipmentID,
		Carrier: c.Carrier, TrackingNumber: c.TrackingNumber, Packages: PackagesProto(pkgs), Lines: LinesProto(lines),
		FullyShipped: after.FullyShipped(), ShipTime: timestamppb.New(c.Time),
		ExpectedDeliveryTime: timestamppb.New(c.ExpectedDelivery), RequestId: c.RequestID,
	}}, nil
}

func (c RecordScan) decide(f Fulfilment) ([]proto.Message, error) {
	i, ok := f.ShipmentByTracking(c.Carrier, c.TrackingNumber)
	if !ok {
		return nil, ErrUnknownTracking
	}
	s := f.Shipments[i]
	if s.HasScan(c.Scan.CarrierEventID) {
		return nil, nil // a duplicate scan: the first one recorded stands
	}
	if err := CheckScan(c.Scan, c.Now).Err(); err != nil {
		return nil, err
	}
	if len(s.Scans) >= MaxScansPerParcel {
		return nil, fault.Precondition(ReasonHistoryFull, "shipment %s has %d scans, the most kept", s.ID, MaxScansPerParcel)
	}
	rec := &fulfilmentv1.TrackingEventRecorded{
		FulfilmentId: f.ID, ShipmentId: s.ID, Carrier: s.Carrier, TrackingNumber: s.TrackingNumber,
		CarrierEventId: c.Scan.CarrierEventID, Status: c.Scan.Status, OccurTime: timestamppb.New(c.Scan.OccurTime),
		Location: c.Scan.Location, Description: c.Scan.Description, Proof: ProofProto(c.Scan.Proof), BuyerId: f.BuyerID,
	}
	out := []proto.Message{rec}
	after := Evolve(f, rec)
	if was, now := s.Progress(), after.Shipments[i].Progress(); !was.Failed() && now.Failed() {
		out = append(out, &fulfilmentv1.DeliveryFailed{
			FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, ShipmentId: s.ID,
			Status: now.Failure.Status, CarrierEventId: now.Failure.CarrierEventID, FailTime: timestamppb.New(now.Failure.OccurTime),
		})
	}
	if _, was := f.Delivery(); !was {
		if d, now := after.Delivery(); now {
			out = append(out, deliveredEvent(f, d))
		}
	}
	return out, nil
}

func deliveredEvent(f Fulfilment, d Delivery) *fulfilmentv1.FulfilmentDelivered {
	return &fulfilmentv1.FulfilmentDelivered{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, BuyerId: f.BuyerID,
		DeliverTime: timestamppb.New(d.Time), WithProof: d.WithProof,
		CarrierEventIds: slices.Clone(d.CarrierEventIDs), ConfirmedByBuyer: d.ConfirmedByBuyer,
	}
}

func (c ConfirmReceipt) decide(f Fulfilment) ([]proto.Message, error) {
	switch {
	case !f.ReceiptTime.IsZero():
		return nil, nil
	case f.Cancelled:
		return nil, fault.Precondition(ReasonCancelled, "fulfilment %s is cancelled; there is nothing to receive", f.ID)
	case !f.FullyShipped():
		return nil, fault.Precondition(ReasonNotShipped, "fulfilment %s has not fully shipped yet (%s left); confirm receipt once everything has shipped", f.ID, describeLines(f.Unshipped()))
	}
	out := []proto.Message{&fulfilmentv1.ReceiptConfirmed{
		FulfilmentId: f.ID, OrderId: f.OrderID, BuyerId: f.BuyerID, ConfirmTime: timestamppb.New(c.Time),
	}}
	if _, delivered := f.Delivery(); !delivered {
		out = append(out, deliveredEvent(f, Delivery{Time: c.Time, WithProof: true, ConfirmedByBuyer: true}))
	}
	return out, nil
}

func (c MissShipBy) decide(f Fulfilment) ([]proto.Message, error) {
	if !f.DeadlinePending() || !f.ShipBy.Equal(c.Deadline) || c.Now.Before(f.ShipBy) {
		return nil, nil // shipped, cancelled, moved or not yet due
	}
	missed := &fulfilmentv1.ShipByDeadlineMissed{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, ShipByTime: timestamppb.New(f.ShipBy),
	}
	switch {
	case c.Policy.Grace > 0 && !f.GraceUsed:
		missed.Action, missed.GraceUntilTime = ActionGrace, timestamppb.New(f.ShipBy.Add(c.Policy.Grace))
		return []proto.Message{missed}, nil
	case len(f.Shipments) > 0:
		missed.Action = ActionFlag
		return []proto.Message{missed}, nil
	}
	missed.Action = ActionCancel
	return []proto.Message{missed, &fulfilmentv1.FulfilmentCancelled{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, Reason: ReasonShipByMissed, CancelTime: timestamppb.New(c.Now),
	}}, nil
}

func (c CancelFulfilment) decide(f Fulfilment) ([]proto.Message, error) {
	switch {
	case f.Cancelled:
		return nil, nil
	case len(f.Shipments) > 0:
		return nil, fault.Precondition(ReasonShipped, "fulfilment %s has shipped (%d shipments) and can no longer be cancelled", f.ID, len(f.Shipments))
	}
	return []proto.Message{&fulfilmentv1.FulfilmentCancelled{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, Reason: c.Reason, CancelTime: timestamppb.New(c.Time),
	}}, nil
}

func (c RemoveLines) decide(f Fulfilment) ([]proto.Message, error) {
	if f.Cancelled {
		return nil, nil // closed or cancelled before: nothing ships anyway
	}
	left := map[string]int64{}
	for _, l := range f.Unshipped() {
		left[l.LineID] = l.Quantity
	}
	var removed []Line
	for _, l := range c.Lines {
		n := min(l.Quantity, left[l.LineID])
		if n <= 0 {
			continue
		}
		left[l.LineID] -= n
		sku := l.SKUID
		if i := slices.IndexFunc(f.Lines, func(x Line) bool { return x.LineID == l.LineID }); i >= 0 {
			sku = f.Lines[i].SKUID
		}
		removed = append(removed, Line{LineID: l.LineID, SKUID: sku, Quantity: n})
	}
	if len(removed) == 0 {
		return nil, nil // shipped meanwhile, or removed before
	}
	e := &fulfilmentv1.FulfilmentLinesRemoved{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, Lines: LinesProto(removed),
		Reason: c.Reason, RemoveTime: timestamppb.New(c.Time),
	}
	after := Evolve(f, e)
	e.Closed = len(after.Lines) == 0
	return []proto.Message{e}, nil
}

func (c ChangeAddress) decide(f Fulfilment) ([]proto.Message, error) {
	switch {
	case f.Cancelled:
		return nil, fault.Precondition(ReasonCancelled, "fulfilment %s is cancelled; it ships nowhere", f.ID)
	case len(f.Shipments) > 0:
		return nil, fault.Precondition(ReasonShipped, "fulfilment %s has shipped to the address it had", f.ID)
	case proto.Equal(f.Address, c.Address):
		return nil, nil
	}
	return []proto.Message{&fulfilmentv1.FulfilmentAddressChanged{
		FulfilmentId: f.ID, OrderId: f.OrderID, VendorId: f.VendorID, ShippingAddress: c.Address, ChangeTime: timestamppb.New(c.Time),
		BuyerId: f.BuyerID,
	}}, nil
}

// Evolve applies one event. It never changes memory it shares with f (it
// copies the slices it changes), so states handed out stay as they were.
// Unknown events leave the fulfilment unchanged.
func Evolve(f Fulfilment, e proto.Message) Fulfilment {
	switch e := e.(type) {
	case *fulfilmentv1.FulfilmentRequested:
		f.Requested = true
		f.OrderID, f.VendorID, f.BuyerID = e.GetOrderId(), e.GetVendorId(), e.GetBuyerId()
		f.Lines = LinesFromProto(e.GetLines())
		f.Address = e.GetShippingAddress()
		f.ShipBy = e.GetShipByTime().AsTime()
		f.RequestTime = e.GetRequestTime().AsTime()
	case *fulfilmentv1.FulfilmentShipped:
		f.Shipments = append(slices.Clip(f.Shipments), Shipment{
			ID: e.GetShipmentId(), RequestID: e.GetRequestId(), Carrier: e.GetCarrier(), TrackingNumber: e.GetTrackingNumber(),
			Packages: PackagesFromProto(e.GetPackages()), Lines: LinesFromProto(e.GetLines()),
			ShipTime: e.GetShipTime().AsTime(), ExpectedDelivery: e.GetExpectedDeliveryTime().AsTime(),
		})
	case *fulfilmentv1.TrackingEventRecorded:
		i := slices.IndexFunc(f.Shipments, func(s Shipment) bool { return s.ID == e.GetShipmentId() })
		if i < 0 || f.Shipments[i].HasScan(e.GetCarrierEventId()) {
			return f
		}
		f.Shipments = slices.Clone(f.Shipments)
		f.Shipments[i].Scans = withScan(f.Shipments[i].Scans, ScanFromProto(e))
	case *fulfilmentv1.ReceiptConfirmed:
		f.ReceiptTime = e.GetConfirmTime().AsTime()
	case *fulfilmentv1.ShipByDeadlineMissed:
		f.ShipByMissed = true
		switch e.GetAction() {
		case ActionGrace:
			f.GraceUsed = true
			f.ShipBy = e.GetGraceUntilTime().AsTime()
		case ActionFlag:
			f.DeadlineClosed = true
		}
	case *fulfilmentv1.FulfilmentCancelled:
		f.Cancelled = true
		f.CancelReason, f.CancelTime = e.GetReason(), e.GetCancelTime().AsTime()
	case *fulfilmentv1.FulfilmentLinesRemoved:
		f.Lines = withoutUnits(f.Lines, LinesFromProto(e.GetLines()))
		if len(f.Lines) == 0 {
			f.Cancelled = true
			f.CancelReason, f.CancelTime = "order cancelled every line: "+e.GetReason(), e.GetRemoveTime().AsTime()
		}
	case *fulfilmentv1.FulfilmentAddressChanged:
		f.Address = e.GetShippingAddress()
	}
	// FulfilmentDelivered and DeliveryFailed change nothing: delivery is
	// derived from the scans and the receipt (Fulfilment.Delivery).
	return f
}

// withoutUnits is a copy of lines less removed's units per line id; a line
// with no unit left is dropped.
func withoutUnits(lines, removed []Line) []Line {
	out := make([]Line, 0, len(lines))
	for _, l := range lines {
		for _, r := range removed {
			if r.LineID == l.LineID {
				l.Quantity -= r.Quantity
			}
		}
		if l.Quantity > 0 {
			out = append(out, l)
		}
	}
	return out
}

func describeLines(lines []Line) string {
	parts := make([]string, 0, len(lines))
	for _, l := range lines {
		parts = append(parts, fmt.Sprintf("line %s × %d", l.LineID, l.Quantity))
	}
	return strings.Join(parts, ", ")
}
