package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Record is the custody record of one vendor's part of an order: the
// input of every automatic decision. Every fact carries the id of the
// event it comes from, so decisions can name what they relied on.
type Record struct {
	Order OrderFacts
	// Fulfilment is nil while the fulfilment service has not requested
	// the vendor's part (or has not run yet).
	Fulfilment *Fulfilment
}

// OrderFacts is what the order service recorded when it confirmed the
// order (and whether it was cancelled later).
type OrderFacts struct {
	OrderID string
	BuyerID string
	// Captured is the amount captured for the whole order.
	Captured         money.Money
	Lines            []OrderLine
	ConfirmedEventID string
	CancelledEventID string
	// LinesCancelledEventIDs are the OrderLinesCancelled folded (each
	// counts its units once).
	LinesCancelledEventIDs []string
}

// OrderLine is a priced order line.
type OrderLine struct {
	LineID    string
	SKUID     string
	VendorID  string
	Quantity  int64
	UnitPrice money.Money
	LineTotal money.Money
	// Cancelled is how many of its units were cancelled before shipping
	// (OrderLinesCancelled).
	Cancelled int64
}

// Line returns the order line with id lineID.
func (o OrderFacts) Line(lineID string) (OrderLine, bool) {
	for _, l := range o.Lines {
		if l.LineID == lineID {
			return l, true
		}
	}
	return OrderLine{}, false
}

// Fulfilment is one vendor's part of an order as the fulfilment service
// recorded it.
type Fulfilment struct {
	FulfilmentID     string
	OrderID          string
	VendorID         string
	BuyerID          string
	ShipBy           time.Time
	RequestedEventID string
	// MissedEventIDs are the ShipByDeadlineMissed events, in order.
	MissedEventIDs   []string
	CancelledEventID string
	Shipments        []Shipment
	// Delivery is set once every shipment is delivered or the buyer
	// confirmed receipt (FulfilmentDelivered).
	Delivery *Delivery
	// Receipt is the buyer's ReceiptConfirmed, if any.
	Receipt *Receipt
}

// Receipt is a ReceiptConfirmed: the buyer said the parcel arrived.
type Receipt struct {
	EventID string
	Time    time.Time
}

// Shipment is one FulfilmentShipped and what the carrier scanned since.
type Shipment struct {
	ShipmentID       string
	EventID          string // the FulfilmentShipped event
	Carrier          string
	TrackingNumber   string
	Lines            []ShippedLine
	Units            []PackedUnit
	Photos           int
	ShipTime         time.Time
	ExpectedDelivery time.Time
	// Scans in the order they were recorded (not necessarily occurred).
	Scans   []Scan
	Failure *Failure
}

// ShippedLine is a quantity of one order line in a shipment.
type ShippedLine struct {
	LineID   string
	Quantity int64
}

// PackedUnit is one physical unit the vendor recorded when packing.
type PackedUnit struct {
	LineID       string
	SerialNumber string
	LotNumber    string
}

// Scan is one carrier scan (TrackingEventRecorded).
type Scan struct {
	EventID        string
	CarrierEventID string
	Status         fulfilmentv1.TrackingStatus
	OccurTime      time.Time
	WithProof      bool
}

// Delivery is a FulfilmentDelivered.
type Delivery struct {
	EventID         string
	Time            time.Time
	WithProof       bool
	ByBuyer         bool
	CarrierEventIDs []string
}

// Failure is a DeliveryFailed (lost or returned to sender).
type Failure struct {
	EventID string
	Status  fulfilmentv1.TrackingStatus
	Time    time.Time
}

// carries reports whether the shipment holds units of lineID.
func (s Shipment) carries(lineID string) bool {
	return slices.ContainsFunc(s.Lines, func(l ShippedLine) bool { return l.LineID == lineID && l.Quantity > 0 })
}

// deliveredScans are the shipment's DELIVERED scans.
func (s Shipment) deliveredScans() []Scan {
	var out []Scan
	for _, sc := range s.Scans {
		if sc.Status == fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED {
			out = append(out, sc)
		}
	}
	return out
}

func (s Shipment) scanIDs() []string {
	ids := make([]string, 0, len(s.Scans))
	for _, sc := range s.Scans {
		ids = append(ids, sc.EventID)
	}
	return ids
}

// Clone deep-copies a record.
func (r Record) Clone() Record {
	c := r
	c.Order.Lines = slices.Clone(r.Order.Lines)
	c.Order.LinesCancelledEventIDs = slices.Clone(r.Order.LinesCancelledEventIDs)
	if r.Fulfilment != nil {
		f := r.Fulfilment.clone()
		c.Fulfilment = &f
	}
	return c
}

