package app

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/domain"
)

// actor is who the reactions and deadlines act as, recorded with the events.
const actor = "service:payouts"

// ErrNotConfirmed: an event about an order whose OrderConfirmed is not in
// the order stream (yet). The runtime retries the reaction, and parks the
// event if it never comes.
var ErrNotConfirmed = errors.New("the order has not been confirmed")

// OrderRoutes book OrderConfirmed (capture into escrow), OrderCancelled
// (escrow back to the buyer) and OrderLinesCancelled (the cancelled units'
// escrow back to the buyer, their split reversed). OrderPartCancelled is
// not booked: it is the order's record of a FulfilmentCancelled, which
// FulfilmentRoutes books. The order's reason (the canceller's words,
// sealed under the buyer's key) is not copied: the ledger's events name no
// buyer, so they say who cancelled.
func (s *Service) OrderRoutes() projection.Routes {
	return projection.Routes{
		projection.On(func(ctx context.Context, rec eventstore.RecordedEvent, e *orderv1.OrderConfirmed) error {
			return classify(e, s.capture(ctx, rec, e))
		}),
		projection.On(func(ctx context.Context, rec eventstore.RecordedEvent, e *orderv1.OrderCancelled) error {
			return classify(e, s.book(ctx, rec, e.GetOrderId(), "cancel", domain.Cancel{
				Cause: cause(rec), Reason: "order cancelled by " + e.GetCancelledBy(), Time: s.d.Clock.Now()}))
		}),
		projection.On(func(ctx context.Context, rec eventstore.RecordedEvent, e *orderv1.OrderLinesCancelled) error {
			// The order's refunded total after it names the cancellation
			// (it grows with every refund of the order), so the same
			// cancellation published again books nothing either.
			cancellation := rec.ID
			if rt := e.GetRefundedTotal(); rt.GetAmountMinor() > 0 {
				cancellation = fmt.Sprintf("refunded-total-%d", rt.GetAmountMinor())
			}
			c := domain.CancelLines{Cause: cause(rec), CancellationID: cancellation, ClosedVendorIDs: e.GetClosedVendorIds(),
				Reason: "lines cancelled by " + e.GetCancelledBy(), Time: s.d.Clock.Now()}
			for _, l := range e.GetLines() {
				c.Lines = append(c.Lines, domain.CancelledLine{LineID: l.GetLineId(), VendorID: l.GetVendorId(), Amount: moneyOf(l.GetAmount())})
			}
			return classify(e, s.book(ctx, rec, e.GetOrderId(), "cancel-lines", c))
		}),
	}
}

// FulfilmentRoutes book FulfilmentDelivered (the return window starts) and
// FulfilmentCancelled (the part's escrow back to the buyer).
func (s *Service) FulfilmentRoutes() projection.Routes {
	return projection.Routes{
		booking(s, "deliver", func(ctx context.Context, rec eventstore.RecordedEvent, e *fulfilmentv1.FulfilmentDelivered) domain.Command {
			tier, tp := s.cfg.Policy.Tier(s.tier(ctx, e.GetVendorId()))
			d := domain.Deliver{Cause: cause(rec), VendorID: e.GetVendorId(), FulfilmentID: e.GetFulfilmentId(), Tier: tier,
				Window: s.cfg.Policy.ReturnWindow + tp.WindowExtension, Time: s.d.Clock.Now()}
			if e.GetDeliverTime() != nil {
				d.DeliverTime = e.GetDeliverTime().AsTime()
			}
			return d
		}),
		booking(s, "cancel-part", func(_ context.Context, rec eventstore.RecordedEvent, e *fulfilmentv1.FulfilmentCancelled) domain.Command {
			return domain.Cancel{Cause: cause(rec), VendorID: e.GetVendorId(),
				Reason: "fulfilment cancelled: " + e.GetReason(), Time: s.d.Clock.Now()}
		}),
	}
}

// TrustRoutes book ClaimOpened (hold), ClaimClosed (unhold, and the release
// if the window has closed) and RefundIssued (refund or clawback).
func (s *Service) TrustRoutes() projection.Routes {
	return projection.Routes{
		booking(s, "open-claim", func(_ context.Context, rec eventstore.RecordedEvent, e *trustv1.ClaimOpened) domain.Command {
			return domain.OpenClaim{Cause: cause(rec), ClaimID: e.GetClaimId(), VendorID: e.GetVendorId(),
				Amount: moneyOf(e.GetClaimedAmount()), Time: s.d.Clock.Now()}
		}),
		booking(s, "close-claim", func(ctx context.Context, rec eventstore.RecordedEvent, e *trustv1.ClaimClosed) domain.Command {
			return domain.CloseClaim{Cause: cause(rec), ClaimID: e.GetClaimId(), VendorID: e.GetVendorId(),
				Outcome: e.GetOutcome(), Release: s.releaseTerms(ctx, e.GetVendorId()), Time: s.d.Clock.Now()}
		}),
		booking(s, "refund", func(_ context.Context, rec eventstore.RecordedEvent, e *trustv1.RefundIssued) domain.Command {
			r := domain.Refund{Cause: cause(rec), RefundID: e.GetRefundId(), ClaimID: e.GetClaimId(), VendorID: e.GetVendorId(),
				Amount: moneyOf(e.GetAmount()), Time: s.d.Clock.Now()}
			for _, l := range e.GetLines() {
				r.Lines = append(r.Lines, domain.LineAmount{LineID: l.GetLineId(), Amount: moneyOf(l.GetAmount())})
			}
			return r
		}),
	}
}

