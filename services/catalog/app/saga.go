package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// Actor is who the saga's commands are recorded as.
const Actor = "service:catalog"

// Saga reserves every line of a placed order or none, and releases what
// was reserved when the order is cancelled.
//
// OrderPlaced for an order whose lines are all one product's (most orders,
// and every flash-sale checkout): the product reserves it in one decision
// (domain.ReserveStock), StockHeld with StockReserved or
// StockReservationFailed, so the order is answered after one durable step.
// For an order across products, the reservation saga: record the order's
// lines on its reservation; then, product by product in sorted order, hold
// the product's lines for the order. If every product holds, complete the
// reservation (StockReserved). If one refuses (not enough stock, unknown
// SKU), release what was held and fail the reservation
// (StockReservationFailed, naming the SKU).
//
// OrderCancelled: release the order's holds on every product it names (a
// product that never saw the order records an empty release, so a
// reservation still running elsewhere for the same order cannot hold stock
// there afterwards); for an order across products, cancel its reservation
// first (ReservationCancelled if stock was not reserved yet, StockReleased
// if it was). OrderRejected needs nothing: a rejection is the answer to
// the catalog's own failure, which released everything.
//
// OrderLinesCancelled: give back the cancelled units on each product of
// the lines (domain.ReleaseLines), so the hold keeps only the rest.
//
// Every step is idempotent: a product decides an order (reserves it, holds
// for it, or fences it off) under the order's decision id
// (domain.DecisionID), which the handler applies once per order and
// product whatever the event that asks, so a replayed or re-published
// OrderPlaced, or one overtaken by its cancellation, decides nothing. The
// other command ids derive from the causing event id, a reservation is
// decided once per order, and releasing or selling what is not held
// changes nothing. So a redelivered event, a replay from the first event,
// a crash half-way and a restart all converge on the same outcome, and a
// product keeps no record of the orders that finished (see domain.Product).
type Saga struct {
	app *App
	log *slog.Logger
}

// NewSaga returns the reservation saga of app.
func NewSaga(a *App) *Saga { return &Saga{app: a, log: a.log.With("saga", "reservation")} }

// Routes are the order events the saga handles: OrderPlaced,
// OrderCancelled and OrderLinesCancelled. Redelivery is harmless.
func (s *Saga) Routes() projection.Routes {
	return projection.Routes{projection.On(s.placed), projection.On(s.cancelled), projection.On(s.linesCancelled)}
}

// linesCancelled: OrderLinesCancelled gives back the cancelled units on
// each product of the lines (ReleaseLines): at most what the product
// holds unshipped for the order, once per event (the command id derives
// from it), so a later OrderCancelled or FulfilmentCancelled releases only
// the rest.
func (s *Saga) linesCancelled(ctx context.Context, rec eventstore.RecordedEvent, ev *orderv1.OrderLinesCancelled) error {
	// Who, not why: the order's reason is the canceller's words, sealed
	// under the buyer's key; the catalog's events name no buyer.
	orderID, reason := ev.GetOrderId(), "order lines cancelled by "+ev.GetCancelledBy()
	if err := checkOrderID(orderID); err != nil {
		return err
	}
	byProduct := map[string][]domain.Line{}
	for _, l := range ev.GetLines() {
		p, ok := domain.ProductOfSKU(l.GetSkuId())
		if !ok {
			return fault.Permanent(fmt.Errorf("OrderLinesCancelled %s: sku %q names no product", orderID, l.GetSkuId()))
		}
		byProduct[p] = append(byProduct[p], domain.Line{SkuID: l.GetSkuId(), Quantity: l.GetQuantity()})
	}
	for _, p := range slices.Sorted(maps.Keys(byProduct)) {
		_, err := s.app.Products.Handle(ctx, command[domain.ProductCommand](p, s.call(rec, orderID, "release-lines", p),
			domain.ReleaseLines{OrderID: orderID, Lines: byProduct[p], Reason: reason}))
		if err != nil && !domain.IsA(err, &domain.NotFoundError{Resource: "product"}) {
			return err
		}
	}
	return nil
}

func (s *Saga) call(rec eventstore.RecordedEvent, orderID string, step ...string) Call {
	return Call{ID: es.DeriveID(append([]string{rec.ID}, step...)...), Meta: projection.CausedBy(rec, orderID, Actor)}
}

// decision is the call by which productID decides orderID: the same id for
// every event that asks (domain.DecisionID).
func (s *Saga) decision(rec eventstore.RecordedEvent, orderID, productID string) Call {
	return Call{ID: domain.DecisionID(productID, orderID), Meta: projection.CausedBy(rec, orderID, Actor)}
}

func checkOrderID(id string) error {
	if !domain.OrderIDPattern.MatchString(id) {
		return fault.Permanent(fmt.Errorf("catalog saga: order id %q is not a valid id", id))
	}
	return nil
}