func (f Fulfilment) clone() Fulfilment {
	c := f
	c.MissedEventIDs = slices.Clone(f.MissedEventIDs)
	c.Shipments = make([]Shipment, len(f.Shipments))
	for i, s := range f.Shipments {
		s.Lines = slices.Clone(s.Lines)
		s.Units = slices.Clone(s.Units)
		s.Scans = slices.Clone(s.Scans)
		if s.Failure != nil {
			fl := *s.Failure
			s.Failure = &fl
		}
		c.Shipments[i] = s
	}
	if f.Shipments == nil {
		c.Shipments = nil
	}
	if f.Delivery != nil {
		d := *f.Delivery
		d.CarrierEventIDs = slices.Clone(f.Delivery.CarrierEventIDs)
		c.Delivery = &d
	}
	if f.Receipt != nil {
		r := *f.Receipt
		c.Receipt = &r
	}
	return c
}

// Records is the custody record of every order: the fold of the order and
// fulfilment services' events. It is not safe for concurrent use (the app
// layer guards it).
type Records struct {
	orders      map[string]*OrderFacts
	fulfilments map[string]*Fulfilment
	// byPart maps order id + "/" + vendor id to the fulfilment id.
	byPart map[string]string
}

// NewRecords returns an empty fold.
func NewRecords() *Records {
	return &Records{orders: map[string]*OrderFacts{}, fulfilments: map[string]*Fulfilment{}, byPart: map[string]string{}}
}

// Order returns what is known of an order.
func (rs *Records) Order(orderID string) (OrderFacts, bool) {
	o, ok := rs.orders[orderID]
	if !ok {
		return OrderFacts{}, false
	}
	c := *o
	c.Lines = slices.Clone(o.Lines)
	c.LinesCancelledEventIDs = slices.Clone(o.LinesCancelledEventIDs)
	return c, true
}

// Record returns a copy of the record of vendorID's part of orderID.
func (rs *Records) Record(orderID, vendorID string) (Record, bool) {
	o, ok := rs.Order(orderID)
	if !ok {
		return Record{}, false
	}
	r := Record{Order: o}
	if f, ok := rs.fulfilments[rs.byPart[orderID+"/"+vendorID]]; ok {
		c := f.clone()
		r.Fulfilment = &c
	}
	return r, true
}

// Fulfilment returns a copy of a fulfilment.
func (rs *Records) Fulfilment(id string) (Fulfilment, bool) {
	f, ok := rs.fulfilments[id]
	if !ok {
		return Fulfilment{}, false
	}
	return f.clone(), true
}

func (f *Fulfilment) shipment(id string) *Shipment {
	for i := range f.Shipments {
		if f.Shipments[i].ShipmentID == id {
			return &f.Shipments[i]
		}
	}
	return nil
}

// Clone deep-copies a fulfilment.
func (f Fulfilment) Clone() Fulfilment { return f.clone() }

// Apply folds one upstream event (eventID is its store id). Events of
// other types are ignored; a fact seen twice (the same event id) is kept
// once.
func (rs *Records) Apply(eventID string, e proto.Message) {
	if id, ok := OrderIDOf(e); ok {
		var prev OrderFacts
		p, found := rs.orders[id]
		if found {
			prev = *p
		}
		o := FoldOrder(prev, found, eventID, e)
		rs.orders[id] = &o
		return
	}
	id, create, ok := FulfilmentOf(e)
	if !ok {
		return
	}
	f, found := rs.fulfilments[id]
	if !found {
		if !create {
			return
		}
		f = &Fulfilment{FulfilmentID: id}
		rs.fulfilments[id] = f
	}
	if f.Fold(eventID, e) {
		rs.byPart[f.OrderID+"/"+f.VendorID] = f.FulfilmentID
	}
}

// The fold one record at a time, for a custody record kept elsewhere than
// in Records (the trust service's store): OrderIDOf and FoldOrder for the
// order events, FulfilmentOf, Fold and FulfilmentFactsOf for the
// fulfilment events. Records.Apply is made of them.

// OrderIDOf is the order an order event of the record is about; ok false
// for any other event.
func OrderIDOf(e proto.Message) (string, bool) {
	switch e := e.(type) {
	case *orderv1.OrderConfirmed:
		return e.GetOrderId(), true
	case *orderv1.OrderCancelled:
		return e.GetOrderId(), true
	case *orderv1.OrderLinesCancelled:
		return e.GetOrderId(), true
	}
	return "", false
}

