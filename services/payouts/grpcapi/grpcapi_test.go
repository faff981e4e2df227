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
	"github.com/custody/custody/pkg/fault"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessCoversEveryRPC(t *testing.T) {
	methods := map[string]bool{}
	for _, m := range payoutsv1.PayoutsService_ServiceDesc.Methods {
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
}

func TestAuthorize(t *testing.T) {
	caller := func(roles ...string) auth.Caller {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Caller{Subject: roles[0], Roles: rs}
	}
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
			if got := status.Code(authorize(tt.c, len(tt.c.Roles) > 0, tt.rpc, tt.owner)); got != tt.want {
				t.Fatalf("code %v, want %v", got, tt.want)
			}
		})
	}
	if a := actor(auth.Caller{Subject: "ops-1", Roles: []auth.Role{{Kind: auth.Platform}}}); a != "platform:ops-1" {
		t.Errorf("actor = %q", a)
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var v domain.Violations
	v.Add("request_id", "required")
	tests := []struct {
		err  error
		want codes.Code
	}{
		{v.Err(), codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", v.Err()), codes.InvalidArgument},
		{&fault.NotFoundError{Resource: "payout batch", ID: "b1"}, codes.NotFound},
		{app.ErrBehind, codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrConflict), codes.Aborted},
		{fmt.Errorf("x: %w: boom", eventstore.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrBadCommand), codes.InvalidArgument},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{apierr.PermissionDenied("no"), codes.PermissionDenied},
		{errors.New("something unforeseen"), codes.Internal},
		{domain.ErrUnbalanced, codes.Internal},
	}
	for _, tt := range tests {
		if got := status.Code(s.toStatus(t.Context(), tt.err)); got != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
