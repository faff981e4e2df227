package domain

import (
	"maps"
	"slices"
	"time"

	"github.com/custody/custody/pkg/es"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	fulfilment "github.com/custody/custody/services/fulfilment/domain"
	order "github.com/custody/custody/services/order/domain"
	payouts "github.com/custody/custody/services/payouts/domain"
	trust "github.com/custody/custody/services/trust/domain"
)

// The aggregates whose streams make up an order's state, and the services
// whose stores hold them. Replay folds each with its owner's decider.
var (
	// OrderAggregate: the order itself, "order-<order_id>".
	OrderAggregate = Aggregate{Service: "order", Name: order.Decider.Aggregate}
	// FulfilmentAggregate: one per vendor part, "fulfilment-<fulfilment_id>".
	FulfilmentAggregate = Aggregate{Service: "fulfilment", Name: fulfilment.Decider.Aggregate}
	// ClaimsAggregate: every claim of the order, "claims-<order_id>".
	ClaimsAggregate = Aggregate{Service: "trust", Name: trust.Claims.Aggregate}
	// LedgerAggregate: the order's money, "orderledger-<order_id>".
	LedgerAggregate = Aggregate{Service: "payouts", Name: payouts.LedgerDecider.Aggregate}
)

// Aggregate is an aggregate type in a service's store.
type Aggregate struct {
	Service string
	Name    string
}

// Stream is the stream of aggregate id.
func (a Aggregate) Stream(id string) StreamRef {
	return StreamRef{Service: a.Service, Stream: a.Name + "-" + id}
}

// FulfilmentIDs are the ids of an order's fulfilments as the fulfilment
// service derives them (one per vendor part), so Replay finds a
// fulfilment even before the index has seen its stream.
func FulfilmentIDs(o order.Order) []string {
	ids := make([]string, 0, len(o.Parts))
	for _, p := range o.Parts {
		ids = append(ids, fulfilment.FulfilmentID(o.ID, p.VendorID))
	}
	return ids
}

// FoldOrder is the order's state from its events (the order service's
// decider).
func FoldOrder(orderID string, events []es.Event) order.Order {
	return order.Decider.Fold(orderID, events)
}

// Histories are the stored events of an order's aggregates, decoded, each
// in revision order. Events of types this binary does not know are left
// out: the owners' Evolve functions ignore them anyway.
type Histories struct {
	Order       []es.Event
	Fulfilments map[string][]es.Event // by fulfilment id
	Claims      []es.Event
	Ledger      []es.Event
}

// FulfilmentAt is a fulfilment as of the moment, with the revision folded.
type FulfilmentAt struct {
	Fulfilment fulfilment.Fulfilment
	Revision   uint64
}

// Snapshot is an order and everything hanging off it as of a moment.
type Snapshot struct {
	AsOf time.Time
	// Order is the zero order (StatusNone) if it was not placed by then.
	Order         order.Order
	OrderRevision uint64
	// Fulfilments that existed by then, by id.
	Fulfilments []FulfilmentAt
	// Claims is trust's claims aggregate of the order.
	Claims trust.Case
	// Ledger is payouts' order ledger; Money sums its transactions (nil
	// when nothing was captured by then).
	Ledger payouts.Ledger
	Money  *Money
	// MoneyErr is why Money is nil although the order was captured: a sum
	// of its transactions would leave int64 (payouts' ErrOverflow). The
	// replay is then refused rather than shown with a wrapped amount.
	MoneyErr error
	// EventsApplied counts the events folded; LastEventID is the latest of
	// them by recorded time.
	EventsApplied int
	LastEventID   string
	lastAt        time.Time
}

// AsOf is the prefix of a stream's events recorded at or before t: the
// stream as it stood at that moment. (A prefix, not a filter, so the state
// is one the aggregate really was in.)
func AsOf(events []es.Event, t time.Time) []es.Event {
	for i, e := range events {
		if e.RecordedAt.After(t) {
			return events[:i]
		}
	}
	return events
}

// Replay folds an order's histories as of asOf with the owning services'
// deciders: the order service's Decider, the fulfilment service's
// Decider, trust's Claims and payouts' LedgerDecider; money is payouts'
// Balances fold of the order's ledger transactions.
func Replay(orderID string, asOf time.Time, h Histories) Snapshot {
	s := Snapshot{AsOf: asOf}
	take := func(evs []es.Event) []es.Event {
		evs = AsOf(evs, asOf)
		s.EventsApplied += len(evs)
		for _, e := range evs {
			if s.LastEventID == "" || !e.RecordedAt.Before(s.lastAt) {
				s.LastEventID, s.lastAt = e.ID, e.RecordedAt
			}
		}
		return evs
	}

	if evs := take(h.Order); len(evs) > 0 {
		s.Order = order.Decider.Fold(orderID, evs)
		s.OrderRevision = evs[len(evs)-1].Revision
	} else {
		s.Order = order.Decider.Initial(orderID)
	}
	for _, id := range slices.Sorted(maps.Keys(h.Fulfilments)) {
		evs := take(h.Fulfilments[id])
		if len(evs) == 0 {
			continue // not requested yet at that moment
		}
		s.Fulfilments = append(s.Fulfilments, FulfilmentAt{Fulfilment: fulfilment.Decider.Fold(id, evs), Revision: evs[len(evs)-1].Revision})
	}
	s.Claims = trust.Claims.Fold(orderID, take(h.Claims))

	ledger := take(h.Ledger)
	s.Ledger = payouts.LedgerDecider.Fold(orderID, ledger)
	balances := payouts.Balances{}
	for _, e := range ledger {
		if t, ok := e.Payload.(*payoutsv1.TransactionPosted); ok && s.MoneyErr == nil {
			s.MoneyErr = balances.Apply(t)
		}
	}
	if s.MoneyErr == nil {
		s.Money, s.MoneyErr = MoneyOf(s.Ledger, balances)
	}
	if s.MoneyErr != nil {
		s.Money = nil
	}
	return s
}
