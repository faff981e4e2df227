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

// CatalogAnswerers are the catalog's aggregates that answer an order:
// its one product, or the reservation saga of an order across products.
var CatalogAnswerers = []string{"product", "reservation"}

// AnsweredOrder is the order a catalog answer is about: its correlation
// id, which the catalog carries over from OrderPlaced (the order id). The
// answers to one order are handled in order; those to different orders,
// though one hot product records them all, side by side.
func AnsweredOrder(e eventstore.RecordedEvent) string {
	if id := e.Metadata.CorrelationID; id != "" {
		return id
	}
	return e.Stream
}

// CatalogRoutes are the order side of the stock saga. A redelivered event
// appends nothing (react); a second, different answer for an order already
// decided is ignored by the aggregate.
func (s *Service) CatalogRoutes() projection.Routes {
	return projection.Routes{projection.On(s.stockReserved), projection.On(s.stockReservationFailed)}
}

// stockReserved confirms the order.
func (s *Service) stockReserved(ctx context.Context, rec eventstore.RecordedEvent, p *catalogv1.StockReserved) error {
	return s.react(ctx, rec, p.GetOrderId(), "confirm", domain.ConfirmOrder{Time: s.d.Clock.Now()})
}

// stockReservationFailed rejects the order.
func (s *Service) stockReservationFailed(ctx context.Context, rec eventstore.RecordedEvent, p *catalogv1.StockReservationFailed) error {
	reason := p.GetReason()
	if reason == "" {
		reason = fmt.Sprintf("sku %s: %d requested, %d available", p.GetSkuId(), p.GetRequested(), p.GetAvailable())
	}
	return s.react(ctx, rec, p.GetOrderId(), "reject", domain.RejectOrder{SKUID: p.GetSkuId(), Reason: reason, Time: s.d.Clock.Now()})
}
