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
		authtest.Case{RPC: "NoSuchRPC", Owners: "buyer:b1", Out: []string{"buyer:b1"}},
	)
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	if a := actor(caller("buyer:b1"), "b1"); a != "buyer:b1" {
		t.Errorf("actor = %q", a)
	}
	if a := actor(auth.Caller{Subject: "checkout", Roles: []auth.Role{{Kind: auth.Service}}}, "b1"); a != "service:checkout" {
		t.Errorf("actor = %q", a)
	}
}