// aboutOrder is an event about an order: what the reactions book.
type aboutOrder interface {
	proto.Message
	GetOrderId() string
}

// booking routes the events of type E, each about a captured order, to the
// ledger command that command makes of it and books it, capturing the
// order first if this event overtook its OrderConfirmed.
func booking[E aboutOrder](s *Service, kind string, command func(context.Context, eventstore.RecordedEvent, E) domain.Command) projection.Route {
	return projection.On(func(ctx context.Context, rec eventstore.RecordedEvent, e E) error {
		return classify(e, s.bookCaptured(ctx, rec, e.GetOrderId(), kind, command(ctx, rec, e)))
	})
}

func cause(rec eventstore.RecordedEvent) domain.Cause {
	return domain.Cause{EventID: rec.ID, Type: rec.Type}
}

// moneyOf reads an upstream amount; a missing or malformed one is left for
// the domain to refuse.
func moneyOf(m *typev1.Money) money.Money {
	return money.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}

// classify turns a reaction's error into the runtime's terms: what no
// retry can cure (a malformed event — an order total beyond
// money.MaxAmount too —, a vendor the order does not have, an id that is
// not an order id, an amount that would overflow) is parked at once, where
// audit sees it.
func classify(ev aboutOrder, err error) error {
	var invalid *domain.InvalidError
	var unknown *domain.UnknownPartError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid), errors.As(err, &unknown), errors.Is(err, es.ErrBadCommand), fault.IsA(err, domain.ErrOverflow):
		return fault.Permanent(fmt.Errorf("%s for order %q: %w", proto.MessageName(ev), ev.GetOrderId(), err))
	}
	return err
}

// book issues a ledger command derived from the causing event.
func (s *Service) book(ctx context.Context, rec eventstore.RecordedEvent, orderID, kind string, cmd domain.Command) error {
	_, err := s.ledger.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID(kind, rec.ID), Body: cmd,
		Meta: projection.CausedBy(rec, orderID, actor),
	})
	return err
}

// bookCaptured books cmd, capturing the order first if its OrderConfirmed
// has not been booked yet (this event overtook it).
func (s *Service) bookCaptured(ctx context.Context, rec eventstore.RecordedEvent, orderID, kind string, cmd domain.Command) error {
	err := s.book(ctx, rec, orderID, kind, cmd)
	if !errors.Is(err, domain.ErrNotCaptured) {
		return err
	}
	if err := s.captureFromOrderStream(ctx, orderID); err != nil {
		return err
	}
	return s.book(ctx, rec, orderID, kind, cmd)
}

// captureFromOrderStream finds the order's OrderConfirmed in the order
// service's stream and books it, as the order consumer would.
func (s *Service) captureFromOrderStream(ctx context.Context, orderID string) error {
	octx, cancel := context.WithTimeout(ctx, s.cfg.ReadWait)
	st, err := s.orders.Store(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("order %s: %w (the order service's events are not readable yet: %w)", orderID, ErrNotConfirmed, err)
	}
	recs, err := st.ReadStream(ctx, eventstore.StreamName("order", orderID), 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return fmt.Errorf("order %s: %w (no such order yet)", orderID, ErrNotConfirmed)
	}
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Type != es.EventType(&orderv1.OrderConfirmed{}) {
			continue
		}
		ev, err := es.Decode(r)
		if err != nil {
			return err
		}
		return s.capture(ctx, r, ev.Payload.(*orderv1.OrderConfirmed))
	}
	return fmt.Errorf("order %s: %w", orderID, ErrNotConfirmed)
}

// capture books an OrderConfirmed. The command id derives from its event
// id, whichever path books it. Commission follows the lines' creators as
// the order recorded them: the order service decided attribution.
func (s *Service) capture(ctx context.Context, rec eventstore.RecordedEvent, e *orderv1.OrderConfirmed) error {
	c := domain.Capture{Cause: cause(rec), BuyerID: e.GetBuyerId(), Total: moneyOf(e.GetTotal()),
		PSPReference: e.GetPayment().GetPspReference(), FeeBps: s.cfg.Policy.PlatformFeeBps, Time: s.d.Clock.Now()}
	if e.GetConfirmTime() != nil {
		c.ConfirmTime = e.GetConfirmTime().AsTime()
	}
	for _, l := range e.GetLines() {
		c.Lines = append(c.Lines, domain.CapturedLine{LineID: l.GetLineId(), VendorID: l.GetVendorId(), CreatorID: l.GetCreatorId(),
			Total: moneyOf(l.GetLineTotal()), CommissionBps: int64(l.GetCommissionBps())})
	}
	for _, p := range e.GetParts() {
		c.Parts = append(c.Parts, domain.CapturedPart{VendorID: p.GetVendorId(), LineIDs: p.GetLineIds()})
	}
	return s.book(ctx, rec, e.GetOrderId(), "capture", c)
}
