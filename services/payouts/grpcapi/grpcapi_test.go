package grpcapi

import (
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
	"github.com/custody/custody/pkg/es"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessCoversEveryRPC(t *testing.T) {
	if err := access.Covers(&payoutsv1.PayoutsService_ServiceDesc); err != nil {
		t.Error(err)
	}
}

func TestAuthorize(t *testing.T) {
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	tests := []struct {
		c     auth.Caller
		rpc   string
		owner string
		want  codes.Code
	}{
		{caller("vendor:v1"), "GetBalance", "vendor:v1", codes.OK},
		{caller("vendor:v1"), "GetBalance", "vendor:v2", codes.PermissionDenied},
		{caller("vendor:v1"), "GetBalance", "creator:v1", codes.PermissionDenied}, // same id, other kind
		{caller("creator:c1"), "GetStatement", "creator:c1", codes.OK},
		{caller("creator:c1"), "GetOrderSettlement", "creator:c1", codes.PermissionDenied},
		{caller("vendor:v1"), "ListLedgerEntries", "", codes.PermissionDenied},
		{caller("vendor:v1"), "GetBalance", "platform", codes.PermissionDenied},
		{caller("support"), "ListLedgerEntries", "", codes.OK},
		{caller("support"), "RunPayouts", "", codes.PermissionDenied},
		{caller("platform"), "RunPayouts", "", codes.OK},
		{caller("service"), "GetBalance", "vendor:v1", codes.PermissionDenied},
		{caller("buyer:b1", "vendor:v9"), "GetBalance", "vendor:v9", codes.OK},
		{caller("platform"), "NoSuchRPC", "", codes.PermissionDenied},
		{auth.Caller{}, "GetBalance", "vendor:v1", codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v %s %s", tt.c.Roles, tt.rpc, tt.owner), func(t *testing.T) {
			if _, err := authorize(auth.WithCaller(t.Context(), tt.c), tt.rpc, tt.owner); status.Code(err) != tt.want {
				t.Fatalf("code %v, want %v", status.Code(err), tt.want)
			}
		})
	}
	if _, err := authorize(t.Context(), "GetBalance", "vendor:v1"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no identity: %v", err)
	}
	if a := actor(auth.Caller{Subject: "ops-1", Roles: []auth.Role{{Kind: auth.Platform}}}); a != "platform:ops-1" {
		t.Errorf("actor = %q", a)
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: app.ErrBehind, Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", es.ErrBadCommand), Code: codes.InvalidArgument},
		apierrtest.Case{Err: domain.ErrUnbalanced, Code: codes.Internal},
	)
}
