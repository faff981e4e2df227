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
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The access table covers the service and says what authz.go does.
func TestAccess(t *testing.T) {
	t.Parallel()
	if desc := fulfilmentv1.FulfilmentService_ServiceDesc; desc.ServiceName != ServiceName {
		t.Errorf("service name %s", desc.ServiceName)
	}
	const own = "vendor:v1 buyer:b1"
	authtest.Check(t, access, &fulfilmentv1.FulfilmentService_ServiceDesc,
		authtest.Case{RPC: "GetFulfilment", Owners: own, In: []string{"vendor:v1", "buyer:b1", "support", "buyer:b9 vendor:v1"},
			Out: []string{"vendor:v2", "buyer:b2", "carrier:dhl", "creator:c1"}},
		authtest.Case{RPC: "GetFulfilment", Out: []string{authtest.Nobody}},
		authtest.Case{RPC: "ShipFulfilment", Owners: own, In: []string{"vendor:v1", "service"}, Out: []string{"vendor:v2", "buyer:b1", "support", "platform"}},
		authtest.Case{RPC: "RecordTrackingEvent", Owners: "carrier:dhl", In: []string{"carrier:dhl", "service"}, Out: []string{"carrier:ups", "vendor:v1", "support"}},
		authtest.Case{RPC: "ConfirmReceipt", Owners: own, In: []string{"buyer:b1"}, Out: []string{"buyer:b2", "vendor:v1", "support"}},
		authtest.Case{RPC: "WatchFulfilments", Owners: "vendor:v1", In: []string{"vendor:v1"}},
		authtest.Case{RPC: "WatchFulfilments", Owners: "vendor:v2", In: []string{"support", "platform"}, Out: []string{"vendor:v1", "service"}},
		authtest.Case{RPC: "NoSuchRPC", Owners: own, Out: []string{"vendor:v1"}},
	)
}

// A caller acts as the owner it is, else as its unscoped role.
func TestActor(t *testing.T) {
	t.Parallel()
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	own := resource{vendorID: "v1", buyerID: "b1"}
	if a := actor(caller("vendor:v1"), own); a != "vendor:v1" {
		t.Errorf("actor = %q", a)
	}
	if a := actor(caller("carrier:dhl"), resource{carrier: "dhl"}); a != "carrier:dhl" {
		t.Errorf("actor = %q", a)
	}
	if a := actor(auth.Caller{Subject: "wms", Roles: []auth.Role{{Kind: auth.Service}}}, own); a != "service:wms" {
		t.Errorf("actor = %q", a)
	}
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: domain.ErrNotRequested, Code: codes.NotFound},
		apierrtest.Case{Err: domain.ErrUnknownTracking, Code: codes.NotFound},
		apierrtest.Case{Err: &domain.TrackingInUseError{Carrier: "dhl", TrackingNumber: "1234567890"}, Code: codes.AlreadyExists},
		apierrtest.Case{Err: &app.CursorError{Cursor: 9, Last: 3}, Code: codes.InvalidArgument},
		apierrtest.Case{Err: &app.BehindError{Cursor: 3}, Code: codes.Unavailable},
		apierrtest.Case{Err: app.ErrServiceStopping, Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", es.ErrBadCommand), Code: codes.InvalidArgument},
	)
}
