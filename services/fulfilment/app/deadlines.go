package app

import (
	"context"
	"errors"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/services/fulfilment/domain"
)

// trackDeadline keeps the scheduler in step with a fulfilment as the read
// model sees it: a pending ship-by deadline is (re)scheduled at its time,
// anything else cancels it. At start the read model hands it every
// fulfilment its store holds with a pending deadline (Attach), then every
// change of the events it folds, so this is also how deadlines survive a
// restart: one that passed while the service was down is scheduled in the
// past and fires at once.
func (s *Service) trackDeadline(v View) {
	f := v.Fulfilment
	if !f.DeadlinePending() {
		s.deadlines.Cancel(f.ID)
		return
	}
	if at, ok := s.deadlines.When(f.ID); ok && at.Equal(f.ShipBy) {
		return
	}
	id, at := f.ID, f.ShipBy
	s.deadlines.Schedule(id, at, func(ctx context.Context) error { return s.MissShipBy(ctx, id, at) })
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
