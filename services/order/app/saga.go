package app

import (
	"context"
	"fmt"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/order/domain"
)

// SagaConsumer is the reaction (and its durable consumer) through which
// orders learn the catalog's answer to OrderPlaced.
const SagaConsumer = "order-on-catalog"

// SagaEventTypes are the catalog events the saga reacts to.
var SagaEventTypes = projection.EventTypes(&catalogv1.StockReserved{}, &catalogv1.StockReservationFailed{})

// HandleCatalogEvent is the order side of the stock saga: StockReserved
// confirms the order, StockReservationFailed rejects it. A redelivered
// event appends nothing (react); a second, different answer for an order
// already decided is ignored by the aggregate.
func (s *Service) HandleCatalogEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	now := s.d.Clock.Now()
	switch p := ev.Payload.(type) {
	case *catalogv1.StockReserved:
		return s.react(ctx, rec, p.GetOrderId(), "confirm", domain.ConfirmOrder{Time: now})
	case *catalogv1.StockReservationFailed:
		reason := p.GetReason()
		if reason == "" {
			reason = fmt.Sprintf("sku %s: %d requested, %d available", p.GetSkuId(), p.GetRequested(), p.GetAvailable())
		}
		return s.react(ctx, rec, p.GetOrderId(), "reject", domain.RejectOrder{SKUID: p.GetSkuId(), Reason: reason, Time: now})
	}
	return nil
}
