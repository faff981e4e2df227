package grpcapi

import (
	"fmt"
	"log/slog"
	"strings"
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
		apierrtest.Case{Err: fmt.Errorf("%w: line 2 is vendor v2's", domain.ErrOtherVendor), Code: codes.PermissionDenied, Reason: "PERMISSION_DENIED"},
	)
}

// The access table covers the service and says what authz.go does.
func TestAccess(t *testing.T) {
	authtest.Check(t, access, &orderv1.OrderService_ServiceDesc,
		authtest.Case{RPC: "PlaceOrder", Owners: "buyer:b1", In: []string{"buyer:b1"}},
		authtest.Case{RPC: "PlaceOrder", Owners: "buyer:b2", In: []string{"service"}, Out: []string{"buyer:b1", "support"}},
		authtest.Case{RPC: "GetOrder", Owners: "buyer:b1 vendor:v2 vendor:v1", In: []string{"vendor:v1"}},
		authtest.Case{RPC: "GetOrder", Owners: "buyer:b1 vendor:v2", Out: []string{"vendor:v1", "creator:c1 carrier:k1"}},
		authtest.Case{RPC: "GetOrder", Owners: "buyer:b1 vendor:v9", In: []string{"buyer:b2 vendor:v9"}},
		authtest.Case{RPC: "GetOrder", Out: []string{authtest.Nobody}},
		authtest.Case{RPC: "CancelOrder", Owners: "buyer:b1 vendor:v1", In: []string{"support"}, Out: []string{"vendor:v1", "platform"}},
		authtest.Case{RPC: "CancelOrderLines", Owners: "buyer:b1 vendor:v1", In: []string{"buyer:b1", "vendor:v1", "support", "service"},
			Out: []string{"buyer:b2", "vendor:v2", "platform", "creator:c1"}},
		authtest.Case{RPC: "ChangeShippingAddress", Owners: "buyer:b1 vendor:v1", In: []string{"buyer:b1", "support", "service"},
			Out: []string{"vendor:v1", "buyer:b2", "platform"}},
		authtest.Case{RPC: "NoSuchRPC", Owners: "buyer:b1", Out: []string{"buyer:b1"}},
	)
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	if a := actor(caller("buyer:b1"), "b1"); a != "buyer:b1" {
		t.Errorf("actor = %q", a)
	}
	if a := actor(auth.Caller{Subject: "checkout", Roles: []auth.Role{{Kind: auth.Service}}}, "b1"); a != "service:checkout" {
		t.Errorf("actor = %q", a)
	}
	// CancelOrderLines: a vendor admitted only as one of the order's
	// vendors is held to its own part; the buyer and unscoped roles are not.
	o := domain.Order{BuyerID: "b1", Parts: []domain.Part{{VendorID: "v1"}, {VendorID: "v2"}}}
	for roles, want := range map[string]string{"vendor:v2": "v2", "buyer:b1": "", "support": "", "buyer:b1 vendor:v1": "", "vendor:v9": ""} {
		if got := vendorOnly(authtest.Caller(t, "x", strings.Fields(roles)...), "CancelOrderLines", o); got != want {
			t.Errorf("%s: vendorOnly = %q, want %q", roles, got, want)
		}
	}
}
