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

// The access table covers the service and says what authz.go does.
func TestAccess(t *testing.T) {
	const claim = "buyer:b1 vendor:v1"
	authtest.Check(t, access, &trustv1.TrustService_ServiceDesc,
		authtest.Case{RPC: "OpenClaim", Owners: "buyer:b1", In: []string{"buyer:b1", "service"}, Out: []string{"buyer:b2", "support"}},
		authtest.Case{RPC: "RespondToClaim", Owners: claim, In: []string{"vendor:v1"}, Out: []string{"vendor:v2", "buyer:b1"}},
		authtest.Case{RPC: "ResolveClaim", Owners: claim, In: []string{"support"}, Out: []string{"platform", "vendor:v1"}},
		authtest.Case{RPC: "ReceiveReturn", Owners: claim, In: []string{"support", "vendor:v1"}, Out: []string{"buyer:b1"}},
		authtest.Case{RPC: "RecordReturnShipment", Owners: claim, In: []string{"buyer:b1"}},
		authtest.Case{RPC: "GetVendorTrust", Owners: "vendor:v1", In: []string{"vendor:v1"}, Out: []string{"service"}},
		authtest.Case{RPC: "GetVendorTrust", Owners: "vendor:v2", Out: []string{"vendor:v1"}},
		authtest.Case{RPC: "GetClaim", Owners: claim, Out: []string{"creator:c1 carrier:k1"}},
		authtest.Case{RPC: "GetClaim", Out: []string{authtest.Nobody}},
		authtest.Case{RPC: "NoSuchRPC", Owners: "buyer:b1", Out: []string{"buyer:b1"}},
	)
}

// A caller acts as the owner it is, else as its unscoped role and subject.
func TestActor(t *testing.T) {
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, "alice", roles...) }
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

// Every domain state and tier has a wire form, and back; every vendor
// response and claim decision but UNSPECIFIED has a domain one.
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
	if states.Len() != len(trustv1.ClaimState_name) || tiers.Len() != len(trustv1.TrustTier_name) ||
		responses.Len() != len(trustv1.VendorResponse_name)-1 || decisions.Len() != len(trustv1.ClaimDecision_name)-1 {
		t.Error("an API enum value has no domain counterpart")
	}
}