// FoldOrder folds an order event (OrderIDOf) into what was known of its
// order (found false: nothing) and returns what is known after it. It
// never changes memory prev shares.
func FoldOrder(prev OrderFacts, found bool, eventID string, e proto.Message) OrderFacts {
	switch e := e.(type) {
	case *orderv1.OrderConfirmed:
		o := OrderFacts{OrderID: e.GetOrderId(), BuyerID: e.GetBuyerId(), Captured: moneyFrom(e.GetTotal()), ConfirmedEventID: eventID}
		if found {
			o.CancelledEventID = prev.CancelledEventID
		}
		for _, l := range e.GetLines() {
			o.Lines = append(o.Lines, OrderLine{LineID: l.GetLineId(), SKUID: l.GetSkuId(), VendorID: l.GetVendorId(),
				Quantity: l.GetQuantity(), UnitPrice: moneyFrom(l.GetUnitPrice()), LineTotal: moneyFrom(l.GetLineTotal())})
		}
		return o
	case *orderv1.OrderCancelled:
		if !found {
			prev = OrderFacts{OrderID: e.GetOrderId()}
		}
		prev.CancelledEventID = eventID
		return prev
	case *orderv1.OrderLinesCancelled:
		if !found || slices.Contains(prev.LinesCancelledEventIDs, eventID) {
			return prev // the order stream is in order: its confirmation came first
		}
		prev.Lines = slices.Clone(prev.Lines)
		prev.LinesCancelledEventIDs = append(slices.Clone(prev.LinesCancelledEventIDs), eventID)
		for _, cl := range e.GetLines() {
			if i := slices.IndexFunc(prev.Lines, func(l OrderLine) bool { return l.LineID == cl.GetLineId() }); i >= 0 {
				prev.Lines[i].Cancelled = min(prev.Lines[i].Quantity, prev.Lines[i].Cancelled+max(cl.GetQuantity(), 0))
			}
		}
		return prev
	}
	return prev
}

// FulfilmentOf is the fulfilment a fulfilment event of the record is
// about; create says whether the event starts a record of it when there is
// none (a scan of an unknown fulfilment does not); ok false for any other
// event.
func FulfilmentOf(e proto.Message) (id string, create, ok bool) {
	switch e := e.(type) {
	case *fulfilmentv1.FulfilmentRequested:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.FulfilmentShipped:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.TrackingEventRecorded:
		return e.GetFulfilmentId(), false, true
	case *fulfilmentv1.FulfilmentDelivered:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.DeliveryFailed:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.ShipByDeadlineMissed:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.FulfilmentCancelled:
		return e.GetFulfilmentId(), true, true
	case *fulfilmentv1.ReceiptConfirmed:
		return e.GetFulfilmentId(), true, true
	}
	return "", false, false
}

