// Package domain is the fulfilment service's model, as pure functions over
// plain data: no clock, no I/O, no transport or storage.
//
// Two aggregates:
//
//   - Fulfilment (stream "fulfilment-<id>"): one vendor's part of one
//     confirmed order. Commands RequestFulfilment, ShipFulfilment,
//     RecordScan, ConfirmReceipt, MissShipBy and CancelFulfilment decide
//     FulfilmentRequested, FulfilmentShipped, TrackingEventRecorded,
//     DeliveryFailed, FulfilmentDelivered, ReceiptConfirmed,
//     ShipByDeadlineMissed and FulfilmentCancelled.
//   - Tracking (stream "tracking-<carrier>_<number>"): a carrier's tracking
//     number, claimed by exactly one shipment (TrackingNumberClaimed). It
//     makes tracking numbers unique per carrier and routes carrier scans to
//     their fulfilment.
//
// The delivery state of a fulfilment is a pure function of the set of its
// scans: scans are deduplicated by carrier_event_id and kept sorted by
// occur time, and every status (Shipment.Progress, Fulfilment.Status,
// Fulfilment.Delivery) is derived from that set, never from the order the
// scans arrived in. That is why any permutation of the same scans, with
// duplicates, ends in the same state (see the property test).
//
// Bad input comes back as *InvalidError with AIP-style field paths, a
// forbidden transition as *PreconditionError (both pkg/fault's, shared by
// every service and mapped once at the edge), a tracking number used twice
// as *TrackingInUseError.
package domain

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// TrackingStatus is a normalised carrier scan status (the event contract's
// enum).
type TrackingStatus = fulfilmentv1.TrackingStatus

// Tracking statuses.
const (
	InfoReceived      = fulfilmentv1.TrackingStatus_TRACKING_STATUS_INFO_RECEIVED
	PickedUp          = fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP
	InTransit         = fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT
	OutForDelivery    = fulfilmentv1.TrackingStatus_TRACKING_STATUS_OUT_FOR_DELIVERY
	DeliveryAttempted = fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERY_ATTEMPTED
	Delivered         = fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED
	Exception         = fulfilmentv1.TrackingStatus_TRACKING_STATUS_EXCEPTION
	ReturnedToSender  = fulfilmentv1.TrackingStatus_TRACKING_STATUS_RETURNED_TO_SENDER
	Lost              = fulfilmentv1.TrackingStatus_TRACKING_STATUS_LOST
)

// KnownStatus reports whether s is one of the nine normalised statuses.
func KnownStatus(s TrackingStatus) bool { return s >= InfoReceived && s <= Lost }

// Limits.
const (
	MaxPackages       = 50
	MaxShipments      = 100
	MaxScansPerParcel = 1000
	MaxPhotos         = 20
	MaxText           = 256
)

// Status is where a fulfilment is in its life.
type Status int

// Statuses. StatusNone is a fulfilment that was never requested.
const (
	StatusNone Status = iota
	StatusRequested
	StatusPartiallyShipped
	StatusShipped
	StatusDelivered
	StatusDeliveryFailed
	StatusCancelled
)

func (s Status) String() string {
	switch s {
	case StatusRequested:
		return "requested"
	case StatusPartiallyShipped:
		return "partially shipped"
	case StatusShipped:
		return "shipped"
	case StatusDelivered:
		return "delivered"
	case StatusDeliveryFailed:
		return "delivery failed"
	case StatusCancelled:
		return "cancelled"
	}
	return "none"
}

// Line is a quantity of one order line.
type Line struct {
	LineID   string
	SKUID    string
	Quantity int64
}

// Unit is one physical unit packed.
type Unit struct {
	LineID string
	SKUID  string
	Serial string
	Lot    string
}

// Package is one box of a shipment.
type Package struct {
	PackageID string
	Lines     []Line
	// Photos are SHA-256 hashes (lower-case hex) of packing photos.
	Photos []string
	Units  []Unit
}

// Proof is proof of delivery.
type Proof struct {
	RecipientName   string
	SignatureSHA256 string
	PhotoSHA256     string
	Location        string
}

// Scan is one carrier scan.
type Scan struct {
	CarrierEventID string
	Status         TrackingStatus
	OccurTime      time.Time
	Location       string
	Description    string
	Proof          *Proof
}

// compare orders scans: by occur time, then status (the lifecycle order of
// the enum), then carrier event id, so the order is total and independent
// of arrival.
func (a Scan) compare(b Scan) int {
	return cmp.Or(a.OccurTime.Compare(b.OccurTime), cmp.Compare(a.Status, b.Status), cmp.Compare(a.CarrierEventID, b.CarrierEventID))
}

// Shipment is one hand-over to a carrier.
type Shipment struct {
	ID               string
	RequestID        string
	Carrier          string
	TrackingNumber   string
	Packages         []Package
	Lines            []Line
	ShipTime         time.Time
	ExpectedDelivery time.Time
	// Scans are deduplicated by CarrierEventID and sorted (Scan.compare).
	Scans []Scan
}

