package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/personal"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/domain"
	order "github.com/custody/custody/services/order/domain"
)

var (
	// ErrPrivacyUnavailable: this process cannot erase or export (a
	// read-only run, or no key store).
	ErrPrivacyUnavailable = errors.New("erasure and export are not available in this process")
	// ErrUnrevealable: personal data to be shown cannot be read (its key
	// is missing, not erased, or a token is damaged); gRPC DataLoss, as
	// the process's own revealing of answers says.
	ErrUnrevealable = errors.New("personal data cannot be read")
)

// EnableErasures gives the service its store's handler of erasures; with
// Deps.Personal set, EraseBuyer works.
func (s *Service) EnableErasures(h *es.Handler[domain.Erasure, domain.EraseBuyer]) { s.erasures = h }

// Reveal returns m with its personal fields revealed (as it is when the
// process has no codec).
func (s *Service) Reveal(ctx context.Context, m proto.Message) (proto.Message, error) {
	if s.personal == nil {
		return m, nil
	}
	r, err := s.personal.Reveal(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnrevealable, err)
	}
	return r, nil
}

// revealer is Reveal bound to ctx, for rendering (nil without a codec).
func (s *Service) revealer(ctx context.Context) domain.Reveal {
	if s.personal == nil {
		return nil
	}
	return func(m proto.Message) (proto.Message, error) { return s.personal.Reveal(ctx, m) }
}

// EraseCommand erases a buyer's personal data.
type EraseCommand struct {
	RequestID   string
	Fingerprint string
	// Actor is who erases ("platform:ops-1").
	Actor   string
	BuyerID string
	Reason  string
}

// EraseBuyer records the buyer's erasure (BuyerErased on erasure-<buyer>,
// naming the buyer's orders and data key) and then destroys the buyer's
// data key. Nothing is stored when it refuses: a buyer Custody holds no
// key of is a *fault.NotFoundError, one erased before (by another request)
// ALREADY_ERASED. A repeat of the request (its request id) answers as the
// first did. Every path that finds the erasure recorded also erases the
// key, so a retry after a crash between the two completes it (and so does
// the reaction to BuyerErased, HandleBuyerErased).
func (s *Service) EraseBuyer(ctx context.Context, c EraseCommand) (*auditv1.BuyerErased, error) {
	if s.erasures == nil || s.personal == nil {
		return nil, ErrPrivacyUnavailable
	}
	res, err := s.erasures.Lookup(ctx, c.BuyerID, c.RequestID, c.Fingerprint)
	if err != nil {
		return nil, err
	}
	if done := res.State.Erased; done != nil {
		if err := s.eraseKey(ctx, done); err != nil {
			return nil, err
		}
		if res.Duplicate {
			return done, nil
		}
		_, refusal := domain.Erasures.Decide(res.State, domain.EraseBuyer{})
		return nil, refusal
	}
	keyID := BuyerKey(c.BuyerID)
	_, _, err = s.personal.Keys().DataKey(ctx, keyID, false)
	switch {
	case errors.Is(err, personal.ErrNoKey):
		return nil, &fault.NotFoundError{Resource: "buyer with personal data", ID: c.BuyerID}
	case errors.Is(err, personal.ErrErased):
		// The key is gone but its erasure was not recorded: record it now.
	case err != nil:
		return nil, err
	}
	orders, err := s.OrdersOf(ctx, c.BuyerID)
	if err != nil {
		return nil, err
	}
	ev := &auditv1.BuyerErased{BuyerId: c.BuyerID, Reason: c.Reason, ErasedBy: c.Actor, KeyId: keyID,
		OrderIds: orders, EraseTime: timestamppb.New(s.clock.Now())}
	res, err = s.erasures.Handle(ctx, es.Command[domain.EraseBuyer]{AggregateID: c.BuyerID, ID: c.RequestID,
		Body: domain.EraseBuyer{Event: ev},
		Meta: es.Meta{CorrelationID: c.RequestID, Actor: c.Actor, RequestFingerprint: c.Fingerprint}})
	if err != nil {
		return nil, err
	}
	done := res.State.Erased
	if err := s.eraseKey(ctx, done); err != nil {
		return nil, err
	}
	return done, nil
}

// BuyerKey is the data subject whose keys hold a buyer's personal data,
// "buyer-<id>": what BuyerErased.key_id names.
func BuyerKey(buyerID string) string { return personal.Subject("buyer", buyerID) }

// eraseKey destroys the data keys of the buyer an erasure names; keys
// erased before (by this erasure's earlier attempt) are done.
func (s *Service) eraseKey(ctx context.Context, ev *auditv1.BuyerErased) error {
	err := s.personal.Keys().Erase(ctx, BuyerKey(ev.GetBuyerId()))
	switch {
	case err == nil, errors.Is(err, personal.ErrErased):
		return nil
	case errors.Is(err, personal.ErrNoKey):
		// Nothing to destroy: the key store holds no key of the buyer (one
		// replaced since the erasure was decided). Nothing can reveal the
		// buyer's tokens either.
		s.log.Warn("an erased buyer has no data key to destroy", "buyer", ev.GetBuyerId(), "key", ev.GetKeyId())
		return nil
	}
	return fmt.Errorf("erasing data key %s: %w", ev.GetKeyId(), err)
}

