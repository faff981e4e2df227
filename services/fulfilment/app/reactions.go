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
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// OrderConsumer is the durable consumer through which fulfilment learns of
// confirmed and cancelled orders, cancelled lines and changed addresses.
const OrderConsumer = "fulfilment-on-order"

// OrderRoutes are how the service reacts to the order service. Command ids
// are derived from the event id and the fulfilment ids from order and
// vendor, so redelivery creates nothing twice.
func (s *Service) OrderRoutes() projection.Routes {
	return projection.Routes{projection.On(s.requestFulfilments), projection.On(s.cancelFulfilments),
		projection.On(s.removeLines), projection.On(s.changeAddress)}
}

// requestFulfilments: OrderConfirmed requests one fulfilment per vendor
// part (ship-by = confirm time + the vendor's handling time, or
// HandlingTime for a vendor that set none).
func (s *Service) requestFulfilments(ctx context.Context, rec eventstore.RecordedEvent, p *orderv1.OrderConfirmed) error {
	confirmed := s.d.Clock.Now()
	if p.GetConfirmTime() != nil {
		// The deadline runs from the confirmation, however late we hear of it.
		confirmed = p.GetConfirmTime().AsTime()
	}
	lines := map[string]*orderv1.OrderLine{}
	for _, l := range p.GetLines() {
		lines[l.GetLineId()] = l
	}
	for _, part := range p.GetParts() {
		handling, err := s.handlingTime(ctx, part.GetVendorId())
		if err != nil {
			return err
		}
		cmd := domain.RequestFulfilment{OrderID: p.GetOrderId(), VendorID: part.GetVendorId(), BuyerID: p.GetBuyerId(),
			Address: p.GetShippingAddress(), ShipBy: confirmed.Add(handling), Time: s.d.Clock.Now()}
		for _, id := range part.GetLineIds() {
			l, ok := lines[id]
			if !ok {
				return fault.Permanent(fmt.Errorf("order %s: part of vendor %s names line %s, which the order does not have", p.GetOrderId(), part.GetVendorId(), id))
			}
			cmd.Lines = append(cmd.Lines, domain.Line{LineID: id, SKUID: l.GetSkuId(), Quantity: l.GetQuantity()})
		}
		fid := domain.FulfilmentID(p.GetOrderId(), part.GetVendorId())
		_, err = s.h.Handle(ctx, es.Command[domain.Command]{
			AggregateID: fid, ID: es.DeriveID("request", rec.ID, fid), Body: cmd,
			Meta: es.Meta{CorrelationID: p.GetOrderId(), Actor: "service:fulfilment"},
		})
		var invalid *domain.InvalidError
		switch {
		case errors.As(err, &invalid), errors.Is(err, es.ErrBadCommand):
			return fault.Permanent(fmt.Errorf("OrderConfirmed %s: %w", p.GetOrderId(), err))
		case err != nil:
			return err
		}
	}
	return nil
}

// cancelFulfilments: OrderCancelled cancels the order's fulfilments that
// have not shipped.
func (s *Service) cancelFulfilments(ctx context.Context, rec eventstore.RecordedEvent, p *orderv1.OrderCancelled) error {
	vendors, err := s.orderVendors(ctx, p.GetOrderId())
	if err != nil {
		return err
	}
	// Who, not why: the order's reason is the canceller's words, sealed
	// under the buyer's key, and stays on the order's event.
	reason := "order cancelled by " + p.GetCancelledBy()
	for _, vendor := range vendors {
		fid := domain.FulfilmentID(p.GetOrderId(), vendor)
		_, err := s.h.Handle(ctx, es.Command[domain.Command]{
			AggregateID: fid, ID: es.DeriveID("cancel", rec.ID, fid),
			Body: domain.CancelFulfilment{Reason: reason, Time: s.d.Clock.Now()},
			Meta: es.Meta{CorrelationID: p.GetOrderId(), Actor: "service:fulfilment"},
		})
		var pre *domain.PreconditionError
		switch {
		case errors.Is(err, domain.ErrNotRequested):
			// Never confirmed (cancelled while pending): nothing to cancel.
		case errors.As(err, &pre):
			// It shipped first; the order service refuses such cancels, so
			// this is a race the vendor and support settle. The shipment
			// stands.
			s.d.Logger.Warn("order cancelled after its part shipped; the fulfilment stands",
				"order", p.GetOrderId(), "fulfilment", fid, "reason", pre.Message)
		case err != nil:
			return err
		}
	}
	return nil
}

