package grpcapi

import (
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
)

func TestEveryRPCHasAnAccessRule(t *testing.T) {
	if err := access.Covers(&auditv1.AuditService_ServiceDesc); err != nil {
		t.Error(err)
	}
	if ServiceName != auditv1.AuditService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %q", ServiceName)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, "someone", roles...) }
	tests := []struct {
		caller auth.Caller
		rpc    string
		buyer  string
		may    bool // access.MayCall: before the order is known
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
		if got := access.MayCall(tt.caller, tt.rpc); got != tt.may {
			t.Errorf("MayCall(%v, %s) = %v, want %v", tt.caller.Roles, tt.rpc, got, tt.may)
		}
		if got := allowed(tt.caller, tt.rpc, tt.buyer); got != tt.want {
			t.Errorf("allowed(%v, %s, %q) = %v, want %v", tt.caller.Roles, tt.rpc, tt.buyer, got, tt.want)
		}
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: badToken(), Code: codes.InvalidArgument},
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrIndexBehind), Code: codes.Unavailable},
	)
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
