// Package grpcapi is the gRPC edge of the audit service:
// custody.audit.v1.AuditService. It validates requests (field violations
// with AIP paths), authorizes the caller (the table in authz.go), converts
// the app layer's answers to the wire, and maps every error to a gRPC
// status in one place (toStatus).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
)

// ServiceName is the gRPC service this package implements.
const ServiceName = "custody.audit.v1.AuditService"

// Server implements auditv1.AuditServiceServer.
type Server struct {
	auditv1.UnimplementedAuditServiceServer
	app *app.Service
	log *slog.Logger
	// Parked reads the dead-letter stream (bus.ListParked); nil answers
	// Unimplemented.
	Parked func(ctx context.Context, consumer string) ([]bus.Parked, error)
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{app: svc, log: log}
}

var _ auditv1.AuditServiceServer = (*Server)(nil)

// GetOrderTimeline implements auditv1.AuditServiceServer.
func (s *Server) GetOrderTimeline(ctx context.Context, req *auditv1.GetOrderTimelineRequest) (*auditv1.GetOrderTimelineResponse, error) {
	if err := validateTimeline(req); err != nil {
		return nil, err
	}
	allow, err := authorize(ctx, "GetOrderTimeline")
	if err != nil {
		return nil, err
	}
	tl, err := s.app.Timeline(ctx, app.TimelineQuery{OrderID: req.GetOrderId(), PageSize: int(req.GetPageSize()),
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
	if err := validateVerify(req); err != nil {
		return nil, err
	}
	allow, err := authorize(ctx, "VerifyOrderChain")
	if err != nil {
		return nil, err
	}
	v, err := s.app.Verify(ctx, req.GetOrderId(), allow)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return verificationProto(v), nil
}

// ReplayOrder implements auditv1.AuditServiceServer.
func (s *Server) ReplayOrder(ctx context.Context, req *auditv1.ReplayOrderRequest) (*auditv1.ReplayOrderResponse, error) {
	if err := validateReplay(req); err != nil {
		return nil, err
	}
	allow, err := authorize(ctx, "ReplayOrder")
	if err != nil {
		return nil, err
	}
	var asOf time.Time // zero: now
	if req.GetAsOf() != nil {
		asOf = req.GetAsOf().AsTime()
	}
	r, err := s.app.Replay(ctx, req.GetOrderId(), asOf, allow)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return replayProto(r), nil
}

// authorize refuses at once a caller no order could be shown to, and
// returns the per-order check for the others.
func authorize(ctx context.Context, rpc string) (app.Allow, error) {
	caller, _ := auth.CallerFrom(ctx)
	if !mayCall(caller, rpc) {
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
	if _, err := authorize(ctx, "ListParkedEvents"); err != nil {
		return nil, err
	}
	if s.Parked == nil {
		return nil, status.Error(codes.Unimplemented, "no dead-letter stream is reachable from this process")
	}
	ps, err := s.Parked(ctx, req.GetConsumer())
	if err != nil {
		if strings.Contains(err.Error(), "bad consumer name") {
			return nil, apierr.InvalidArgument(apierr.FieldViolation{Field: "consumer", Description: "not a consumer name"})
		}
		return nil, s.toStatus(ctx, err)
	}
	resp := &auditv1.ListParkedEventsResponse{}
	for _, p := range ps {
		resp.Parked = append(resp.Parked, &auditv1.ParkedEvent{
			Consumer: p.Consumer, SourceService: p.SourceService, Cause: p.Cause, Reason: p.Reason,
			Deliveries: p.Deliveries, EventId: p.EventID, EventType: p.EventType,
			OriginalSubject: p.OriginalSubject, OriginalSequence: p.OriginalSequence, ParkTime: timestamppb.New(p.ParkedAt),
		})
	}
	return resp, nil
}

// toStatus is the one place where errors become gRPC statuses. Anything
// not recognised is Internal (and logged), never passed through raw.
func (s *Server) toStatus(ctx context.Context, err error) error {
	var (
		nf       *app.NotFoundError
		badToken *app.BadPageTokenError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &badToken):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "page_token", Description: badToken.Err.Error()})
	case errors.As(err, &nf):
		return apierr.NotFound("order", nf.OrderID)
	case errors.Is(err, app.ErrIndexBehind):
		return apierr.Unavailable("the audit index is still catching up with the event stores; retry shortly")
	case errors.Is(err, eventstore.ErrUnavailable):
		return apierr.Unavailable("the event store is unavailable; retry shortly")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	s.log.ErrorContext(ctx, "audit service: unexpected error", "err", err)
	return status.Error(codes.Internal, "internal error")
}
