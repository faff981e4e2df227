package app

import (
	"context"
	"errors"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/services/fulfilment/domain"
)

// trackDeadline keeps the scheduler in step with a fulfilment as the read
// model sees it, after the event's batch (and so the deadline's d/ key) is
// committed: a pending ship-by deadline is (re)scheduled at its time,
// anything else cancelled. The scheduler is a stored one
// (deadline.NewStored): it holds the deadline only if it falls among the
// earliest it holds; the others wait in the read model's d/ keys, which it
// reads as their time comes (ReadModel.Next), also after a restart, so
// one that passed while the service was down fires right after it.
func (s *Service) trackDeadline(v View) {
	f := v.Fulfilment
	if !f.DeadlinePending() {
		s.deadlines.Cancel(f.ID)
		return
	}
	if at, ok := s.deadlines.When(f.ID); ok && at.Equal(f.ShipBy) {
		return
	}
	s.deadlines.Schedule(f.ID, f.ShipBy, nil) // fired by MissShipBy (Stored.Fire)
}

// MissShipBy fires the ship-by deadline at of a fulfilment. Its command id
// is derived from the fulfilment and the deadline, so firing it again (after
// a crash, or in a second process) changes nothing; a deadline that has
// moved or a fulfilment that shipped meanwhile decides nothing.
func (s *Service) MissShipBy(ctx context.Context, fulfilmentID string, at time.Time) error {
	f, _, exists, err := s.h.Load(ctx, fulfilmentID)
	if err != nil || !exists {
		return err
	}
	_, err = s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: fulfilmentID, ID: es.DeriveID("ship-by", fulfilmentID, at.UTC().Format(time.RFC3339Nano)),
		Body: domain.MissShipBy{Deadline: at, Now: s.d.Clock.Now(), Policy: s.cfg.ShipByPolicy},
		Meta: es.Meta{CorrelationID: f.OrderID, Actor: "service:fulfilment"},
	})
	if errors.Is(err, domain.ErrNotRequested) {
		return nil
	}
	return err
}