// removeLines: OrderLinesCancelled drops the cancelled units from each
// vendor's fulfilment (closing one with nothing left). The catalog and
// payouts act on the order's event, so the fulfilment records only what
// it will not ship.
func (s *Service) removeLines(ctx context.Context, rec eventstore.RecordedEvent, p *orderv1.OrderLinesCancelled) error {
	byVendor := map[string][]domain.Line{}
	var vendors []string
	for _, l := range p.GetLines() {
		if _, ok := byVendor[l.GetVendorId()]; !ok {
			vendors = append(vendors, l.GetVendorId())
		}
		byVendor[l.GetVendorId()] = append(byVendor[l.GetVendorId()], domain.Line{LineID: l.GetLineId(), SKUID: l.GetSkuId(), Quantity: l.GetQuantity()})
	}
	for _, vendor := range vendors {
		err := s.onOrderFulfilment(ctx, rec, p.GetOrderId(), vendor, "remove-lines",
			domain.RemoveLines{Lines: byVendor[vendor], Reason: "order lines cancelled by " + p.GetCancelledBy(), Time: s.d.Clock.Now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// changeAddress: OrderAddressChanged moves every fulfilment of the order
// that has not shipped to the new address.
func (s *Service) changeAddress(ctx context.Context, rec eventstore.RecordedEvent, p *orderv1.OrderAddressChanged) error {
	vendors, err := s.orderVendors(ctx, p.GetOrderId())
	if err != nil {
		return err
	}
	for _, vendor := range vendors {
		err := s.onOrderFulfilment(ctx, rec, p.GetOrderId(), vendor, "change-address",
			domain.ChangeAddress{Address: p.GetShippingAddress(), Time: s.d.Clock.Now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// onOrderFulfilment runs cmd, which an order event (rec) calls for, on the
// vendor's fulfilment of the order. A fulfilment never requested (the
// order was not confirmed) has nothing to change; one that shipped or was
// cancelled first keeps what it has: the order refuses these changes
// after a shipment, so this is a race the vendor and support settle.
func (s *Service) onOrderFulfilment(ctx context.Context, rec eventstore.RecordedEvent, orderID, vendor, kind string, cmd domain.Command) error {
	fid := domain.FulfilmentID(orderID, vendor)
	_, err := s.h.Handle(ctx, es.Command[domain.Command]{
		AggregateID: fid, ID: es.DeriveID(kind, rec.ID, fid), Body: cmd,
		Meta: es.Meta{CorrelationID: orderID, Actor: "service:fulfilment"},
	})
	var pre *domain.PreconditionError
	switch {
	case errors.Is(err, domain.ErrNotRequested):
		s.d.Logger.Warn("an order change for a fulfilment never requested; nothing to change", "order", orderID, "fulfilment", fid, "event", rec.Type)
	case errors.As(err, &pre):
		s.d.Logger.Warn("an order change after its part shipped or was cancelled; the fulfilment stands",
			"order", orderID, "fulfilment", fid, "event", rec.Type, "reason", pre.Message)
	case err != nil:
		return err
	}
	return nil
}

// orderVendors reads the vendors of an order from its OrderPlaced, in the
// order service's stream.
func (s *Service) orderVendors(ctx context.Context, orderID string) ([]string, error) {
	ev, ok, err := s.orders.First(ctx, "order", orderID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("order %s: no such order stream", orderID))
	}
	placed, ok := ev.Payload.(*orderv1.OrderPlaced)
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("order %s starts with %s, not OrderPlaced", orderID, proto.MessageName(ev.Payload)))
	}
	var vendors []string
	for _, part := range placed.GetParts() {
		if !slices.Contains(vendors, part.GetVendorId()) {
			vendors = append(vendors, part.GetVendorId())
		}
	}
	return vendors, nil
}