// refusal is why a reservation fails.
type refusal struct {
	sku                  string
	requested, available int64
	reason               string
}

func (s *Saga) placed(ctx context.Context, rec eventstore.RecordedEvent, ev *orderv1.OrderPlaced) error {
	orderID := ev.GetOrderId()
	if err := checkOrderID(orderID); err != nil {
		return err
	}
	var placedAt time.Time // SoldHorizon is measured from it
	if ev.GetPlaceTime() != nil {
		placedAt = ev.GetPlaceTime().AsTime()
	}
	if byProduct, bad := groupLines(linesOf(ev.GetLines())); bad == nil && len(byProduct) == 1 {
		for p, lines := range byProduct {
			if done, err := s.reserveOnProduct(ctx, rec, orderID, p, lines, placedAt); done || err != nil {
				return err
			}
		}
	}
	res, err := s.app.Reservations.Handle(ctx, command[domain.ReservationCommand](orderID, s.call(rec, orderID, "request"), domain.RequestReservation{Lines: linesOf(ev.GetLines())}))
	if err != nil {
		return err
	}
	r := res.State
	if r.Status != domain.ReservationRequested {
		// Decided before (a redelivery, or the order was cancelled first).
		s.log.DebugContext(ctx, "order already handled", "order_id", orderID, "reservation", r.Status)
		return nil
	}

	byProduct, bad := groupLines(r.Lines)
	if bad != nil {
		return s.fail(ctx, rec, orderID, nil, bad)
	}
	var held []string
	for _, p := range slices.Sorted(maps.Keys(byProduct)) {
		hres, err := s.app.Products.Handle(ctx, command[domain.ProductCommand](p, s.decision(rec, orderID, p),
			domain.HoldStock{OrderID: orderID, Lines: byProduct[p], PlacedAt: placedAt}))
		ref, err := holdOutcome(p, orderID, byProduct[p], hres.State, err)
		if err != nil {
			return err // infrastructure: retry the whole event; what is done stays done
		}
		if ref != nil {
			return s.fail(ctx, rec, orderID, held, ref)
		}
		held = append(held, p)
	}

	_, err = s.app.Reservations.Handle(ctx, command[domain.ReservationCommand](orderID, s.call(rec, orderID, "complete"),
		domain.CompleteReservation{Now: s.app.clock.Now()}))
	var rule *domain.RuleError
	if errors.As(err, &rule) {
		// Cancelled (or failed by a concurrent run) while we were holding.
		s.log.InfoContext(ctx, "reservation closed while holding; releasing", "order_id", orderID, "reason", rule.Reason)
		return s.release(ctx, rec, orderID, held, "reservation "+rule.Message, false)
	}
	if err == nil {
		s.log.DebugContext(ctx, "stock reserved", "order_id", orderID, "products", len(held))
	}
	return err
}

// reserveOnProduct has the order's one product reserve it. done is false
// when the product cannot record an answer (it does not exist, or the
// lines are malformed): the reservation saga then records the failure.
func (s *Saga) reserveOnProduct(ctx context.Context, rec eventstore.RecordedEvent, orderID, productID string, lines []domain.Line, placedAt time.Time) (done bool, err error) {
	_, err = s.app.Products.Handle(ctx, command[domain.ProductCommand](productID, s.decision(rec, orderID, productID),
		domain.ReserveStock{OrderID: orderID, Lines: lines, PlacedAt: placedAt, Now: s.app.clock.Now()}))
	var missing *domain.NotFoundError
	var invalid *domain.ValidationError
	if errors.As(err, &missing) || errors.As(err, &invalid) {
		return false, nil
	}
	return err == nil, err
}

// groupLines splits an order's lines by product; a line that names no
// product or asks for no units refuses the whole order.
func groupLines(lines []domain.Line) (map[string][]domain.Line, *refusal) {
	if len(lines) == 0 {
		return nil, &refusal{reason: "the order has no lines"}
	}
	out := map[string][]domain.Line{}
	for _, l := range lines {
		p, ok := domain.ProductOfSKU(l.SkuID)
		switch {
		case !ok:
			return nil, &refusal{sku: l.SkuID, requested: l.Quantity, reason: fmt.Sprintf("sku %s: no such sku", l.SkuID)}
		case l.Quantity <= 0 || l.Quantity > domain.MaxUnits:
			return nil, &refusal{sku: l.SkuID, requested: l.Quantity, reason: fmt.Sprintf("sku %s: quantity %d is not orderable", l.SkuID, l.Quantity)}
		}
		out[p] = append(out[p], l)
	}
	return out, nil
}

