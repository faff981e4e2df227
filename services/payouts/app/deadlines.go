package app

import (
	"context"
	"errors"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/services/payouts/domain"
)

// Deadline keys. Firing is idempotent: the command id derives from the
// key, and the aggregate books a window's close and a reserve's release
// once.
func windowKey(orderID, vendorID string) string  { return "window/" + orderID + "/" + vendorID }
func reserveKey(orderID, vendorID string) string { return "reserve/" + orderID + "/" + vendorID }

// scheduler keeps the service's deadline scheduler in step with the read
// side. The scheduler's keys are the view's (LedgerView.Next): a part's
// w/ or r/ key; it holds the earliest and reads the others from the view.
type scheduler struct{ s *Service }

func (d scheduler) WindowOpen(orderID, vendorID string, at time.Time) {
	d.s.sched.Schedule(DeadlineKey(true, orderID, vendorID), at, nil)
}

func (d scheduler) WindowDone(orderID, vendorID string) {
	d.s.sched.Cancel(DeadlineKey(true, orderID, vendorID))
}

func (d scheduler) ReserveHeld(orderID, vendorID string, at time.Time) {
	d.s.sched.Schedule(DeadlineKey(false, orderID, vendorID), at, nil)
}

func (d scheduler) ReserveDone(orderID, vendorID string) {
	d.s.sched.Cancel(DeadlineKey(false, orderID, vendorID))
}

// fire runs the deadline key (the scheduler's Stored.Fire): a window's
// close or a reserve's release.
func (s *Service) fire(ctx context.Context, key string, _ time.Time) error {
	window, orderID, vendorID, ok := DeadlinePart(key)
	switch {
	case !ok:
		s.d.Logger.Error("payouts: a deadline key it cannot read; dropped", "key", key)
		return nil
	case window:
		return s.CloseWindow(ctx, orderID, vendorID)
	default:
		return s.ReleaseReserve(ctx, orderID, vendorID)
	}
}

// releaseTerms resolves a vendor's trust tier now into release terms.
func (s *Service) releaseTerms(ctx context.Context, vendorID string) domain.ReleaseTerms {
	name, tp := s.cfg.Policy.Tier(s.tier(ctx, vendorID))
	return domain.ReleaseTerms{Tier: name, ReserveBps: tp.ReserveBps, ReserveHold: s.cfg.Policy.ReserveHold}
}

// CloseWindow closes a part's return window: the release, unless a claim
// is open. The deadline calls it; an error has it retried.
func (s *Service) CloseWindow(ctx context.Context, orderID, vendorID string) error {
	key := windowKey(orderID, vendorID)
	_, err := s.ledger.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID("close-window", key),
		Body: domain.CloseWindow{Cause: domain.Cause{EventID: key, Type: domain.CauseReturnWindow}, VendorID: vendorID,
			Release: s.releaseTerms(ctx, vendorID), Time: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: orderID, Actor: actor},
	})
	var unknown *domain.UnknownPartError
	if errors.As(err, &unknown) {
		return nil // nothing to close: never scheduled by our own events
	}
	return err
}

// ReleaseReserve releases a part's reserve after its hold. The deadline
// calls it.
func (s *Service) ReleaseReserve(ctx context.Context, orderID, vendorID string) error {
	key := reserveKey(orderID, vendorID)
	_, err := s.ledger.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID("release-reserve", key),
		Body: domain.ReleaseReserve{Cause: domain.Cause{EventID: key, Type: domain.CauseReserveHold}, VendorID: vendorID, Time: s.d.Clock.Now()},
		Meta: es.Meta{CorrelationID: orderID, Actor: actor},
	})
	var unknown *domain.UnknownPartError
	if errors.As(err, &unknown) {
		return nil
	}
	return err
}
