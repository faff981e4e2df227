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
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/order/domain"
)

// The reactions through which the order follows what happens to its parts
// after confirmation: shipments, deliveries and cancellations
// (fulfilment), refunds (trust), settlements (payouts). Their names are
// those of their durable consumers.
const (
	FulfilmentConsumer = "order-on-fulfilment"
	TrustConsumer      = "order-on-trust"
	PayoutsConsumer    = "order-on-payouts"
)

// PayoutsAggregates are the payouts aggregates whose events the order
// follows: the order ledger (FundsReleased).
var PayoutsAggregates = []string{"orderledger"}

// TrustAggregates are the trust aggregates whose events the order follows:
// claims (RefundIssued). Not vendor trust, which records facts at every
// step of every fulfilment.
var TrustAggregates = []string{"claims"}

// FulfilmentRoutes are how the order follows its parts' fulfilment.
func (s *Service) FulfilmentRoutes() projection.Routes {
	return projection.Routes{projection.On(s.partShipped), projection.On(s.partDelivered), projection.On(s.partCancelled)}
}

// partShipped: a part shipped (the order can no longer be cancelled).
func (s *Service) partShipped(ctx context.Context, rec eventstore.RecordedEvent, p *fulfilmentv1.FulfilmentShipped) error {
	return s.react(ctx, rec, p.GetOrderId(), "shipped",
		domain.MarkPartShipped{VendorID: p.GetVendorId(), ShipmentID: p.GetFulfilmentId() + "/" + p.GetShipmentId(), Time: p.GetShipTime().AsTime()})
}

// partDelivered: a part was delivered (the last one kept makes the order
// DELIVERED).
func (s *Service) partDelivered(ctx context.Context, rec eventstore.RecordedEvent, p *fulfilmentv1.FulfilmentDelivered) error {
	return s.react(ctx, rec, p.GetOrderId(), "delivered",
		domain.MarkPartDelivered{VendorID: p.GetVendorId(), FulfilmentID: p.GetFulfilmentId(), WithProof: p.GetWithProof(), Time: p.GetDeliverTime().AsTime()})
}

// partCancelled: fulfilment cancelled a part before it shipped (its
// ship-by policy, or the fulfilments of an order cancelled whole): the
// order records that part cancelled (OrderPartCancelled), and only that
// part; the others go on. Payouts and the catalog act on fulfilment's
// event itself. A part that shipped meanwhile stays shipped.
func (s *Service) partCancelled(ctx context.Context, rec eventstore.RecordedEvent, p *fulfilmentv1.FulfilmentCancelled) error {
	err := s.react(ctx, rec, p.GetOrderId(), "part-cancelled", domain.RecordPartCancelled{VendorID: p.GetVendorId(),
		FulfilmentID: p.GetFulfilmentId(), Reason: p.GetReason(), By: "service:fulfilment", Time: p.GetCancelTime().AsTime()})
	var pe *domain.PreconditionError
	if errors.As(err, &pe) {
		// A shipment is a fact: the cancellation came too late.
		s.d.Logger.Warn("fulfilment cancelled a part the order has as shipped; not recorded", "order", p.GetOrderId(),
			"vendor", p.GetVendorId(), "reason", pe.Message)
		return nil
	}
	return err
}

// TrustRoutes record refunds on the order.
func (s *Service) TrustRoutes() projection.Routes {
	return projection.Routes{projection.On(s.refundIssued)}
}

// refundIssued records a refund on the order, its vendor's part and its
// lines' units (REFUNDED when everything captured went back).
func (s *Service) refundIssued(ctx context.Context, rec eventstore.RecordedEvent, p *trustv1.RefundIssued) error {
	amount, err := money.FromProto(p.GetAmount())
	if err != nil {
		return fault.Permanent(fmt.Errorf("refund %s: %w", p.GetRefundId(), err))
	}
	cmd := domain.RecordRefund{RefundID: p.GetRefundId(), Amount: amount, VendorID: p.GetVendorId(), Time: p.GetRefundTime().AsTime()}
	for _, l := range p.GetLines() {
		cmd.Lines = append(cmd.Lines, domain.RefundLine{LineID: l.GetLineId(), Quantity: l.GetQuantity(),
			Amount: money.Money{Currency: l.GetAmount().GetCurrencyCode(), Minor: l.GetAmount().GetAmountMinor()}})
	}
	return s.react(ctx, rec, p.GetOrderId(), "refund", cmd)
}

// PayoutsRoutes record the parts payouts settled.
func (s *Service) PayoutsRoutes() projection.Routes {
	return projection.Routes{projection.On(s.fundsReleased)}
}

// fundsReleased: a delivered part's return window closed with no claim
// open and payouts released its money — also a part refunded in full,
// whose release moves nothing. The part is settled; the last one makes
// the order COMPLETED.
func (s *Service) fundsReleased(ctx context.Context, rec eventstore.RecordedEvent, p *payoutsv1.FundsReleased) error {
	return s.react(ctx, rec, p.GetOrderId(), "settled", domain.MarkPartSettled{VendorID: p.GetVendorId(), Time: p.GetReleaseTime().AsTime()})
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
