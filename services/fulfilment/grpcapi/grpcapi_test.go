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

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessTableCoversEveryRPC(t *testing.T) {
	t.Parallel()
	desc := &fulfilmentv1.FulfilmentService_ServiceDesc
	if err := access.Covers(desc); err != nil {
		t.Error(err)
	}
	if desc.ServiceName != ServiceName {
		t.Errorf("service name %s", desc.ServiceName)
	}
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	caller := func(roles ...string) auth.Caller { return authtest.Caller(t, roles[0], roles...) }
	own := resource{vendorID: "v1", buyerID: "b1"}
	tests := []struct {
		caller auth.Caller
		rpc    string
		res    resource
		want   bool
	}{
		{caller("vendor:v1"), "GetFulfilment", own, true},
		{caller("vendor:v2"), "GetFulfilment", own, false},
		{caller("buyer:b1"), "GetFulfilment", own, true},
		{caller("buyer:b2"), "GetFulfilment", own, false},
		{caller("carrier:dhl"), "GetFulfilment", own, false},
		{caller("support"), "GetFulfilment", own, true},
		{caller("vendor:v1"), "ShipFulfilment", own, true},
		{caller("vendor:v2"), "ShipFulfilment", own, false},
		{caller("buyer:b1"), "ShipFulfilment", own, false},
		{caller("support"), "ShipFulfilment", own, false},
		{caller("platform"), "ShipFulfilment", own, false},
		{caller("service"), "ShipFulfilment", own, true},
		{caller("carrier:dhl"), "RecordTrackingEvent", resource{carrier: "dhl"}, true},
		{caller("carrier:ups"), "RecordTrackingEvent", resource{carrier: "dhl"}, false},
		{caller("vendor:v1"), "RecordTrackingEvent", resource{carrier: "dhl"}, false},
		{caller("support"), "RecordTrackingEvent", resource{carrier: "dhl"}, false},
		{caller("service"), "RecordTrackingEvent", resource{carrier: "dhl"}, true},
		{caller("buyer:b1"), "ConfirmReceipt", own, true},
		{caller("buyer:b2"), "ConfirmReceipt", own, false},
		{caller("vendor:v1"), "ConfirmReceipt", own, false},
		{caller("support"), "ConfirmReceipt", own, false},
		{caller("vendor:v1"), "WatchFulfilments", resource{vendorID: "v1"}, true},
		{caller("vendor:v1"), "WatchFulfilments", resource{vendorID: "v2"}, false},
		{caller("support"), "WatchFulfilments", resource{vendorID: "v2"}, true},
		{caller("platform"), "WatchFulfilments", resource{vendorID: "v2"}, true},
		{caller("service"), "WatchFulfilments", resource{vendorID: "v2"}, false},
		{caller("creator:c1"), "GetFulfilment", own, false},
		{caller("buyer:b9", "vendor:v1"), "GetFulfilment", own, true},
		{caller("vendor:v1"), "NoSuchRPC", own, false},
		{auth.Caller{}, "GetFulfilment", resource{}, false},
	}
	for _, tt := range tests {
		if got := allowed(tt.caller, tt.rpc, tt.res); got != tt.want {
			t.Errorf("allowed(%v, %s, %+v) = %v, want %v", tt.caller.Roles, tt.rpc, tt.res, got, tt.want)
		}
	}
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
