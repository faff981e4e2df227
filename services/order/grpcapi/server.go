// Package grpcapi is the gRPC edge of the order service:
// custody.order.v1.OrderService. It validates requests (field violations
// with AIP paths such as "lines[2].quantity"), authorizes the caller (see
// the table in authz.go), converts between the wire and the app layer, and
// maps every error to a gRPC status in one place (toStatus, then the
// mapping every service shares, apierr.FromError).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/es"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// Server implements orderv1.OrderServiceServer.
type Server struct {
	orderv1.UnimplementedOrderServiceServer
	apierr.Edge[*app.Service]
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(svc, log)}
}

// PlaceOrder implements orderv1.OrderServiceServer.
func (s *Server) PlaceOrder(ctx context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	caller, _ := auth.CallerFrom(ctx)
	cmd, err := validatePlace(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if !allowed(caller, "PlaceOrder", cmd.BuyerID) {
		return nil, apierr.PermissionDenied("only the buyer " + cmd.BuyerID + " or a service acting for it may place its orders")
	}
	cmd.Actor = actor(caller, cmd.BuyerID)
	// wait_timeout only says how long to wait for the outcome, not what
	// is asked: a retry may wait longer or not at all.
	cmd.Fingerprint = apierr.Fingerprint(req, "wait_timeout")
	v, err := s.App.PlaceOrder(ctx, cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.PlaceOrderResponse{Order: orderProto(v)}, nil
}

// GetOrder implements orderv1.OrderServiceServer.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	v, caller, err := s.readable(ctx, "GetOrder", validateGet(req), req.GetOrderId())
	if err != nil {
		return nil, err
	}
	return &orderv1.GetOrderResponse{Order: orderFor(caller, v)}, nil
}

// ListOrders implements orderv1.OrderServiceServer.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	q, err := validateList(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	if !listAllowed(caller, q) {
		return nil, apierr.PermissionDenied("buyers list only their own orders (buyer_id = themselves), vendors only orders with a part for them (vendor_id), creators only orders attributed to them (creator_id); only support, platform and service list without")
	}
	page, err := s.App.ListOrders(ctx, q)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &orderv1.ListOrdersResponse{NextPageToken: page.NextPageToken}
	for _, v := range page.Orders {
		resp.Orders = append(resp.Orders, orderFor(caller, v))
	}
	return resp, nil
}

// CancelOrder implements orderv1.OrderServiceServer.
func (s *Server) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	cur, caller, err := s.readable(ctx, "CancelOrder", validateCancel(req), req.GetOrderId())
	if err != nil {
		return nil, err
	}
	v, err := s.App.CancelOrder(ctx, app.CancelOrder{OrderID: req.GetOrderId(), RequestID: req.GetRequestId(),
		Reason: req.GetReason(), Actor: actor(caller, cur.Order.BuyerID), Fingerprint: apierr.Fingerprint(req)})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.CancelOrderResponse{Order: orderProto(v)}, nil
}

// CancelOrderLines implements orderv1.OrderServiceServer.
func (s *Server) CancelOrderLines(ctx context.Context, req *orderv1.CancelOrderLinesRequest) (*orderv1.CancelOrderLinesResponse, error) {
	lines, invalid := validateCancelLines(req)
	cur, caller, err := s.readable(ctx, "CancelOrderLines", invalid, req.GetOrderId())
	if err != nil {
		return nil, err
	}
	vendor := vendorOnly(caller, "CancelOrderLines", cur.Order)
	v, err := s.App.CancelOrderLines(ctx, app.CancelOrderLines{OrderID: req.GetOrderId(), RequestID: req.GetRequestId(),
		Lines: lines, VendorID: req.GetVendorId(), Reason: req.GetReason(), Vendor: vendor,
		Actor:       auth.Actor(caller, actorKinds, auth.Role{Kind: auth.Buyer, ID: cur.Order.BuyerID}, auth.Role{Kind: auth.Vendor, ID: vendor}),
		Fingerprint: apierr.Fingerprint(req)})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.CancelOrderLinesResponse{Order: orderFor(caller, v)}, nil
}

// ChangeShippingAddress implements orderv1.OrderServiceServer.
func (s *Server) ChangeShippingAddress(ctx context.Context, req *orderv1.ChangeShippingAddressRequest) (*orderv1.ChangeShippingAddressResponse, error) {
	cur, caller, err := s.readable(ctx, "ChangeShippingAddress", validateChangeAddress(req), req.GetOrderId())
	if err != nil {
		return nil, err
	}
	v, err := s.App.ChangeShippingAddress(ctx, app.ChangeShippingAddress{OrderID: req.GetOrderId(), RequestID: req.GetRequestId(),
		Address: req.GetShippingAddress(), Actor: actor(caller, cur.Order.BuyerID), Fingerprint: apierr.Fingerprint(req)})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.ChangeShippingAddressResponse{Order: orderProto(v)}, nil
}

// readable is the admission of an RPC on an order: a request its
// validation refused (invalid) is answered with that; for a valid one the
// order is loaded and the caller, returned with it, checked against rpc's
// row on it.
func (s *Server) readable(ctx context.Context, rpc string, invalid error, id string) (app.OrderView, auth.Caller, error) {
	caller, _ := auth.CallerFrom(ctx)
	if invalid != nil {
		return app.OrderView{}, caller, s.toStatus(ctx, invalid)
	}
	v, err := s.App.GetOrder(ctx, id)
	if err != nil {
		return app.OrderView{}, caller, s.toStatus(ctx, err)
	}
	vendors := make([]string, 0, len(v.Order.Parts))
	for _, p := range v.Order.Parts {
		vendors = append(vendors, p.VendorID)
	}
	if !allowed(caller, rpc, v.Order.BuyerID, vendors...) {
		return app.OrderView{}, caller, apierr.PermissionDenied("you may not " + rpcVerb[rpc] + " order " + id)
	}
	return v, caller, nil
}

var rpcVerb = map[string]string{"GetOrder": "see", "CancelOrder": "cancel", "CancelOrderLines": "cancel lines of",
	"ChangeShippingAddress": "change the address of"}

// toStatus is the one place where errors become gRPC statuses: the order
// service's own failures here, everything every service shares (bad input,
// forbidden transitions, missing orders, conflicts, a dead store) in
// apierr.FromError, which logs and hides anything unforeseen as Internal.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, app.ErrCatalogUnavailable):
		return apierr.Unavailable("the order service cannot price orders yet (its view of the catalog is not ready); retry shortly")
	case errors.Is(err, domain.ErrNotPlaced):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, domain.ErrOtherVendor):
		return apierr.PermissionDenied("a vendor may cancel only its own part's lines: " + err.Error())
	case errors.Is(err, es.ErrBadCommand):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "order_id", Description: "not an order id"})
	}
	return apierr.FromError(ctx, s.Log, err)
}
