package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	var v domain.Violations
	v.Add("lines[2].quantity", "must be at least 1")
	tests := []struct {
		err  error
		want codes.Code
	}{
		{v.Err(), codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", v.Err()), codes.InvalidArgument},
		{&domain.PreconditionError{Reason: domain.ReasonShipped, Message: "shipped"}, codes.FailedPrecondition},
		{&fault.NotFoundError{Resource: "order", ID: "o1"}, codes.NotFound},
		{domain.ErrNotPlaced, codes.NotFound},
		{app.ErrCatalogUnavailable, codes.Unavailable},
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
	if len(fvs) != 1 || fvs[0].Field != "lines[2].quantity" {
		t.Fatalf("field violations %v", fvs)
	}
}

func TestAllowed(t *testing.T) {
	caller := func(roles ...string) auth.Caller {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Caller{Subject: roles[0], Roles: rs}
	}
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
