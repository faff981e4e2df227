package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// ReservationStatus is where reserving one order's stock stands.
type ReservationStatus int

// Reservation statuses. Reserved is the only one that holds stock; Failed,
// Cancelled and Released are final.
const (
	ReservationNone      ReservationStatus = iota
	ReservationRequested                   // the saga is holding stock product by product
	ReservationReserved                    // every line is held: StockReserved
	ReservationFailed                      // a line could not be held; nothing stays held
	ReservationCancelled                   // the order went away before stock was reserved
	ReservationReleased                    // reserved, then released because the order went away
)

func (s ReservationStatus) String() string {
	return [...]string{"none", "requested", "reserved", "failed", "cancelled", "released"}[s]
}

// Final reports whether nothing more will happen to the reservation.
func (s ReservationStatus) Final() bool {
	return s == ReservationFailed || s == ReservationCancelled || s == ReservationReleased
}

// Reservation is the reservation of one order's stock (aggregate id: the
// order id).
type Reservation struct {
	OrderID string
	Status  ReservationStatus
	// Lines are the order's lines as requested (not validated: a bad line
	// is a reason to fail, not to refuse to record the order).
	Lines  []Line
	Reason string
	// FailedSKU is the SKU that could not be reserved.
	FailedSKU string
}

// Products returns the ids of the products the order's lines name, sorted
// (the order in which the saga holds them, so that two sagas never wait on
// each other). Lines whose SKU id is malformed name no product.
func (r Reservation) Products() []string {
	var out []string
	for _, l := range r.Lines {
		if p, ok := ProductOfSKU(l.SkuID); ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// ReservationCommand is a command to a reservation.
type ReservationCommand interface{ command[Reservation] }

// RequestReservation records an order's lines. It decides nothing for a
// reservation that already exists, cancelled ones included: the caller
// reads the status.
type RequestReservation struct {
	Lines []Line
}

// CompleteReservation records that every line is held.
type CompleteReservation struct {
	Now time.Time
}

// FailReservation records that a line could not be held.
type FailReservation struct {
	SkuID     string
	Requested int64
	Available int64
	Reason    string
	Now       time.Time
}

// CancelReservation records that the order was cancelled or rejected.
type CancelReservation struct {
	Reason string
	Now    time.Time
}

// Reservations is the reservation aggregate: the state of the saga that
// reserves every line of an order or none.
var Reservations = es.Decider[Reservation, ReservationCommand]{
	Aggregate: "reservation",
	Initial:   func(id string) Reservation { return Reservation{OrderID: id} },
	Decide:    decides[Reservation, ReservationCommand],
	Evolve:    evolveReservation,
}

func (c RequestReservation) decide(s Reservation) ([]proto.Message, error) {
	if s.Status != ReservationNone {
		return nil, nil
	}
	return []proto.Message{&catalogv1.ReservationRequested{OrderId: s.OrderID, Lines: linesToProto(c.Lines)}}, nil
}

func (c CompleteReservation) decide(s Reservation) ([]proto.Message, error) {
	switch s.Status {
	case ReservationRequested:
		return []proto.Message{&catalogv1.StockReserved{OrderId: s.OrderID, Lines: linesToProto(s.Lines), ReserveTime: timestamppb.New(c.Now)}}, nil
	case ReservationReserved:
		return nil, nil
	case ReservationCancelled, ReservationReleased:
		return nil, refuse(ErrReservationCanceled, "reservation of order %s was cancelled", s.OrderID)
	}
	return nil, closed(s)
}

func (c FailReservation) decide(s Reservation) ([]proto.Message, error) {
	switch s.Status {
	case ReservationRequested:
		return []proto.Message{&catalogv1.StockReservationFailed{
			OrderId: s.OrderID, SkuId: c.SkuID, Requested: c.Requested, Available: c.Available,
			Reason: c.Reason, FailTime: timestamppb.New(c.Now),
		}}, nil
	case ReservationFailed, ReservationCancelled, ReservationReleased:
		return nil, nil // already failed, or the order is gone: nothing to report
	}
	return nil, closed(s)
}

func (c CancelReservation) decide(s Reservation) ([]proto.Message, error) {
	switch s.Status {
	case ReservationNone, ReservationRequested:
		return []proto.Message{&catalogv1.ReservationCancelled{OrderId: s.OrderID, Reason: c.Reason, CancelTime: timestamppb.New(c.Now)}}, nil
	case ReservationReserved:
		return []proto.Message{&catalogv1.StockReleased{OrderId: s.OrderID, Reason: c.Reason, ReleaseTime: timestamppb.New(c.Now)}}, nil
	}
	return nil, nil // failed, cancelled or released: nothing is reserved
}

func closed(s Reservation) error {
	return refuse(ErrReservationClosed, "reservation of order %s is %s", s.OrderID, s.Status)
}

func evolveReservation(s Reservation, e proto.Message) Reservation {
	switch e := e.(type) {
	case *catalogv1.ReservationRequested:
		s.Status, s.Lines = ReservationRequested, linesFromProto(e.GetLines())
	case *catalogv1.StockReserved:
		s.Status = ReservationReserved
	case *catalogv1.StockReservationFailed:
		s.Status, s.Reason, s.FailedSKU = ReservationFailed, e.GetReason(), e.GetSkuId()
	case *catalogv1.ReservationCancelled:
		s.Status, s.Reason = ReservationCancelled, e.GetReason()
	case *catalogv1.StockReleased:
		s.Status, s.Reason = ReservationReleased, e.GetReason()
	}
	return s
}
