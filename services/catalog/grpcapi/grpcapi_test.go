package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth/authtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestPolicyCoversEveryRPC(t *testing.T) {
	t.Parallel()
	if err := policy.Covers(&catalogv1.CatalogService_ServiceDesc); err != nil {
		t.Error(err)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	as := func(roles ...string) context.Context { return authtest.Context(t, roles[0], roles...) }
	cases := []struct {
		ctx   context.Context
		rpc   string
		owner string
		want  codes.Code
	}{
		{as("vendor:v1"), "CreateProduct", "v1", codes.OK},
		{as("vendor:v1"), "CreateProduct", "v2", codes.PermissionDenied},
		{as("vendor:v2", "vendor:v1"), "AdjustStock", "v1", codes.OK},
		{as("creator:c1"), "CreateAffiliateLink", "c1", codes.OK},
		{as("creator:c1"), "PinProduct", "c2", codes.PermissionDenied},
		{as("creator:v1"), "CreateProduct", "v1", codes.PermissionDenied}, // same id, wrong kind
		{as("buyer:b1"), "CreateProduct", "b1", codes.PermissionDenied},
		{as("support"), "AdjustStock", "v1", codes.PermissionDenied},
		{as("support"), "GetProduct", "", codes.OK},
		{as("buyer:b1"), "ListProducts", "", codes.OK},
		{as("platform"), "RegisterVendor", "v9", codes.OK},
		{as("service"), "EndLiveSession", "c1", codes.OK},
		{as("vendor:v1"), "RegisterVendor", "", codes.PermissionDenied},
		{as("platform"), "NoSuchRPC", "", codes.PermissionDenied},
		{t.Context(), "GetProduct", "", codes.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s", tc.rpc, tc.owner), func(t *testing.T) {
			if got := status.Code(authorize(tc.ctx, tc.rpc, tc.owner)); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
		})
	}
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: &domain.InsufficientStockError{SkuID: "p1-a", Requested: 2}, Code: codes.FailedPrecondition, Reason: "INSUFFICIENT_STOCK"},
		apierrtest.Case{Err: domain.ErrSessionEnded, Code: codes.FailedPrecondition, Reason: "SESSION_ENDED"},
	)
}

func TestPageTokens(t *testing.T) {
	t.Parallel()
	tok := encodePageToken("v1", 42)
	if pos, err := decodePageToken(tok, "v1"); err != nil || pos != 42 {
		t.Fatalf("round trip: %d %v", pos, err)
	}
	for _, bad := range []string{"!!", "eDE", encodePageToken("v2", 42)} {
		if _, err := decodePageToken(bad, "v1"); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	if encodePageToken("v1", 0) != "" {
		t.Error("last page has a token")
	}
}
