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
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// Every RPC of the service has a row in the access table, and no row names
// an RPC that does not exist.
func TestPolicyCoversEveryRPC(t *testing.T) {
	t.Parallel()
	methods := map[string]bool{}
	for _, m := range catalogv1.CatalogService_ServiceDesc.Methods {
		methods[m.MethodName] = true
		if _, ok := policy[m.MethodName]; !ok {
			t.Errorf("%s has no access rule", m.MethodName)
		}
	}
	for rpc := range policy {
		if !methods[rpc] {
			t.Errorf("access rule for unknown RPC %s", rpc)
		}
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	as := func(roles ...string) context.Context {
		rs, err := auth.ParseRoles(roles)
		if err != nil {
			t.Fatal(err)
		}
		return auth.WithCaller(t.Context(), auth.Caller{Subject: roles[0], Roles: rs})
	}
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err    error
		want   codes.Code
		reason string
	}{
		{&domain.ValidationError{Violations: []domain.Violation{{Field: "skus", Description: "x"}}}, codes.InvalidArgument, ""},
		{fmt.Errorf("wrapped: %w", &domain.NotFoundError{Resource: "sku", ID: "p1-a"}), codes.NotFound, ""},
		{&domain.ExistsError{Resource: "vendor", ID: "v1"}, codes.AlreadyExists, ""},
		{&domain.InsufficientStockError{SkuID: "p1-a", Requested: 2}, codes.FailedPrecondition, "INSUFFICIENT_STOCK"},
		{domain.ErrSessionEnded, codes.FailedPrecondition, "SESSION_ENDED"},
		{&domain.RuleError{Reason: "STOCK_BELOW_RESERVED", Message: "m"}, codes.FailedPrecondition, "STOCK_BELOW_RESERVED"},
		{fmt.Errorf("%w: x", es.ErrConflict), codes.Aborted, "CONCURRENCY_CONFLICT"},
		{fmt.Errorf("x: %w", eventstore.ErrUnavailable), codes.Unavailable, ""},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{apierr.PermissionDenied("no"), codes.PermissionDenied, "PERMISSION_DENIED"},
		{errors.New("surprise"), codes.Internal, ""},
	}
	for _, tc := range cases {
		got := toStatus(t.Context(), log, tc.err)
		if status.Code(got) != tc.want || apierr.Reason(got) != tc.reason {
			t.Errorf("%v -> %v (%q), want %v (%q)", tc.err, status.Code(got), apierr.Reason(got), tc.want, tc.reason)
		}
	}
	if got := apierr.FieldViolations(toStatus(t.Context(), log, cases[0].err)); len(got) != 1 || got[0].Field != "skus" {
		t.Errorf("violations %v", got)
	}
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
