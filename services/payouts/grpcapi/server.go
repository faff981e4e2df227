// Package grpcapi is the gRPC edge of the payouts service:
// custody.payouts.v1.PayoutsService. It validates requests (field
// violations with AIP paths), authorizes the caller (the table in
// authz.go), converts between the wire and the app layer, and maps every
// error to a gRPC status in one place (toStatus, then apierr.FromError).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/protoconv"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// ServiceName is the gRPC service this package serves.
var ServiceName = payoutsv1.PayoutsService_ServiceDesc.ServiceName

// Server implements payoutsv1.PayoutsServiceServer.
type Server struct {
	payoutsv1.UnimplementedPayoutsServiceServer
	apierr.Edge[*app.Service]
}

// New returns the gRPC server of svc.
func New(svc *app.Service, log *slog.Logger) *Server {
	return &Server{Edge: apierr.NewEdge(svc, log)}
}

// GetBalance implements payoutsv1.PayoutsServiceServer.
func (s *Server) GetBalance(ctx context.Context, req *payoutsv1.GetBalanceRequest) (*payoutsv1.GetBalanceResponse, error) {
	kind, id, invalid := validateGetBalance(req)
	if _, err := s.admit(ctx, "GetBalance", invalid, req.GetOwner()); err != nil {
		return nil, err
	}
	balances, accounts, err := s.App.Balance(ctx, kind, id)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &payoutsv1.GetBalanceResponse{Owner: req.GetOwner()}
	for _, b := range balances {
		resp.Balances = append(resp.Balances, balanceProto(b))
	}
	for _, a := range accounts {
		resp.Accounts = append(resp.Accounts, &payoutsv1.AccountBalance{Account: a.Account, Balance: a.Balance.ToProto()})
	}
	return resp, nil
}

// ownerOf is the owner of an account id ("" if it does not parse).
func ownerOf(account string) string {
	a, err := domain.ParseAccount(account)
	if err != nil {
		return ""
	}
	return a.Owner()
}

// ListLedgerEntries implements payoutsv1.PayoutsServiceServer.
func (s *Server) ListLedgerEntries(ctx context.Context, req *payoutsv1.ListLedgerEntriesRequest) (*payoutsv1.ListLedgerEntriesResponse, error) {
	q, invalid := validateList(req)
	if _, err := s.admit(ctx, "ListLedgerEntries", invalid, ownerOf(req.GetAccount())); err != nil {
		return nil, err
	}
	page, err := s.App.Entries(ctx, q)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &payoutsv1.ListLedgerEntriesResponse{NextPageToken: page.NextPageToken}
	for _, e := range page.Entries {
		resp.Entries = append(resp.Entries, entryProto(e))
	}
	return resp, nil
}

// GetStatement implements payoutsv1.PayoutsServiceServer.
func (s *Server) GetStatement(ctx context.Context, req *payoutsv1.GetStatementRequest) (*payoutsv1.GetStatementResponse, error) {
	start, end, invalid := validateStatement(req)
	if _, err := s.admit(ctx, "GetStatement", invalid, ownerOf(req.GetAccount())); err != nil {
		return nil, err
	}
	st, err := s.App.Statement(ctx, req.GetAccount(), start, end)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &payoutsv1.GetStatementResponse{Account: st.Account, StartTime: protoconv.Timestamp(st.Start), EndTime: protoconv.Timestamp(st.End)}
	for _, t := range st.Totals {
		resp.Totals = append(resp.Totals, &payoutsv1.StatementTotal{CurrencyCode: t.Currency,
			Opening: minor(t.Currency, t.Opening).ToProto(), Credits: minor(t.Currency, t.Credits).ToProto(),
			Debits: minor(t.Currency, t.Debits).ToProto(), Closing: minor(t.Currency, t.Closing).ToProto()})
	}
	for _, e := range st.Entries {
		resp.Entries = append(resp.Entries, entryProto(e))
	}
	return resp, nil
}

// RunPayouts implements payoutsv1.PayoutsServiceServer.
func (s *Server) RunPayouts(ctx context.Context, req *payoutsv1.RunPayoutsRequest) (*payoutsv1.RunPayoutsResponse, error) {
	c, err := s.admit(ctx, "RunPayouts", validateRun(req), "")
	if err != nil {
		return nil, err
	}
	// No request fingerprint (AIP-155): the request is its request_id
	// alone, so the same request_id cannot come with another body. A field
	// added to RunPayoutsRequest must be fingerprinted (apierr.Fingerprint)
	// and carried to the command, as the other services' mutations do.
	b, err := s.App.RunPayouts(ctx, req.GetRequestId(), actor(c))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &payoutsv1.RunPayoutsResponse{Batch: batchProto(b)}, nil
}

// GetPayoutBatch implements payoutsv1.PayoutsServiceServer.
func (s *Server) GetPayoutBatch(ctx context.Context, req *payoutsv1.GetPayoutBatchRequest) (*payoutsv1.GetPayoutBatchResponse, error) {
	if err := validateBatch(req); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	c, _, err := apierr.CallerOf(ctx, access, "GetPayoutBatch")
	if err != nil {
		return nil, err
	}
	b, err := s.App.PayoutBatch(ctx, req.GetBatchId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := batchProto(b)
	if access.AllowsAll(c, "GetPayoutBatch") {
		return &payoutsv1.GetPayoutBatchResponse{Batch: out}, nil
	}
	own, found := ownBatch(out, func(payee string) bool { return allowedOn(c, "GetPayoutBatch", payee) })
	if !found {
		return nil, apierr.PermissionDenied("a vendor or creator sees only batches that paid it")
	}
	return &payoutsv1.GetPayoutBatchResponse{Batch: own}, nil
}

// GetOrderSettlement implements payoutsv1.PayoutsServiceServer.
func (s *Server) GetOrderSettlement(ctx context.Context, req *payoutsv1.GetOrderSettlementRequest) (*payoutsv1.GetOrderSettlementResponse, error) {
	if err := validateSettlement(req); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	c, _, err := apierr.CallerOf(ctx, access, "GetOrderSettlement")
	if err != nil {
		return nil, err
	}
	st, err := s.App.OrderSettlement(ctx, req.GetOrderId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if access.AllowsAll(c, "GetOrderSettlement") {
		return &payoutsv1.GetOrderSettlementResponse{Settlement: settlementProto(st, func(string) bool { return true })}, nil
	}
	mine := func(vendorID string) bool { return allowedOn(c, "GetOrderSettlement", "vendor:"+vendorID) }
	out := settlementProto(st, mine)
	if len(out.GetParts()) == 0 {
		return nil, apierr.PermissionDenied("you may not see order " + req.GetOrderId() + "'s settlement")
	}
	out.Total, out.Refunded, out.BuyerId = nil, nil, "" // other vendors' sales and the buyer are not the vendor's business
	return &payoutsv1.GetOrderSettlementResponse{Settlement: out}, nil
}

// toStatus is the one place where errors become gRPC statuses: the
// service's own cases here, the shared vocabulary (bad input with its field
// violations, not found, conflicts, a dead store, the context's end; else
// Internal, logged) in apierr.FromError.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, app.ErrBehind):
		return apierr.Unavailable("the ledger's read side is catching up with the store; retry shortly")
	case errors.Is(err, es.ErrBadCommand):
		return apierr.InvalidArgument(apierr.FieldViolation{Field: "order_id", Description: "not an order id"})
	}
	return apierr.FromError(ctx, s.Log, err)
}
