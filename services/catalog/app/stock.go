package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// Event types the stock ledger follows after a reservation: shipped units
// become sold (fulfilment), resellable returns go back to available (trust).
var (
	ShipmentEventTypes = projection.EventTypes(&fulfilmentv1.FulfilmentShipped{}, &fulfilmentv1.FulfilmentCancelled{})
	ReturnEventTypes   = projection.EventTypes(&trustv1.ReturnReceived{})
)

// HandleStockEvent moves stock on shipments and resellable returns. Each
// product of the shipment or return gets its own command, with an id
// derived from the event and the product, so redelivery moves nothing twice
// (and the product also remembers the shipment and return ids it applied).
func (a *App) HandleStockEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	var orderID string
	var lines []domain.Line
	var command func(productID string, lines []domain.Line) domain.ProductCommand
	switch p := ev.Payload.(type) {
	case *fulfilmentv1.FulfilmentCancelled:
		return a.releaseVendorPart(ctx, rec, p.GetOrderId(), p.GetVendorId(), "fulfilment cancelled: "+p.GetReason())
	case *fulfilmentv1.FulfilmentShipped:
		orderID = p.GetOrderId()
		shipment := p.GetFulfilmentId() + "/" + p.GetShipmentId()
		for _, l := range p.GetLines() {
			lines = append(lines, domain.Line{SkuID: l.GetSkuId(), Quantity: l.GetQuantity()})
		}
		command = func(_ string, ls []domain.Line) domain.ProductCommand {
			return domain.SellStock{OrderID: orderID, ShipmentID: shipment, Lines: ls}
		}
	case *trustv1.ReturnReceived:
		if !p.GetRestock() {
			return nil // damaged or wrong: nothing goes back on the shelf
		}
		orderID = p.GetOrderId()
		for _, l := range p.GetLines() {
			lines = append(lines, domain.Line{SkuID: l.GetSkuId(), Quantity: l.GetQuantity()})
		}
		returnID := p.GetReturnId()
		command = func(_ string, ls []domain.Line) domain.ProductCommand {
			return domain.RestockReturn{OrderID: orderID, ReturnID: returnID, Lines: ls}
		}
	default:
		return nil
	}
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
			AggregateID: pid, ID: es.DeriveID(rec.ID, "stock", pid), Body: command(pid, byProduct[pid]),
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
// order whose fulfilment was cancelled (the ship-by policy). When the whole
// order is cancelled this also happens through OrderCancelled; releasing
// twice is a no-op. It matters when other parts of the order have shipped
// and the order itself stands.
func (a *App) releaseVendorPart(ctx context.Context, rec eventstore.RecordedEvent, orderID, vendorID, reason string) error {
	r, _, exists, err := a.Reservations.Load(ctx, orderID)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	for _, pid := range r.Products() {
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
