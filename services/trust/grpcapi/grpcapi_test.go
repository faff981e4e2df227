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
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessCoversEveryRPC(t *testing.T) {
	methods := map[string]bool{}
	for _, m := range trustv1.TrustService_ServiceDesc.Methods {
		methods[m.MethodName] = true
		if _, ok := access[m.MethodName]; !ok {
			t.Errorf("%s has no access rule", m.MethodName)
		}
	}
	for rpc := range access {
		if !methods[rpc] {
			t.Errorf("access rule for unknown RPC %s", rpc)
		}
	}
	if ServiceName != trustv1.TrustService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %s", ServiceName)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Caller{Subject: "alice", Roles: rs}
	}
	tests := []struct {
		caller        auth.Caller
		rpc           string
		buyer, vendor string
		want          bool
	}{
		{caller("buyer:b1"), "OpenClaim", "b1", "", true},
		{caller("buyer:b2"), "OpenClaim", "b1", "", false},
		{caller("service"), "OpenClaim", "b1", "", true},
		{caller("support"), "OpenClaim", "b1", "", false},
		{caller("vendor:v1"), "RespondToClaim", "b1", "v1", true},
		{caller("vendor:v2"), "RespondToClaim", "b1", "v1", false},
		{caller("buyer:b1"), "RespondToClaim", "b1", "v1", false},
		{caller("support"), "ResolveClaim", "b1", "v1", true},
		{caller("platform"), "ResolveClaim", "b1", "v1", false},
		{caller("vendor:v1"), "ResolveClaim", "b1", "v1", false},
		{caller("support"), "ReceiveReturn", "b1", "v1", true},
		{caller("vendor:v1"), "ReceiveReturn", "b1", "v1", true},
		{caller("buyer:b1"), "ReceiveReturn", "b1", "v1", false},
		{caller("buyer:b1"), "RecordReturnShipment", "b1", "v1", true},
		{caller("vendor:v1"), "GetVendorTrust", "", "v1", true},
		{caller("vendor:v1"), "GetVendorTrust", "", "v2", false},
		{caller("service"), "GetVendorTrust", "", "v1", false},
		{caller("creator:c1", "carrier:k1"), "GetClaim", "b1", "v1", false},
		{caller("buyer:b1"), "NoSuchRPC", "b1", "", false},
		{auth.Caller{}, "GetClaim", "", "", false},
	}
	for _, tt := range tests {
		if got := allowed(tt.caller, tt.rpc, tt.buyer, tt.vendor); got != tt.want {
			t.Errorf("allowed(%v, %s, %s, %s) = %v, want %v", tt.caller.Roles, tt.rpc, tt.buyer, tt.vendor, got, tt.want)
		}
	}
	for _, tt := range []struct {
		c             auth.Caller
		buyer, vendor string
		want          string
	}{
		{caller("buyer:b1"), "b1", "v1", "buyer:b1"},
		{caller("vendor:v1"), "b1", "v1", "vendor:v1"},
		{caller("support"), "b1", "v1", "support:alice"},
		{auth.Caller{Subject: "support", Roles: []auth.Role{{Kind: auth.Support}}}, "b1", "v1", "support"},
	} {
		if got := actor(tt.c, tt.buyer, tt.vendor); got != tt.want {
			t.Errorf("actor(%v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var v domain.Violations
	v.Add("lines[2].quantity", "must be at least 1")
	tests := []struct {
		err  error
		want codes.Code
	}{
		{v.Err(), codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", v.Err()), codes.InvalidArgument},
		{&domain.PreconditionError{Reason: domain.ReasonTooEarly, Message: "too early"}, codes.FailedPrecondition},
		{&domain.NotFoundError{Resource: "claim", ID: "c1"}, codes.NotFound},
		{fmt.Errorf("x: %w", app.ErrRecordUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrConflict), codes.Aborted},
		{fmt.Errorf("x: %w: boom", eventstore.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrBadCommand), codes.InvalidArgument},
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
	if r := apierr.Reason(s.toStatus(t.Context(), &domain.PreconditionError{Reason: domain.ReasonTooEarly, Message: "m"})); r != domain.ReasonTooEarly {
		t.Errorf("reason %q", r)
	}
	fvs := apierr.FieldViolations(s.toStatus(t.Context(), v.Err()))
	if len(fvs) != 1 || fvs[0].Field != "lines[2].quantity" {
		t.Fatalf("field violations %v", fvs)
	}
}

// Every domain state and tier has a wire form, and back.
func TestEnumMappings(t *testing.T) {
	for s := domain.StateNone; s <= domain.StateWithdrawn; s++ {
		if p, ok := stateProtos[s]; !ok || states[p] != s {
			t.Errorf("state %v has no round trip", s)
		}
	}
	for _, tier := range []domain.Tier{domain.TierGold, domain.TierSilver, domain.TierStandard, domain.TierWatch} {
		if p, ok := tierProtos[tier]; !ok || tiersFrom[p] != tier {
			t.Errorf("tier %v has no round trip", tier)
		}
	}
	if len(states) != len(trustv1.ClaimState_name) || len(tiersFrom) != len(trustv1.TrustTier_name) {
		t.Error("an API enum value has no domain counterpart")
	}
}
