package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/order/domain"
)

// The reactions through which the order follows what happens to it after
// confirmation: shipments and deliveries (fulfilment), refunds (trust).
// Their names are those of their durable consumers.
const (
	FulfilmentConsumer = "order-on-fulfilment"
	TrustConsumer      = "order-on-trust"
)

// FulfilmentEventTypes and TrustEventTypes are the events those reactions
// handle.
var (
	FulfilmentEventTypes = projection.EventTypes(
		&fulfilmentv1.FulfilmentShipped{},
		&fulfilmentv1.FulfilmentDelivered{},
		&fulfilmentv1.FulfilmentCancelled{},
	)
	TrustEventTypes = projection.EventTypes(&trustv1.RefundIssued{})
)

// HandleFulfilmentEvent: a part shipped (the order can no longer be
// cancelled), a part was delivered (the last one makes the order
// DELIVERED), or fulfilment cancelled a part before it shipped (ship-by
// deadline policy), which cancels the order if nothing of it has shipped.
func (s *Service) HandleFulfilmentEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	var orderID, kind string
	var body domain.Command
	switch p := ev.Payload.(type) {
	case *fulfilmentv1.FulfilmentShipped:
		orderID, kind = p.GetOrderId(), "shipped"
		body = domain.MarkPartShipped{VendorID: p.GetVendorId(), ShipmentID: p.GetFulfilmentId() + "/" + p.GetShipmentId(), Time: p.GetShipTime().AsTime()}
	case *fulfilmentv1.FulfilmentDelivered:
		orderID, kind = p.GetOrderId(), "delivered"
		body = domain.MarkPartDelivered{VendorID: p.GetVendorId(), FulfilmentID: p.GetFulfilmentId(), WithProof: p.GetWithProof(), Time: p.GetDeliverTime().AsTime()}
	case *fulfilmentv1.FulfilmentCancelled:
		orderID, kind = p.GetOrderId(), "part-cancelled"
		body = domain.CancelOrder{Reason: "fulfilment cancelled: " + p.GetReason(), By: "service:fulfilment", Time: p.GetCancelTime().AsTime()}
	default:
		return nil
	}
	err = s.react(ctx, rec, orderID, kind, body)
	var pe *domain.PreconditionError
	if kind == "part-cancelled" && errors.As(err, &pe) {
		// Another part has shipped: the order stands; the unshipped part's
		// money goes back through a claim or refund, not a cancellation.
		s.d.Logger.Warn("fulfilment cancelled a part of an order that has shipped parts; order kept", "order", orderID, "reason", pe.Message)
		return nil
	}
	return err
}

// HandleTrustEvent records refunds on the order (REFUNDED when in full).
func (s *Service) HandleTrustEvent(ctx context.Context, rec eventstore.RecordedEvent) error {
	ev, err := projection.Decode(rec)
	if err != nil {
		return err
	}
	p, ok := ev.Payload.(*trustv1.RefundIssued)
	if !ok {
		return nil
	}
	amount, err := money.FromProto(p.GetAmount())
	if err != nil {
		return fault.Permanent(fmt.Errorf("refund %s: %w", p.GetRefundId(), err))
	}
	return s.react(ctx, rec, p.GetOrderId(), "refund", domain.RecordRefund{RefundID: p.GetRefundId(), Amount: amount, Time: p.GetRefundTime().AsTime()})
}

// react runs the command another service's event calls for. Its id is
// derived from the event's id, so a redelivered event (or one handled again
// after a restart) appends nothing. An event about an order that does not
// exist cannot succeed later: it is parked (fault.Permanent) where audit
// sees it, not retried.
func (s *Service) react(ctx context.Context, rec eventstore.RecordedEvent, orderID, kind string, body domain.Command) error {
	_, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: orderID, ID: es.DeriveID(kind, rec.ID), Body: body,
		Meta: projection.CausedBy(rec, orderID, "service:order"),
	})
	if errors.Is(err, domain.ErrNotPlaced) || errors.Is(err, es.ErrBadCommand) {
		return fault.Permanent(fmt.Errorf("%s for order %q: %w", rec.Type, orderID, err))
	}
	if err == nil {
		s.notifier.notify(orderID)
	}
	return err
}
