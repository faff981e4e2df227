package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
)

func TestEveryRPCHasAnAccessRule(t *testing.T) {
	rpcs := map[string]bool{}
	for _, m := range auditv1.AuditService_ServiceDesc.Methods {
		rpcs[m.MethodName] = true
		if _, ok := access[m.MethodName]; !ok {
			t.Errorf("RPC %s has no row in the access table", m.MethodName)
		}
	}
	for _, s := range auditv1.AuditService_ServiceDesc.Streams {
		rpcs[s.StreamName] = true
		if _, ok := access[s.StreamName]; !ok {
			t.Errorf("RPC %s has no row in the access table", s.StreamName)
		}
	}
	for rpc := range access {
		if !rpcs[rpc] {
			t.Errorf("access table names %s, which the service does not have", rpc)
		}
	}
	if ServiceName != auditv1.AuditService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %q", ServiceName)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Caller{Subject: "someone", Roles: rs}
	}
	tests := []struct {
		caller auth.Caller
		rpc    string
		buyer  string
		may    bool // mayCall: before the order is known
		want   bool
	}{
		{caller("support"), "GetOrderTimeline", "b1", true, true},
		{caller("platform"), "ReplayOrder", "b1", true, true},
		{caller("support"), "VerifyOrderChain", "", true, true},
		{caller("buyer:b1"), "VerifyOrderChain", "b1", true, true},
		{caller("buyer:b1"), "VerifyOrderChain", "b2", true, false},
		{caller("buyer:b1"), "VerifyOrderChain", "", true, false},
		{caller("buyer:b1"), "GetOrderTimeline", "b1", false, false},
		{caller("buyer:b1"), "ReplayOrder", "b1", false, false},
		{caller("vendor:v1"), "GetOrderTimeline", "b1", false, false},
		{caller("vendor:v1"), "VerifyOrderChain", "b1", false, false},
		{caller("service"), "GetOrderTimeline", "b1", false, false},
		{caller("creator:c1", "carrier:k1"), "VerifyOrderChain", "b1", false, false},
		{caller("buyer:b2", "support"), "ReplayOrder", "b1", true, true},
		{caller("support"), "NoSuchRPC", "b1", false, false},
		{auth.Caller{}, "VerifyOrderChain", "b1", false, false},
	}
	for _, tt := range tests {
		if got := mayCall(tt.caller, tt.rpc); got != tt.may {
			t.Errorf("mayCall(%v, %s) = %v, want %v", tt.caller.Roles, tt.rpc, got, tt.may)
		}
		if got := allowed(tt.caller, tt.rpc, tt.buyer); got != tt.want {
			t.Errorf("allowed(%v, %s, %q) = %v, want %v", tt.caller.Roles, tt.rpc, tt.buyer, got, tt.want)
		}
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		err  error
		want codes.Code
	}{
		{&fault.NotFoundError{Resource: "order", ID: "o1"}, codes.NotFound},
		{badToken(), codes.InvalidArgument},
		{fmt.Errorf("x: %w", app.ErrIndexBehind), codes.Unavailable},
		{fmt.Errorf("x: %w: boom", eventstore.ErrUnavailable), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{apierr.PermissionDenied("no"), codes.PermissionDenied},
		{errors.New("something unforeseen"), codes.Internal},
	}
	for _, tt := range tests {
		if got := s.toStatus(t.Context(), tt.err); status.Code(got) != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	fvs := apierr.FieldViolations(s.toStatus(t.Context(), badToken()))
	if len(fvs) != 1 || fvs[0].Field != "page_token" {
		t.Errorf("field violations %v", fvs)
	}
}

// badToken is the error app.Timeline returns for a page token it did not
// issue.
func badToken() error {
	var v fault.Violations
	v.Add("page_token", "%v", domain.ErrBadPageToken)
	return v.Err()
}

func TestValidate(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name  string
		err   error
		field string
	}{
		{"timeline without order", validateTimeline(&auditv1.GetOrderTimelineRequest{}), "order_id"},
		{"timeline, negative page size", validateTimeline(&auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: -1}), "page_size"},
		{"verify, bad order id", validateVerify(&auditv1.VerifyOrderChainRequest{OrderId: "o 1"}), "order_id"},
		{"verify, long order id", validateVerify(&auditv1.VerifyOrderChainRequest{OrderId: string(long)}), "order_id"},
		{"replay without order", validateReplay(&auditv1.ReplayOrderRequest{}), "order_id"},
		{"parked, bad consumer", validateParked(&auditv1.ListParkedEventsRequest{Consumer: "a.b"}), "consumer"},
	}
	for _, tt := range tests {
		if status.Code(tt.err) != codes.InvalidArgument {
			t.Errorf("%s: %v", tt.name, tt.err)
			continue
		}
		if fvs := apierr.FieldViolations(tt.err); len(fvs) != 1 || fvs[0].Field != tt.field {
			t.Errorf("%s: violations %v, want %s", tt.name, fvs, tt.field)
		}
	}
	if err := validateTimeline(&auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 5000}); err != nil {
		t.Errorf("a page size over the maximum is coerced, not refused: %v", err)
	}
	for _, consumer := range []string{"", "catalog-on-order"} {
		if err := validateParked(&auditv1.ListParkedEventsRequest{Consumer: consumer}); err != nil {
			t.Errorf("consumer %q refused: %v", consumer, err)
		}
	}
}