// holdOutcome classifies the result of holding one product: held (nil,
// nil), refused (a refusal) or not known (an error to retry).
func holdOutcome(productID, orderID string, lines []domain.Line, p domain.Product, err error) (*refusal, error) {
	var short *domain.InsufficientStockError
	var missing *domain.NotFoundError
	var invalid *domain.ValidationError
	switch {
	case errors.As(err, &short):
		return &refusal{sku: short.SkuID, requested: short.Requested, available: short.Available, reason: short.Error()}, nil
	case errors.As(err, &missing):
		sku := lines[0].SkuID
		if missing.Resource == "sku" {
			sku = missing.ID
		}
		return &refusal{sku: sku, requested: domain.Quantity(lines, sku), reason: fmt.Sprintf("sku %s: no such sku", sku)}, nil
	case errors.As(err, &invalid):
		return &refusal{sku: lines[0].SkuID, requested: lines[0].Quantity, reason: invalid.Error()}, nil
	case domain.IsA(err, domain.ErrProductArchived):
		k, _ := p.SKU(lines[0].SkuID) // available as it is: the refusal is no shortfall
		return &refusal{sku: lines[0].SkuID, requested: lines[0].Quantity, available: k.Available, reason: err.Error()}, nil
	case err != nil:
		return nil, err
	}
	switch h := p.HoldFor(orderID); h.Status {
	case domain.HoldHeld, domain.HoldSold:
		return nil, nil
	default:
		// Released earlier (and perhaps no longer kept): the order was
		// cancelled meanwhile, or an earlier attempt failed. All or
		// nothing: this refuses the order.
		return &refusal{sku: lines[0].SkuID, requested: lines[0].Quantity,
			reason: fmt.Sprintf("product %s: stock for order %s was already released", productID, orderID)}, nil
	}
}

// fail releases what was held and records the failure.
func (s *Saga) fail(ctx context.Context, rec eventstore.RecordedEvent, orderID string, held []string, ref *refusal) error {
	if err := s.release(ctx, rec, orderID, held, "reservation failed: "+ref.reason, false); err != nil {
		return err
	}
	_, err := s.app.Reservations.Handle(ctx, command[domain.ReservationCommand](orderID, s.call(rec, orderID, "fail"), domain.FailReservation{
		SkuID: ref.sku, Requested: ref.requested, Available: ref.available, Reason: ref.reason, Now: s.app.clock.Now(),
	}))
	if domain.IsA(err, domain.ErrReservationClosed) {
		s.log.WarnContext(ctx, "reservation decided elsewhere; not failing it", "order_id", orderID, "err", err)
		return nil
	}
	if err == nil {
		s.log.InfoContext(ctx, "stock reservation failed", "order_id", orderID, "reason", ref.reason)
	}
	return err
}

// release gives back the order's holds on products (idempotent). With
// fence (the order went away) it first fences the order off on each
// product, under its decision id, so a product that has not decided the
// order yet never will.
func (s *Saga) release(ctx context.Context, rec eventstore.RecordedEvent, orderID string, products []string, reason string, fence bool) error {
	for _, p := range products {
		if fence {
			_, err := s.app.Products.Handle(ctx, command[domain.ProductCommand](p, s.decision(rec, orderID, p),
				domain.FenceOrder{OrderID: orderID, Reason: reason}))
			if domain.IsA(err, &domain.NotFoundError{Resource: "product"}) {
				continue
			}
			if err != nil {
				return err
			}
		}
		_, err := s.app.Products.Handle(ctx, command[domain.ProductCommand](p, s.call(rec, orderID, "release", p),
			domain.ReleaseStock{OrderID: orderID, Reason: reason}))
		if err != nil && !domain.IsA(err, &domain.NotFoundError{Resource: "product"}) {
			return err
		}
	}
	return nil
}

func (s *Saga) cancelled(ctx context.Context, rec eventstore.RecordedEvent, ev *orderv1.OrderCancelled) error {
	// Who, not why (see linesCancelled).
	orderID, reason := ev.GetOrderId(), "order cancelled by "+ev.GetCancelledBy()
	if err := checkOrderID(orderID); err != nil {
		return err
	}
	products := ev.GetProductIds()
	if len(products) == 1 {
		// Reserved (or not yet) by its one product.
		return s.release(ctx, rec, orderID, products, reason, true)
	}
	res, err := s.app.Reservations.Handle(ctx, command[domain.ReservationCommand](orderID, s.call(rec, orderID, "cancel"),
		domain.CancelReservation{Reason: reason, Now: s.app.clock.Now()}))
	if err != nil {
		return err
	}
	r := res.State
	if r.Status == domain.ReservationFailed {
		return nil // the failure released everything already
	}
	// Cancelled or released now: make sure no product keeps (or later takes)
	// stock for the order. Runs again on redelivery, harmlessly.
	return s.release(ctx, rec, orderID, r.Products(), reason, true)
}