// ErasureEventTypes are the events HandleBuyerErased handles.
var ErasureEventTypes = []string{es.EventType(&auditv1.BuyerErased{})}

// HandleBuyerErased destroys the data key of an erasure recorded in the
// audit's store: a crash between recording BuyerErased and destroying the
// key leaves the key, and this reaction (on the audit's own store) destroys
// it. Idempotent: a key erased before is done.
func (s *Service) HandleBuyerErased(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := es.Decode(rec)
	if err != nil {
		return fault.Permanent(err)
	}
	erased, ok := ev.Payload.(*auditv1.BuyerErased)
	if !ok {
		return nil
	}
	if s.personal == nil {
		return ErrPrivacyUnavailable
	}
	return s.eraseKey(ctx, erased)
}

// OrdersOf returns the orders of buyerID the index knows, sorted, once the
// index holds what the stores held when it was called.
func (s *Service) OrdersOf(ctx context.Context, buyerID string) ([]string, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.ordersOf(buyerID)
}

// Export is a copy of a buyer's data (an access request).
type Export struct {
	BuyerID string
	// Erased: the buyer's data key was erased; personal fields read
	// "[erased]".
	Erased bool
	Orders []ExportedOrder
}

// ExportedOrder is one of the buyer's orders: the order as its events fold
// (Order.Status is StatusNone when the order service's events of it are
// not in the index) and its events that hold personal fields.
type ExportedOrder struct {
	ID       string
	Order    order.Order
	Revision uint64
	Events   []ExportedEvent
}

// ExportedEvent is one event of an order with its personal fields.
type ExportedEvent struct {
	Service    string
	Stream     string
	Revision   uint64
	EventID    string
	Type       string
	RecordedAt time.Time
	Fields     []personal.Field
	// Error says why the event's fields could not be read or revealed
	// (Fields is then empty).
	Error string
}

// ExportBuyerData gathers every order of the buyer the index knows and, for
// each, every event that holds personal fields, revealed. A buyer with no
// order, no data key and no erasure is a *fault.NotFoundError. An event
// that names another buyer is left out.
func (s *Service) ExportBuyerData(ctx context.Context, buyerID string) (Export, error) {
	if s.personal == nil {
		return Export{}, ErrPrivacyUnavailable
	}
	orders, err := s.OrdersOf(ctx, buyerID)
	if err != nil {
		return Export{}, err
	}
	out := Export{BuyerID: buyerID}
	_, _, err = s.personal.Keys().DataKey(ctx, BuyerKey(buyerID), false)
	hasKey := err == nil
	switch {
	case errors.Is(err, personal.ErrErased):
		out.Erased = true
	case err != nil && !errors.Is(err, personal.ErrNoKey):
		return Export{}, err
	}
	if !out.Erased && s.erasures != nil {
		if out.Erased, err = s.erasures.Stored(ctx, buyerID); err != nil {
			return Export{}, err
		}
	}
	if len(orders) == 0 && !hasKey && !out.Erased {
		return Export{}, &fault.NotFoundError{Resource: "buyer", ID: buyerID}
	}
	for _, id := range orders {
		o, err := s.exportOrder(ctx, buyerID, id)
		if err != nil {
			return Export{}, err
		}
		out.Orders = append(out.Orders, o)
	}
	return out, nil
}

// exportOrder reads an order's events from their stores: its own fold into
// the order, those with personal fields are exported.
func (s *Service) exportOrder(ctx context.Context, buyerID, orderID string) (ExportedOrder, error) {
	out := ExportedOrder{ID: orderID}
	s.mu.RLock()
	v, _, err := s.idx.order(orderID)
	s.mu.RUnlock()
	if err != nil {
		return out, err
	}
	got, err := s.fetch(ctx, v.Entries)
	if err != nil {
		return out, err
	}
	own := domain.OrderAggregate.Stream(orderID)
	var history []es.Event
	for i, e := range v.Entries {
		f := got[i]
		x := ExportedEvent{Service: e.Service, Stream: e.Event.Stream, Revision: e.Event.Revision, Type: e.Event.Type,
			RecordedAt: e.Event.RecordedAt}
		if !f.ok {
			x.Error = "the store cannot return this event now: " + f.cause.Error()
			out.Events = append(out.Events, x)
			continue
		}
		x.EventID = f.ev.ID
		ev, err := es.Decode(f.ev)
		if err != nil {
			continue // a type this binary does not know: nothing to say of its fields
		}
		if e.Ref() == own {
			history = append(history, ev)
		}
		if b := domain.RefsOf(f.ev.Stream, ev.Payload).BuyerID; b != "" && b != buyerID {
			continue // another buyer's words
		}
		fields, err := s.personal.Fields(ctx, ev.Payload)
		if err != nil {
			x.Error = err.Error()
		} else if len(fields) == 0 {
			continue
		}
		x.Fields = fields
		out.Events = append(out.Events, x)
	}
	out.Order = domain.FoldOrder(orderID, history)
	if n := len(history); n > 0 {
		out.Revision = history[n-1].Revision
	}
	return out, nil
}
