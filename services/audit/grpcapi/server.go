// Package grpcapi is the gRPC edge of the audit service:
// custody.audit.v1.AuditService. It validates requests (field violations
// with AIP paths), authorizes the caller (the table in authz.go), converts
// the app layer's answers to the wire, and maps every error to a gRPC
// status in one place (toStatus: the audit's own codes, then
// apierr.FromError for what every service shares).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
)

// ServiceName is the gRPC service this package implements.
const ServiceName = "custody.audit.v1.AuditService"

// Server implements auditv1.AuditServiceServer.
type Server struct {
	auditv1.UnimplementedAuditServiceServer
	apierr.Edge[*app.Service]
	// Parked lists the events consumer (every consumer: "") parked on the
	// dead-letter stream, oldest first. The module wires it to the bus, so
	// this package knows no transport; nil answers Unimplemented.
	Parked func(ctx context.Context, consumer string) ([]*auditv1.ParkedEvent, error)
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(svc, log)}
}

// GetOrderTimeline implements auditv1.AuditServiceServer.
func (s *Server) GetOrderTimeline(ctx context.Context, req *auditv1.GetOrderTimelineRequest) (*auditv1.GetOrderTimelineResponse, error) {
	allow, err := admit(ctx, "GetOrderTimeline", validateTimeline(req))
	if err != nil {
		return nil, err
	}
	tl, err := s.App.Timeline(ctx, app.TimelineQuery{OrderID: req.GetOrderId(), PageSize: int(req.GetPageSize()),
		PageToken: req.GetPageToken(), Allow: allow})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &auditv1.GetOrderTimelineResponse{NextPageToken: tl.NextPageToken, Streams: tl.Streams, TotalSize: int32(tl.Total)}
	for _, e := range tl.Events {
		resp.Events = append(resp.Events, timelineEventProto(e))
	}
	return resp, nil
}

// VerifyOrderChain implements auditv1.AuditServiceServer.
func (s *Server) VerifyOrderChain(ctx context.Context, req *auditv1.VerifyOrderChainRequest) (*auditv1.VerifyOrderChainResponse, error) {
	allow, err := admit(ctx, "VerifyOrderChain", validateVerify(req))
	if err != nil {
		return nil, err
	}
	v, err := s.App.Verify(ctx, req.GetOrderId(), allow)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return verificationProto(v), nil
}

// ReplayOrder implements auditv1.AuditServiceServer.
func (s *Server) ReplayOrder(ctx context.Context, req *auditv1.ReplayOrderRequest) (*auditv1.ReplayOrderResponse, error) {
	allow, err := admit(ctx, "ReplayOrder", validateReplay(req))
	if err != nil {
		return nil, err
	}
	var asOf time.Time // zero: now
	if req.GetAsOf() != nil {
		asOf = req.GetAsOf().AsTime()
	}
	r, err := s.App.Replay(ctx, req.GetOrderId(), asOf, allow)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	// The replayed order holds its address as the events do (tokens): show
	// it as a person may see it, "[erased]" after an erasure.
	resp, err := reveal(ctx, s.App, replayProto(r))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return resp, nil
}

// admit is an RPC's admission: a request its validation refused (invalid)
// is answered with that; then a caller no order could be shown to is
// refused at once, and the others get the per-order check.
func admit(ctx context.Context, rpc string, invalid error) (app.Allow, error) {
	if invalid != nil {
		return nil, invalid
	}
	caller, _ := auth.CallerFrom(ctx)
	if !access.MayCall(caller, rpc) {
		return nil, apierr.PermissionDenied("the audit trail is for support and platform staff (buyers may verify their own orders)")
	}
	return func(o app.OrderInfo) error {
		if !allowed(caller, rpc, o.BuyerID) {
			return apierr.PermissionDenied("you may not audit order " + o.OrderID)
		}
		return nil
	}, nil
}

// ListParkedEvents implements auditv1.AuditServiceServer.
func (s *Server) ListParkedEvents(ctx context.Context, req *auditv1.ListParkedEventsRequest) (*auditv1.ListParkedEventsResponse, error) {
	if _, err := admit(ctx, "ListParkedEvents", validateParked(req)); err != nil {
		return nil, err
	}
	if s.Parked == nil {
		return nil, status.Error(codes.Unimplemented, "no dead-letter stream is reachable from this process")
	}
	ps, err := s.Parked(ctx, req.GetConsumer())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &auditv1.ListParkedEventsResponse{Parked: ps}, nil
}

// RedriveParkedEvent implements auditv1.AuditServiceServer.
func (s *Server) RedriveParkedEvent(ctx context.Context, req *auditv1.RedriveParkedEventRequest) (*auditv1.RedriveParkedEventResponse, error) {
	if _, err := admit(ctx, "RedriveParkedEvent", validateRedrive(req)); err != nil {
		return nil, err
	}
	caller, _ := auth.CallerFrom(ctx)
	r, err := s.App.Redrive(ctx, app.RedriveCommand{
		RequestID: req.GetRequestId(), Fingerprint: apierr.Fingerprint(req), Actor: auth.Actor(caller, []auth.Kind{auth.Support, auth.Platform}),
		Consumer: req.GetConsumer(), EventID: req.GetEventId(), Sequence: req.GetDeadLetterSequence(), Reason: req.GetReason(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &auditv1.RedriveParkedEventResponse{Parked: r.Record.Parked, AlreadyRedriven: r.AlreadyRedriven}, nil
}

// toStatus is the one place where errors become gRPC statuses: the audit's
// own (an index that cannot catch up in time), then apierr.FromError.
func (s *Server) toStatus(ctx context.Context, err error) error {
	if errors.Is(err, app.ErrIndexBehind) {
		return apierr.Unavailable("the audit index is still catching up with the event stores; retry shortly")
	}
	if errors.Is(err, app.ErrUnrevealable) {
		return status.Error(codes.DataLoss, err.Error())
	}
	if errors.Is(err, app.ErrRedriveUnavailable) {
		return apierr.Unavailable("redrive is not available in this process (read-only, or no dead-letter stream)")
	}
	return apierr.FromError(ctx, s.Log, err)
}
