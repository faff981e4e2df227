package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// ShipmentRoutes are the fulfilment events the stock ledger follows after
// a reservation: shipped units become sold, a cancelled fulfilment gives
// back what its vendor's products hold.
func (a *App) ShipmentRoutes() projection.Routes {
	return projection.Routes{projection.On(a.sell), projection.On(a.releaseVendorPart)}
}

// ReturnRoutes are the trust events the stock ledger follows: resellable
// returns go back to available.
func (a *App) ReturnRoutes() projection.Routes {
	return projection.Routes{projection.On(a.restock)}
}

// ReturnAggregates are the trust aggregates ReturnRoutes' events come from:
// claims. Not vendor trust, which records facts at every step of every
// fulfilment.
var ReturnAggregates = []string{"claims"}

func (a *App) sell(ctx context.Context, rec eventstore.RecordedEvent, p *fulfilmentv1.FulfilmentShipped) error {
	shipment := p.GetFulfilmentId() + "/" + p.GetShipmentId()
	return a.moveStock(ctx, rec, p.GetOrderId(), linesOf(p.GetLines()), func(ls []domain.Line) domain.ProductCommand {
		return domain.SellStock{OrderID: p.GetOrderId(), ShipmentID: shipment, Lines: ls}
	})
}

func (a *App) restock(ctx context.Context, rec eventstore.RecordedEvent, p *trustv1.ReturnReceived) error {
	if !p.GetRestock() {
		return nil // damaged or wrong: nothing goes back on the shelf
	}
	return a.moveStock(ctx, rec, p.GetOrderId(), linesOf(p.GetLines()), func(ls []domain.Line) domain.ProductCommand {
		return domain.RestockReturn{OrderID: p.GetOrderId(), ReturnID: p.GetReturnId(), Lines: ls}
	})
}

// moveStock moves the stock of a shipment or return. Each product of it
// gets its own command, with an id derived from the event and the product,
// so redelivery moves nothing twice (and the product also remembers the
// shipment and return ids it applied).
func (a *App) moveStock(ctx context.Context, rec eventstore.RecordedEvent, orderID string, lines []domain.Line, command func([]domain.Line) domain.ProductCommand) error {
	byProduct := map[string][]domain.Line{}
	for _, l := range lines {
		pid, ok := domain.ProductOfSKU(l.SkuID)
		if !ok {
			return fault.Permanent(fmt.Errorf("%s for order %s: sku %q names no product", rec.Type, orderID, l.SkuID))
		}
		byProduct[pid] = append(byProduct[pid], l)
	}
	products := make([]string, 0, len(byProduct))
	for pid := range byProduct {
		products = append(products, pid)
	}
	slices.Sort(products)
	meta := projection.CausedBy(rec, orderID, Actor)
	for _, pid := range products {
		_, err := a.Products.Handle(ctx, es.Command[domain.ProductCommand]{
			AggregateID: pid, ID: es.DeriveID(rec.ID, "stock", pid), Body: command(byProduct[pid]),
			Meta: meta,
		})
		var rule *domain.RuleError
		var nf *domain.NotFoundError
		if errors.As(err, &rule) || errors.As(err, &nf) {
			// The record disagrees with the ledger (more shipped than held):
			// retrying cannot fix it; park it where support and audit see it.
			return fault.Permanent(fmt.Errorf("%s for order %s, product %s: %w", rec.Type, orderID, pid, err))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// releaseVendorPart gives back what one vendor's products hold for an
// order whose fulfilment was cancelled (the ship-by policy): the order
// service only records that part's fate, so this is where its stock comes
// back. When the whole order is cancelled this also happens through
// OrderCancelled; releasing twice is a no-op.
func (a *App) releaseVendorPart(ctx context.Context, rec eventstore.RecordedEvent, ev *fulfilmentv1.FulfilmentCancelled) error {
	orderID, vendorID, reason := ev.GetOrderId(), ev.GetVendorId(), "fulfilment cancelled: "+ev.GetReason()
	products, err := a.orderProducts(ctx, orderID)
	if err != nil {
		return err
	}
	for _, pid := range products {
		p, _, ok, err := a.Products.Load(ctx, pid)
		if err != nil {
			return err
		}
		if !ok || p.VendorID != vendorID || p.HoldFor(orderID).Status != domain.HoldHeld {
			continue
		}
		_, err = a.Products.Handle(ctx, es.Command[domain.ProductCommand]{
			AggregateID: pid, ID: es.DeriveID(rec.ID, "release", pid),
			Body: domain.ReleaseStock{OrderID: orderID, Reason: reason},
			Meta: es.Meta{CorrelationID: orderID, Actor: Actor},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// orderProducts are the products an order holds stock of: its
// reservation's, for an order of several products, else (an order of one
// product reserves without a reservation) those of its OrderPlaced, read
// from the order service's stream.
func (a *App) orderProducts(ctx context.Context, orderID string) ([]string, error) {
	r, _, exists, err := a.Reservations.Load(ctx, orderID)
	if err != nil || exists {
		return r.Products(), err
	}
	ev, ok, err := a.orders.First(ctx, "order", orderID)
	if err != nil || !ok {
		return nil, err // no such order: nothing is held for it
	}
	placed, ok := ev.Payload.(*orderv1.OrderPlaced)
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("order %s starts with %s, not OrderPlaced", orderID, proto.MessageName(ev.Payload)))
	}
	var products []string
	for _, l := range placed.GetLines() {
		if !slices.Contains(products, l.GetProductId()) {
			products = append(products, l.GetProductId())
		}
	}
	return products, nil
}

// linesOf reads the lines of an event.
func linesOf[L interface {
	GetSkuId() string
	GetQuantity() int64
}](ls []L) []domain.Line {
	out := make([]domain.Line, 0, len(ls))
	for _, l := range ls {
		out = append(out, domain.Line{SkuID: l.GetSkuId(), Quantity: l.GetQuantity()})
	}
	return out
}
