package app

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/order/domain"
)

// SagaConsumer is the durable consumer through which orders learn the
// catalog's answer to OrderPlaced.
const SagaConsumer = "order-on-catalog"

// SagaEventTypes are the catalog events the saga reacts to.
var SagaEventTypes = []string{
	string((&catalogv1.StockReserved{}).ProtoReflect().Descriptor().FullName()),
	string((&catalogv1.StockReservationFailed{}).ProtoReflect().Descriptor().FullName()),
}

// HandleCatalogEvent is the order side of the stock saga: StockReserved
// confirms the order, StockReservationFailed rejects it. The command id is
// derived from the event id, so a redelivered event (or one handled again
// after a restart) appends nothing; a second, different answer for an
// order already decided is ignored by the aggregate.
func (s *Service) HandleCatalogEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := es.Decode(rec)
	if err != nil {
		return bus.Permanent(err)
	}
	var (
		orderID string
		body    domain.Command
		kind    string
	)
	now := s.clock.Now()
	switch p := ev.Payload.(type) {
	case *catalogv1.StockReserved:
		orderID, body, kind = p.GetOrderId(), domain.ConfirmOrder{Time: now}, "confirm"
	case *catalogv1.StockReservationFailed:
		reason := p.GetReason()
		if reason == "" {
			reason = fmt.Sprintf("sku %s: %d requested, %d available", p.GetSkuId(), p.GetRequested(), p.GetAvailable())
		}
		orderID, body, kind = p.GetOrderId(), domain.RejectOrder{SKUID: p.GetSkuId(), Reason: reason, Time: now}, "reject"
	default:
		return nil
	}
	corr := rec.Metadata.CorrelationID
	if corr == "" {
		corr = orderID
	}
	_, err = s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID(kind, rec.ID), Body: body,
		Meta: es.Meta{CorrelationID: corr, Actor: "service:order"},
	})
	switch {
	case errors.Is(err, domain.ErrNotPlaced), errors.Is(err, es.ErrBadCommand):
		// Not an order of ours: retrying cannot help; park it where audit sees it.
		return bus.Permanent(fmt.Errorf("%s for order %q: %w", proto.MessageName(ev.Payload), orderID, err))
	case err != nil:
		return err
	}
	s.notifier.notify(orderID)
	return nil
}
