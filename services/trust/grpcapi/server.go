// Package grpcapi is the gRPC edge of the trust service:
// custody.trust.v1.TrustService. It validates requests (field violations
// with AIP paths such as "lines[2].quantity"), authorizes the caller (the
// table in authz.go), converts between the wire and the app layer, and
// maps every error to a gRPC status in one place (toStatus).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/es"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// Server implements trustv1.TrustServiceServer.
type Server struct {
	trustv1.UnimplementedTrustServiceServer
	apierr.Edge[*app.Service]
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(svc, log)}
}

func callerOf(ctx context.Context) auth.Caller {
	c, _ := auth.CallerFrom(ctx)
	return c
}

// OpenClaim implements trustv1.TrustServiceServer.
func (s *Server) OpenClaim(ctx context.Context, req *trustv1.OpenClaimRequest) (*trustv1.OpenClaimResponse, error) {
	cmd, err := validateOpen(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	buyer, err := s.App.OrderBuyer(ctx, cmd.OrderID)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller := callerOf(ctx)
	if !allowed(caller, "OpenClaim", buyer, "") {
		return nil, apierr.PermissionDenied("only the order's buyer, or a service acting for it, may claim on order " + cmd.OrderID)
	}
	cmd.Actor, cmd.Fingerprint = actor(caller, buyer, ""), apierr.Fingerprint(req)
	v, err := s.App.OpenClaim(ctx, cmd)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &trustv1.OpenClaimResponse{Claim: claimProto(v)}, nil
}

// RespondToClaim implements trustv1.TrustServiceServer.
func (s *Server) RespondToClaim(ctx context.Context, req *trustv1.RespondToClaimRequest) (*trustv1.RespondToClaimResponse, error) {
	body, invalid := validateRespond(req)
	v, err := s.act(ctx, "RespondToClaim", invalid, req, func(now time.Time, p domain.Policy, _ string) domain.Command {
		body.Now, body.Policy = now, p
		return body
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.RespondToClaimResponse{Claim: claimProto(v)}, nil
}

// AnswerOffer implements trustv1.TrustServiceServer.
func (s *Server) AnswerOffer(ctx context.Context, req *trustv1.AnswerOfferRequest) (*trustv1.AnswerOfferResponse, error) {
	v, err := s.act(ctx, "AnswerOffer", validateAnswer(req), req, func(now time.Time, _ domain.Policy, by string) domain.Command {
		return domain.AnswerOffer{ClaimID: req.GetClaimId(), Accept: req.GetAccept(), By: by, Now: now}
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.AnswerOfferResponse{Claim: claimProto(v)}, nil
}

// ResolveClaim implements trustv1.TrustServiceServer.
func (s *Server) ResolveClaim(ctx context.Context, req *trustv1.ResolveClaimRequest) (*trustv1.ResolveClaimResponse, error) {
	body, invalid := validateResolve(req)
	v, err := s.act(ctx, "ResolveClaim", invalid, req, func(now time.Time, p domain.Policy, by string) domain.Command {
		body.Now, body.Policy, body.By = now, p, by
		return body
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.ResolveClaimResponse{Claim: claimProto(v)}, nil
}

// WithdrawClaim implements trustv1.TrustServiceServer.
func (s *Server) WithdrawClaim(ctx context.Context, req *trustv1.WithdrawClaimRequest) (*trustv1.WithdrawClaimResponse, error) {
	v, err := s.act(ctx, "WithdrawClaim", validateWithdraw(req), req, func(now time.Time, _ domain.Policy, _ string) domain.Command {
		return domain.Withdraw{ClaimID: req.GetClaimId(), Reason: req.GetReason(), Now: now}
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.WithdrawClaimResponse{Claim: claimProto(v)}, nil
}

// RecordReturnShipment implements trustv1.TrustServiceServer.
func (s *Server) RecordReturnShipment(ctx context.Context, req *trustv1.RecordReturnShipmentRequest) (*trustv1.RecordReturnShipmentResponse, error) {
	v, err := s.act(ctx, "RecordReturnShipment", validateReturnShipment(req), req, func(now time.Time, p domain.Policy, _ string) domain.Command {
		return domain.RecordReturnShipment{ClaimID: req.GetClaimId(), Carrier: req.GetCarrier(), TrackingNumber: req.GetTrackingNumber(), Policy: p, Now: now}
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.RecordReturnShipmentResponse{Claim: claimProto(v)}, nil
}

// ReceiveReturn implements trustv1.TrustServiceServer.
func (s *Server) ReceiveReturn(ctx context.Context, req *trustv1.ReceiveReturnRequest) (*trustv1.ReceiveReturnResponse, error) {
	v, err := s.act(ctx, "ReceiveReturn", validateReceive(req), req, func(now time.Time, p domain.Policy, _ string) domain.Command {
		return domain.ReceiveReturn{ClaimID: req.GetClaimId(), Condition: req.GetCondition(), Note: req.GetNote(), Policy: p, Now: now}
	})
	if err != nil {
		return nil, err
	}
	return &trustv1.ReceiveReturnResponse{Claim: claimProto(v)}, nil
}

// GetClaim implements trustv1.TrustServiceServer.
func (s *Server) GetClaim(ctx context.Context, req *trustv1.GetClaimRequest) (*trustv1.GetClaimResponse, error) {
	v, err := s.readable(ctx, "GetClaim", validateGet(req), req.GetClaimId())
	if err != nil {
		return nil, err
	}
	return &trustv1.GetClaimResponse{Claim: claimProto(v)}, nil
}

// ListClaims implements trustv1.TrustServiceServer.
func (s *Server) ListClaims(ctx context.Context, req *trustv1.ListClaimsRequest) (*trustv1.ListClaimsResponse, error) {
	q, err := validateList(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller := callerOf(ctx)
	if !access.AllowsAll(caller, "ListClaims") {
		ok := false
		switch {
		case q.OrderID != "":
			// A buyer lists the claims of its own order.
			buyer, err := s.App.OrderBuyer(ctx, q.OrderID)
			if err != nil {
				return nil, s.toStatus(ctx, err)
			}
			ok = allowed(caller, "ListClaims", buyer, "")
		case q.BuyerID != "", q.VendorID != "":
			ok = allowed(caller, "ListClaims", q.BuyerID, q.VendorID)
		}
		if !ok {
			return nil, apierr.PermissionDenied("buyers list only their own claims (buyer_id or order_id), vendors only claims against them (vendor_id)")
		}
	}
	page, err := s.App.ListClaims(ctx, q)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &trustv1.ListClaimsResponse{NextPageToken: page.NextPageToken}
	for _, c := range page.Claims {
		resp.Claims = append(resp.Claims, claimProto(c))
	}
	return resp, nil
}

// GetVendorTrust implements trustv1.TrustServiceServer.
func (s *Server) GetVendorTrust(ctx context.Context, req *trustv1.GetVendorTrustRequest) (*trustv1.GetVendorTrustResponse, error) {
	if err := validateVendor(req.GetVendorId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if !allowed(callerOf(ctx), "GetVendorTrust", "", req.GetVendorId()) {
		return nil, apierr.PermissionDenied("a vendor's trust is shown to the vendor itself, support and platform")
	}
	v, err := s.App.GetVendorTrust(ctx, req.GetVendorId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &trustv1.GetVendorTrustResponse{Trust: trustProto(v)}, nil
}

// ListVendorTrust implements trustv1.TrustServiceServer.
func (s *Server) ListVendorTrust(ctx context.Context, req *trustv1.ListVendorTrustRequest) (*trustv1.ListVendorTrustResponse, error) {
	q, err := validateListVendors(req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if !allowed(callerOf(ctx), "ListVendorTrust", "", "") {
		return nil, apierr.PermissionDenied("listing vendors' trust is for support and platform")
	}
	page, err := s.App.ListVendorTrust(ctx, q)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &trustv1.ListVendorTrustResponse{NextPageToken: page.NextPageToken}
	for _, v := range page.Vendors {
		resp.Vendors = append(resp.Vendors, trustProto(v))
	}
	return resp, nil
}

// readable is the admission of an RPC on a claim: a request its
// validation refused (invalid) is answered with that; for a valid one the
// claim is loaded and the caller checked against rpc's row on it.
func (s *Server) readable(ctx context.Context, rpc string, invalid error, claimID string) (app.ClaimView, error) {
	if invalid != nil {
		return app.ClaimView{}, s.toStatus(ctx, invalid)
	}
	v, err := s.App.GetClaim(ctx, claimID)
	if err != nil {
		return app.ClaimView{}, s.toStatus(ctx, err)
	}
	if !allowed(callerOf(ctx), rpc, v.Claim.BuyerID, v.Claim.VendorID) {
		return app.ClaimView{}, apierr.PermissionDenied(rpc + " on claim " + claimID + " is not open to you (see the access table)")
	}
	return v, nil
}

// claimRequest is a request acting on a claim, as the message it is: its
// fingerprint (every field counts) goes with the command, so that its
// request_id reused for a different request is refused.
type claimRequest interface {
	actRequest
	proto.Message
}

// act admits req (readable), then runs the command body builds (given
// the time, the policy and who acts) on its claim.
func (s *Server) act(ctx context.Context, rpc string, invalid error, req claimRequest, body func(time.Time, domain.Policy, string) domain.Command) (app.ClaimView, error) {
	cur, err := s.readable(ctx, rpc, invalid, req.GetClaimId())
	if err != nil {
		return app.ClaimView{}, err
	}
	who := actor(callerOf(ctx), cur.Claim.BuyerID, cur.Claim.VendorID)
	v, err := s.App.Act(ctx, app.Call{RPC: rpc, ClaimID: req.GetClaimId(), RequestID: req.GetRequestId(), Actor: who,
		Fingerprint: apierr.Fingerprint(req)},
		func(now time.Time, p domain.Policy) domain.Command { return body(now, p, who) })
	if err != nil {
		return app.ClaimView{}, s.toStatus(ctx, err)
	}
	return v, nil
}

// toStatus is the one place where errors become gRPC statuses: the
// service's own failures here, everything else (bad input, forbidden
// states, missing resources, conflicts, a dead store, anything
// unforeseen, which is logged and answered Internal) by apierr.FromError.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, app.ErrRecordUnavailable):
		return apierr.Unavailable("the custody record is not up to date with the order and fulfilment events; retry shortly")
	case errors.Is(err, es.ErrBadCommand):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "claim_id", Description: "not a claim id"})
	}
	return apierr.FromError(ctx, s.Log, err)
}
