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
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/app"
	"github.com/custody/custody/services/fulfilment/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestAccessTableCoversEveryRPC(t *testing.T) {
	t.Parallel()
	desc := fulfilmentv1.FulfilmentService_ServiceDesc
	rpcs := map[string]bool{}
	for _, m := range desc.Methods {
		rpcs[m.MethodName] = true
	}
	for _, s := range desc.Streams {
		rpcs[s.StreamName] = true
	}
	for rpc := range rpcs {
		if _, ok := access[rpc]; !ok {
			t.Errorf("%s has no row in the access table", rpc)
		}
	}
	for rpc := range access {
		if !rpcs[rpc] {
			t.Errorf("the access table names %s, which the service does not have", rpc)
		}
	}
	if desc.ServiceName != ServiceName {
		t.Errorf("service name %s", desc.ServiceName)
	}
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	caller := func(roles ...string) auth.Caller {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Caller{Subject: roles[0], Roles: rs}
	}
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
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var v domain.Violations
	v.Add("packages[0].lines[1].quantity", "too many")
	tests := []struct {
		err  error
		want codes.Code
	}{
		{v.Err(), codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", v.Err()), codes.InvalidArgument},
		{&domain.PreconditionError{Reason: domain.ReasonCancelled, Message: "cancelled"}, codes.FailedPrecondition},
		{&fault.NotFoundError{Resource: "fulfilment", ID: "f1"}, codes.NotFound},
		{domain.ErrNotRequested, codes.NotFound},
		{domain.ErrUnknownTracking, codes.NotFound},
		{&domain.TrackingInUseError{Carrier: "dhl", TrackingNumber: "1234567890"}, codes.AlreadyExists},
		{&app.CursorError{Cursor: 9, Last: 3}, codes.InvalidArgument},
		{&app.BehindError{Cursor: 3}, codes.Unavailable},
		{app.ErrServiceStopping, codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrConflict), codes.Aborted},
		{fmt.Errorf("x: %w: boom", eventstore.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", es.ErrBadCommand), codes.InvalidArgument},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{apierr.PermissionDenied("no"), codes.PermissionDenied},
		{errors.New("something unforeseen"), codes.Internal},
	}
	for _, tt := range tests {
		got := s.toStatus(t.Context(), tt.err)
		if status.Code(got) != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	fvs := apierr.FieldViolations(s.toStatus(t.Context(), v.Err()))
	if len(fvs) != 1 || fvs[0].Field != "packages[0].lines[1].quantity" {
		t.Fatalf("field violations %v", fvs)
	}
	if r := apierr.Reason(s.toStatus(t.Context(), &domain.PreconditionError{Reason: domain.ReasonCancelled})); r != domain.ReasonCancelled {
		t.Fatalf("reason %q", r)
	}
}
