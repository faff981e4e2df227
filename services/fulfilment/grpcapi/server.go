// Package grpcapi is the gRPC edge of the fulfilment service:
// custody.fulfilment.v1.FulfilmentService. It validates requests (field
// violations with AIP paths such as "packages[0].lines[1].quantity"),
// authorizes the caller (the table in authz.go), converts between the wire
// and the app layer, and maps the service's own errors to gRPC statuses in
// one place (toStatus), the rest with pkg/apierr.FromError.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/es"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

// ServiceName is the gRPC service this package implements.
const ServiceName = "custody.fulfilment.v1.FulfilmentService"

// Server implements fulfilmentv1.FulfilmentServiceServer.
type Server struct {
	fulfilmentv1.UnimplementedFulfilmentServiceServer
	apierr.Edge[*app.Service]
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(svc, log)}
}

// ListFulfilments implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) ListFulfilments(ctx context.Context, req *fulfilmentv1.ListFulfilmentsRequest) (*fulfilmentv1.ListFulfilmentsResponse, error) {
	q, err := validateList(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	if err := s.authorizeList(ctx, caller, q); err != nil {
		return nil, err
	}
	page, err := s.App.ListFulfilments(ctx, q)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &fulfilmentv1.ListFulfilmentsResponse{NextPageToken: page.NextPageToken}
	for _, v := range page.Fulfilments {
		resp.Fulfilments = append(resp.Fulfilments, fulfilmentProto(v, false))
	}
	return resp, nil
}

// authorizeList: a vendor lists with vendor_id = itself; a buyer lists an
// order whose fulfilments are all its own.
func (s *Server) authorizeList(ctx context.Context, caller auth.Caller, q app.ListQuery) error {
	const rpc = "ListFulfilments"
	if access.AllowsAll(caller, rpc) || (q.VendorID != "" && allowed(caller, rpc, resource{vendorID: q.VendorID})) {
		return nil
	}
	if q.OrderID != "" && q.VendorID == "" && caller.Has(auth.Buyer) {
		fs, err := s.App.OrderFulfilments(ctx, q.OrderID)
		if err != nil {
			return s.toStatus(ctx, err)
		}
		mine := true
		for _, v := range fs {
			mine = mine && allowed(caller, rpc, resource{buyerID: v.Fulfilment.BuyerID})
		}
		if mine {
			return nil
		}
	}
	return apierr.PermissionDenied("vendors list only their own fulfilments (vendor_id = themselves), buyers only those of their own orders (order_id)")
}

// GetFulfilment implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) GetFulfilment(ctx context.Context, req *fulfilmentv1.GetFulfilmentRequest) (*fulfilmentv1.GetFulfilmentResponse, error) {
	v, _, err := s.readable(ctx, "GetFulfilment", validateGet(req), req.GetFulfilmentId())
	if err != nil {
		return nil, err
	}
	return &fulfilmentv1.GetFulfilmentResponse{Fulfilment: fulfilmentProto(v, true)}, nil
}

// ShipFulfilment implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) ShipFulfilment(ctx context.Context, req *fulfilmentv1.ShipFulfilmentRequest) (*fulfilmentv1.ShipFulfilmentResponse, error) {
	cmd, invalid := validateShip(req)
	_, who, err := s.readable(ctx, "ShipFulfilment", invalid, req.GetFulfilmentId())
	if err != nil {
		return nil, err
	}
	cmd.Actor, cmd.Fingerprint = who, apierr.Fingerprint(req)
	v, sid, err := s.App.ShipFulfilment(ctx, cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &fulfilmentv1.ShipFulfilmentResponse{Fulfilment: fulfilmentProto(v, true), ShipmentId: sid}, nil
}