// HasScan reports whether the scan carrierEventID is recorded.
func (s Shipment) HasScan(carrierEventID string) bool {
	return slices.ContainsFunc(s.Scans, func(sc Scan) bool { return sc.CarrierEventID == carrierEventID })
}

// withScan returns the scans with sc inserted in order.
func withScan(scans []Scan, sc Scan) []Scan {
	i, _ := slices.BinarySearchFunc(scans, sc, Scan.compare)
	return slices.Insert(slices.Clip(scans), i, sc)
}

// Progress is what a shipment's scans say, derived from the set of scans
// only.
type Progress struct {
	// Status: DELIVERED once any DELIVERED scan exists (DELIVERED is
	// terminal: a LOST, RETURNED_TO_SENDER or IN_TRANSIT scan, earlier or
	// later, never undoes it); else LOST or RETURNED_TO_SENDER once such a
	// scan exists (the earliest of them); else the status of the latest
	// scan; UNSPECIFIED without scans.
	Status TrackingStatus
	// Delivery is the earliest DELIVERED scan.
	Delivery *Scan
	// Proof is the proof of the earliest DELIVERED scan that has one.
	Proof     *Proof
	ProofScan string
	// Failure is the earliest LOST or RETURNED_TO_SENDER scan.
	Failure *Scan
}

// Delivered reports whether the shipment is delivered.
func (p Progress) Delivered() bool { return p.Delivery != nil }

// Failed reports whether the shipment failed (lost or returned) and was
// not delivered.
func (p Progress) Failed() bool { return p.Delivery == nil && p.Failure != nil }

// Progress derives the shipment's status from its scans.
func (s Shipment) Progress() Progress {
	var p Progress
	for i := range s.Scans {
		sc := &s.Scans[i]
		switch sc.Status {
		case Delivered:
			if p.Delivery == nil {
				p.Delivery = sc
			}
			if sc.Proof != nil && p.Proof == nil {
				p.Proof, p.ProofScan = sc.Proof, sc.CarrierEventID
			}
		case Lost, ReturnedToSender:
			if p.Failure == nil {
				p.Failure = sc
			}
		}
	}
	switch {
	case p.Delivery != nil:
		p.Status = Delivered
	case p.Failure != nil:
		p.Status = p.Failure.Status
	case len(s.Scans) > 0:
		p.Status = s.Scans[len(s.Scans)-1].Status
	}
	return p
}

// Fulfilment is the state of the fulfilment aggregate.
type Fulfilment struct {
	ID        string
	Requested bool
	OrderID   string
	VendorID  string
	BuyerID   string
	// Lines are the vendor's lines of the order, with the units to ship:
	// those ordered less those the order cancelled before they shipped
	// (FulfilmentLinesRemoved; a line with none left is dropped).
	Lines   []Line
	Address *typev1.Address
	// ShipBy is the current deadline (moved by a grace period).
	ShipBy      time.Time
	RequestTime time.Time
	// ShipByMissed: a deadline passed with lines unshipped; GraceUsed: the
	// policy's grace period was granted; DeadlineClosed: no deadline is
	// pending any more (the miss was flagged on a partly shipped fulfilment).
	ShipByMissed   bool
	GraceUsed      bool
	DeadlineClosed bool
	Shipments      []Shipment
	// ReceiptTime is when the buyer confirmed receipt (zero: it did not).
	ReceiptTime  time.Time
	Cancelled    bool
	CancelReason string
	CancelTime   time.Time
}

// Clone deep-copies a fulfilment. Shipments, their packages and scans are
// only ever appended to or replaced (never changed in place), so a copy of
// the slice headers with clipped capacity is enough for them.
func (f Fulfilment) Clone() Fulfilment {
	c := f
	c.Lines = slices.Clone(f.Lines)
	c.Shipments = slices.Clone(f.Shipments)
	for i := range c.Shipments {
		c.Shipments[i].Scans = slices.Clip(c.Shipments[i].Scans)
	}
	if f.Address != nil {
		c.Address = proto.Clone(f.Address).(*typev1.Address)
	}
	return c
}

// Shipped returns the quantity shipped so far per line id.
func (f Fulfilment) Shipped() map[string]int64 {
	out := map[string]int64{}
	for _, s := range f.Shipments {
		for _, l := range s.Lines {
			out[l.LineID] += l.Quantity
		}
	}
	return out
}

// Unshipped returns the lines (in order) with what is left to ship.
func (f Fulfilment) Unshipped() []Line {
	shipped := f.Shipped()
	var out []Line
	for _, l := range f.Lines {
		if left := l.Quantity - shipped[l.LineID]; left > 0 {
			out = append(out, Line{LineID: l.LineID, SKUID: l.SKUID, Quantity: left})
		}
	}
	return out
}

// FullyShipped reports whether every line has shipped in full.
func (f Fulfilment) FullyShipped() bool {
	return f.Requested && len(f.Lines) > 0 && len(f.Unshipped()) == 0
}

