package grpcapi

import (
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
	"github.com/custody/custody/pkg/es"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessCoversEveryRPC(t *testing.T) {
	if err := access.Covers(&trustv1.TrustService_ServiceDesc); err != nil {
		t.Error(err)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, "alice", roles...) }
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
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrRecordUnavailable), Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", es.ErrBadCommand), Code: codes.InvalidArgument},
	)
}

// Every domain state and tier has a wire form, and back.
func TestEnumMappings(t *testing.T) {
	for s := domain.StateNone; s <= domain.StateWithdrawn; s++ {
		if d, ok := states.Domain(states.Wire(s)); !ok || d != s {
			t.Errorf("state %v has no round trip", s)
		}
	}
	for _, tier := range []domain.Tier{domain.TierGold, domain.TierSilver, domain.TierStandard, domain.TierWatch} {
		if d, ok := tiers.Domain(tiers.Wire(tier)); !ok || d != tier {
			t.Errorf("tier %v has no round trip", tier)
		}
	}
	if states.Len() != len(trustv1.ClaimState_name) || tiers.Len() != len(trustv1.TrustTier_name) {
		t.Error("an API enum value has no domain counterpart")
	}
}