// RecordTrackingEvent implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) RecordTrackingEvent(ctx context.Context, req *fulfilmentv1.RecordTrackingEventRequest) (*fulfilmentv1.RecordTrackingEventResponse, error) {
	cmd, err := validateScan(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	res := resource{carrier: cmd.Carrier}
	if !allowed(caller, "RecordTrackingEvent", res) {
		return nil, apierr.PermissionDenied("a carrier posts scans only for its own tracking numbers (role carrier:" + cmd.Carrier + ")")
	}
	cmd.Actor = actor(caller, res)
	cmd.RequestID, cmd.Fingerprint = req.GetRequestId(), apierr.Fingerprint(req)
	r, err := s.App.RecordScan(ctx, cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &fulfilmentv1.RecordTrackingEventResponse{FulfilmentId: r.FulfilmentID, ShipmentId: r.ShipmentID,
		Duplicate: r.Duplicate, ShipmentStatus: r.ShipmentStatus, FulfilmentState: statuses.Wire(r.Status)}, nil
}

// ConfirmReceipt implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) ConfirmReceipt(ctx context.Context, req *fulfilmentv1.ConfirmReceiptRequest) (*fulfilmentv1.ConfirmReceiptResponse, error) {
	_, who, err := s.readable(ctx, "ConfirmReceipt", validateReceipt(req), req.GetFulfilmentId())
	if err != nil {
		return nil, err
	}
	// No fingerprint: the request is its request_id and the fulfilment,
	// which scopes the command id, so the same request_id cannot come with
	// another body on the same fulfilment.
	v, err := s.App.ConfirmReceipt(ctx, req.GetFulfilmentId(), req.GetRequestId(), who)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &fulfilmentv1.ConfirmReceiptResponse{Fulfilment: fulfilmentProto(v, true)}, nil
}

// WatchFulfilments implements fulfilmentv1.FulfilmentServiceServer.
func (s *Server) WatchFulfilments(req *fulfilmentv1.WatchFulfilmentsRequest, stream fulfilmentv1.FulfilmentService_WatchFulfilmentsServer) error {
	ctx := stream.Context()
	from, err := validateWatch(req)
	if err != nil {
		return s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	if !allowed(caller, "WatchFulfilments", resource{vendorID: req.GetVendorId()}) {
		return apierr.PermissionDenied("a vendor watches only its own fulfilments (vendor_id = itself)")
	}
	err = s.App.Watch(ctx, req.GetVendorId(), from, func(m app.WatchMessage) error { return stream.Send(watchProto(m)) })
	if err != nil && ctx.Err() != nil {
		// The client went away (a failed Send says so too): not our error.
		return status.FromContextError(ctx.Err()).Err()
	}
	return s.toStatus(ctx, err)
}

// readable is the admission of an RPC on a fulfilment: a request its
// validation refused (invalid) is answered with that; for a valid one the
// fulfilment is loaded and the caller checked against rpc's row on it.
// It returns who the caller acts as.
func (s *Server) readable(ctx context.Context, rpc string, invalid error, id string) (app.View, string, error) {
	if invalid != nil {
		return app.View{}, "", s.toStatus(ctx, invalid)
	}
	v, err := s.App.GetFulfilment(ctx, id)
	if err != nil {
		return app.View{}, "", s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	res := resource{vendorID: v.Fulfilment.VendorID, buyerID: v.Fulfilment.BuyerID}
	if !allowed(caller, rpc, res) {
		return app.View{}, "", apierr.PermissionDenied("you may not " + rpcVerb[rpc] + " fulfilment " + id)
	}
	return v, actor(caller, res), nil
}

var rpcVerb = map[string]string{"GetFulfilment": "see", "ShipFulfilment": "ship", "ConfirmReceipt": "confirm receipt of"}

// toStatus is the one place where errors become gRPC statuses: the
// fulfilment service's own errors here, everything shared (bad input,
// forbidden transitions, missing resources, conflicts, a store that is
// down) by apierr.FromError, which answers anything unrecognised as
// Internal (and logs it), never Unknown.
func (s *Server) toStatus(ctx context.Context, err error) error {
	var (
		inUse  *domain.TrackingInUseError
		cursor *app.CursorError
		behind *app.BehindError
	)
	switch {
	case errors.Is(err, domain.ErrNotRequested):
		return status.Error(codes.NotFound, "fulfilment not found")
	case errors.Is(err, domain.ErrUnknownTracking):
		return status.Error(codes.NotFound, "tracking number not found")
	case errors.As(err, &inUse):
		st, derr := status.New(codes.AlreadyExists, inUse.Error()).WithDetails(&errdetails.ResourceInfo{
			ResourceType: "tracking number", ResourceName: inUse.Carrier + " " + inUse.TrackingNumber, Description: "already used"})
		if derr != nil {
			return status.Error(codes.AlreadyExists, inUse.Error())
		}
		return st.Err()
	case errors.As(err, &cursor):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "cursor", Description: cursor.Error()})
	case errors.As(err, &behind):
		return apierr.Unavailable(behind.Error())
	case errors.Is(err, app.ErrServiceStopping):
		return apierr.Unavailable("the fulfilment service is stopping; resume the watch with your last cursor")
	case errors.Is(err, es.ErrBadCommand):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "fulfilment_id", Description: "not a fulfilment id"})
	}
	return apierr.FromError(ctx, s.Log, err)
}