// CanShip reports whether the vendor may still ship: requested, not
// cancelled and not fully shipped.
func (f Fulfilment) CanShip() bool { return f.Requested && !f.Cancelled && !f.FullyShipped() }

// DeadlinePending reports whether a ship-by deadline is running.
func (f Fulfilment) DeadlinePending() bool { return f.CanShip() && !f.DeadlineClosed }

// NextShipmentID is the id the next shipment gets: "s1", "s2", …
func (f Fulfilment) NextShipmentID() string { return "s" + strconv.Itoa(len(f.Shipments)+1) }

// Shipment returns the shipment with id.
func (f Fulfilment) Shipment(id string) (Shipment, bool) {
	i := slices.IndexFunc(f.Shipments, func(s Shipment) bool { return s.ID == id })
	if i < 0 {
		return Shipment{}, false
	}
	return f.Shipments[i], true
}

// ShipmentByTracking returns the shipment using a carrier's tracking number.
func (f Fulfilment) ShipmentByTracking(carrier, number string) (int, bool) {
	i := slices.IndexFunc(f.Shipments, func(s Shipment) bool { return s.Carrier == carrier && s.TrackingNumber == number })
	return i, i >= 0
}

// ShipmentByRequest returns the shipment a ShipFulfilment request made.
func (f Fulfilment) ShipmentByRequest(requestID string) (Shipment, bool) {
	i := slices.IndexFunc(f.Shipments, func(s Shipment) bool { return requestID != "" && s.RequestID == requestID })
	if i < 0 {
		return Shipment{}, false
	}
	return f.Shipments[i], true
}

// Delivery says how a fulfilment is delivered.
type Delivery struct {
	Time time.Time
	// WithProof: every shipment's delivery carried proof, or the buyer
	// confirmed receipt.
	WithProof bool
	// ConfirmedByBuyer: the buyer's confirmation delivered it, not carrier
	// scans.
	ConfirmedByBuyer bool
	// CarrierEventIDs are the DELIVERED scans it rests on: per shipment the
	// earliest one, and the one with proof if that is another.
	CarrierEventIDs []string
}

// Delivery derives whether (and how) the fulfilment is delivered: by the
// carrier when every line has shipped and every shipment has a DELIVERED
// scan (the time is the last shipment's delivery), else by the buyer's
// receipt confirmation. Carrier facts take precedence over the buyer's
// confirmation in this view, so it depends only on the set of facts, not on
// the order they arrived in; FulfilmentDelivered records how it was first
// delivered.
func (f Fulfilment) Delivery() (Delivery, bool) {
	if f.FullyShipped() {
		d := Delivery{WithProof: true}
		all := true
		for _, s := range f.Shipments {
			p := s.Progress()
			if !p.Delivered() {
				all = false
				break
			}
			if p.Delivery.OccurTime.After(d.Time) {
				d.Time = p.Delivery.OccurTime
			}
			if p.Proof == nil {
				d.WithProof = false
			}
			d.CarrierEventIDs = append(d.CarrierEventIDs, p.Delivery.CarrierEventID)
			if p.Proof != nil && p.ProofScan != p.Delivery.CarrierEventID {
				d.CarrierEventIDs = append(d.CarrierEventIDs, p.ProofScan)
			}
		}
		if all {
			if !f.ReceiptTime.IsZero() {
				d.WithProof = true
			}
			return d, true
		}
	}
	if !f.ReceiptTime.IsZero() {
		return Delivery{Time: f.ReceiptTime, WithProof: true, ConfirmedByBuyer: true}, true
	}
	return Delivery{}, false
}

// Status derives where the fulfilment is.
func (f Fulfilment) Status() Status {
	switch {
	case !f.Requested:
		return StatusNone
	case f.Cancelled:
		return StatusCancelled
	}
	if _, ok := f.Delivery(); ok {
		return StatusDelivered
	}
	for _, s := range f.Shipments {
		if s.Progress().Failed() {
			return StatusDeliveryFailed
		}
	}
	switch {
	case f.FullyShipped():
		return StatusShipped
	case len(f.Shipments) > 0:
		return StatusPartiallyShipped
	}
	return StatusRequested
}

// FulfilmentID is the id of vendorID's fulfilment of orderID: "f" and 24
// hex characters (96 bits), the same whoever derives it, so a redelivered
// OrderConfirmed can never create a second fulfilment.
func FulfilmentID(orderID, vendorID string) string {
	return "f" + es.DeriveID("fulfilment", orderID, vendorID)[:24]
}

// Decider is the fulfilment aggregate (stream "fulfilment-<id>").
var Decider = es.Decider[Fulfilment, Command]{
	Aggregate: "fulfilment",
	Initial:   func(id string) Fulfilment { return Fulfilment{ID: id} },
	Decide:    Decide,
	Evolve:    Evolve,
	Clone:     Fulfilment.Clone,
}