// Fold folds a fulfilment event (FulfilmentOf) into f, in place: f must
// not share memory with a record anyone else reads (Clone it first). part
// reports that the event named f's order and vendor: f is the record of
// that part of the order from now on.
func (f *Fulfilment) Fold(eventID string, e proto.Message) (part bool) {
	switch e := e.(type) {
	case *fulfilmentv1.FulfilmentRequested:
		f.OrderID, f.VendorID, f.BuyerID = e.GetOrderId(), e.GetVendorId(), e.GetBuyerId()
		f.ShipBy, f.RequestedEventID = timeOf(e.GetShipByTime()), eventID
		return true
	case *fulfilmentv1.FulfilmentShipped:
		if f.OrderID == "" {
			f.OrderID, f.VendorID = e.GetOrderId(), e.GetVendorId()
			part = true
		}
		if f.shipment(e.GetShipmentId()) != nil {
			return part
		}
		s := Shipment{ShipmentID: e.GetShipmentId(), EventID: eventID, Carrier: e.GetCarrier(), TrackingNumber: e.GetTrackingNumber(),
			ShipTime: timeOf(e.GetShipTime()), ExpectedDelivery: timeOf(e.GetExpectedDeliveryTime())}
		for _, l := range e.GetLines() {
			s.Lines = append(s.Lines, ShippedLine{LineID: l.GetLineId(), Quantity: l.GetQuantity()})
		}
		for _, p := range e.GetPackages() {
			s.Photos += len(p.GetEvidence().GetPhotoSha256())
			for _, u := range p.GetEvidence().GetUnits() {
				s.Units = append(s.Units, PackedUnit{LineID: u.GetLineId(), SerialNumber: u.GetSerialNumber(), LotNumber: u.GetLotNumber()})
			}
		}
		f.Shipments = append(f.Shipments, s)
		return part
	case *fulfilmentv1.TrackingEventRecorded:
		s := f.shipment(e.GetShipmentId())
		if s == nil || slices.ContainsFunc(s.Scans, func(sc Scan) bool { return sc.EventID == eventID }) {
			return false
		}
		p := e.GetProof()
		s.Scans = append(s.Scans, Scan{EventID: eventID, CarrierEventID: e.GetCarrierEventId(), Status: e.GetStatus(),
			OccurTime: timeOf(e.GetOccurTime()),
			WithProof: p != nil && (p.GetSignatureSha256() != "" || p.GetPhotoSha256() != "" || p.GetRecipientName() != "")})
	case *fulfilmentv1.FulfilmentDelivered:
		if f.Delivery == nil {
			f.Delivery = &Delivery{EventID: eventID, Time: timeOf(e.GetDeliverTime()), WithProof: e.GetWithProof(),
				ByBuyer: e.GetConfirmedByBuyer(), CarrierEventIDs: slices.Clone(e.GetCarrierEventIds())}
		}
	case *fulfilmentv1.DeliveryFailed:
		if s := f.shipment(e.GetShipmentId()); s != nil && s.Failure == nil {
			s.Failure = &Failure{EventID: eventID, Status: e.GetStatus(), Time: timeOf(e.GetFailTime())}
		}
	case *fulfilmentv1.ShipByDeadlineMissed:
		if !slices.Contains(f.MissedEventIDs, eventID) {
			f.MissedEventIDs = append(f.MissedEventIDs, eventID)
		}
	case *fulfilmentv1.FulfilmentCancelled:
		f.CancelledEventID = eventID
	case *fulfilmentv1.ReceiptConfirmed:
		if f.Receipt == nil {
			f.Receipt = &Receipt{EventID: eventID, Time: timeOf(e.GetConfirmTime())}
		}
	}
	return false
}

// FulfilmentFacts is what one fulfilment event adds to its vendor's trust
// counts. It must be called after Apply(eventID, e) and gives the same
// answer however many later events were applied since: "first scan of a
// shipment" and "first missed deadline" are decided by event identity,
// not by how much of the record exists.
func (rs *Records) FulfilmentFacts(eventID string, e proto.Message) (vendorID string, delta Counts, ok bool) {
	id, _, _ := FulfilmentOf(e)
	return FulfilmentFactsOf(rs.fulfilments[id], eventID, e)
}

// FulfilmentFactsOf is Records.FulfilmentFacts from the record of the
// event's fulfilment after the event was folded (nil: none is held).
func FulfilmentFactsOf(f *Fulfilment, eventID string, e proto.Message) (vendorID string, delta Counts, ok bool) {
	switch e := e.(type) {
	case *fulfilmentv1.FulfilmentRequested:
		return e.GetVendorId(), Counts{Fulfilments: 1}, true
	case *fulfilmentv1.FulfilmentShipped:
		delta = Counts{Shipments: 1}
		if f != nil && e.GetFullyShipped() && !f.ShipBy.IsZero() && !timeOf(e.GetShipTime()).After(f.ShipBy) {
			delta.ShippedOnTime = 1
		}
		return e.GetVendorId(), delta, true
	case *fulfilmentv1.TrackingEventRecorded:
		if f == nil || f.VendorID == "" {
			return "", Counts{}, false
		}
		s := f.shipment(e.GetShipmentId())
		if s == nil || len(s.Scans) == 0 || s.Scans[0].EventID != eventID || s.TrackingNumber == "" {
			return "", Counts{}, false
		}
		return f.VendorID, Counts{TrackedShipments: 1}, true
	case *fulfilmentv1.FulfilmentDelivered:
		return e.GetVendorId(), Counts{Delivered: 1}, true
	case *fulfilmentv1.DeliveryFailed:
		return e.GetVendorId(), Counts{DeliveryFailures: 1}, true
	case *fulfilmentv1.ShipByDeadlineMissed:
		if f == nil || len(f.MissedEventIDs) == 0 || f.MissedEventIDs[0] != eventID {
			return "", Counts{}, false
		}
		return e.GetVendorId(), Counts{DeadlinesMissed: 1}, true
	}
	return "", Counts{}, false
}

// timeOf reads a stored timestamp; unset is the zero time.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// moneyFrom reads stored money without validating it again: folds must be
// total, and what was stored was valid when decided.
func moneyFrom(m *typev1.Money) money.Money {
	return money.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}
