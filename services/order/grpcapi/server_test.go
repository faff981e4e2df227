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
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: domain.ErrNotPlaced, Code: codes.NotFound},
		apierrtest.Case{Err: app.ErrCatalogUnavailable, Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", es.ErrBadCommand), Code: codes.InvalidArgument},
	)
}

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessCoversEveryRPC(t *testing.T) {
	if err := access.Covers(&orderv1.OrderService_ServiceDesc); err != nil {
		t.Error(err)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	tests := []struct {
		caller  auth.Caller
		rpc     string
		buyer   string
		vendors []string
		want    bool
	}{
		{caller("buyer:b1"), "PlaceOrder", "b1", nil, true},
		{caller("buyer:b1"), "PlaceOrder", "b2", nil, false},
		{caller("service"), "PlaceOrder", "b2", nil, true},
		{caller("support"), "PlaceOrder", "b2", nil, false},
		{caller("vendor:v1"), "GetOrder", "b1", []string{"v2", "v1"}, true},
		{caller("vendor:v1"), "GetOrder", "b1", []string{"v2"}, false},
		{caller("vendor:v1"), "CancelOrder", "b1", []string{"v1"}, false},
		{caller("platform"), "CancelOrder", "b1", nil, false},
		{caller("support"), "CancelOrder", "b1", nil, true},
		{caller("creator:c1", "carrier:k1"), "GetOrder", "b1", nil, false},
		{caller("buyer:b2", "vendor:v9"), "GetOrder", "b1", []string{"v9"}, true},
		{caller("buyer:b1"), "NoSuchRPC", "b1", nil, false},
		{auth.Caller{}, "GetOrder", "", []string{""}, false},
	}
	for _, tt := range tests {
		if got := allowed(tt.caller, tt.rpc, tt.buyer, tt.vendors...); got != tt.want {
			t.Errorf("allowed(%v, %s, %s, %v) = %v, want %v", tt.caller.Roles, tt.rpc, tt.buyer, tt.vendors, got, tt.want)
		}
	}
	if a := actor(caller("buyer:b1"), "b1"); a != "buyer:b1" {
		t.Errorf("actor = %q", a)
	}
	if a := actor(auth.Caller{Subject: "checkout", Roles: []auth.Role{{Kind: auth.Service}}}, "b1"); a != "service:checkout" {
		t.Errorf("actor = %q", a)
	}
}
