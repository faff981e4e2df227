package grpcapi

import (
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth/authtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// The access table covers the service and says what authz.go does.
func TestPolicy(t *testing.T) {
	t.Parallel()
	authtest.Check(t, policy, &catalogv1.CatalogService_ServiceDesc,
		authtest.Case{RPC: "CreateProduct", Owners: "vendor:v1", In: []string{"vendor:v1"}, Out: []string{"creator:v1"}}, // same id, wrong kind
		authtest.Case{RPC: "CreateProduct", Owners: "vendor:v2", Out: []string{"vendor:v1"}},
		authtest.Case{RPC: "CreateProduct", Owners: "vendor:b1", Out: []string{"buyer:b1"}},
		authtest.Case{RPC: "AdjustStock", Owners: "vendor:v1", In: []string{"vendor:v2 vendor:v1"}, Out: []string{"support"}},
		authtest.Case{RPC: "CreateAffiliateLink", Owners: "creator:c1", In: []string{"creator:c1"}},
		authtest.Case{RPC: "PinProduct", Owners: "creator:c2", Out: []string{"creator:c1"}},
		authtest.Case{RPC: "GetProduct", In: []string{"support"}},
		authtest.Case{RPC: "ListProducts", In: []string{"buyer:b1"}},
		authtest.Case{RPC: "RegisterVendor", Owners: "vendor:v9", In: []string{"platform"}},
		authtest.Case{RPC: "RegisterVendor", Out: []string{"vendor:v1"}},
		authtest.Case{RPC: "EndLiveSession", Owners: "creator:c1", In: []string{"service"}},
		authtest.Case{RPC: "NoSuchRPC", Out: []string{"platform"}},
		authtest.Case{RPC: "SetVendorHandlingTime", Owners: "vendor:v1", In: []string{"vendor:v1", "platform", "service"}, Out: []string{"vendor:v2", "support", "creator:v1"}},
		authtest.Case{RPC: "UpdateProduct", Owners: "vendor:v1", In: []string{"vendor:v1", "platform"}, Out: []string{"vendor:v2", "support", "buyer:v1"}},
		authtest.Case{RPC: "SetSkuPrice", Owners: "vendor:v1", In: []string{"vendor:v1", "service"}, Out: []string{"vendor:v2", "support"}},
		authtest.Case{RPC: "AddSku", Owners: "vendor:v1", In: []string{"vendor:v1"}, Out: []string{"creator:v1", "support"}},
		authtest.Case{RPC: "ArchiveProduct", Owners: "vendor:v1", In: []string{"vendor:v1", "platform"}, Out: []string{"vendor:v2", "support", "buyer:b1"}},
	)
}

// The owner's id counts under the kind the row names, vendor or creator.
func TestAuthorize(t *testing.T) {
	t.Parallel()
	creator := authtest.Context(t, "c", "creator:x1")
	if err := authorize(creator, "PinProduct", "x1"); err != nil {
		t.Errorf("a creator pinning in its own session: %v", err)
	}
	if err := authorize(creator, "CreateProduct", "x1"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a creator creating a product of the vendor with its id: %v", err)
	}
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: &domain.InsufficientStockError{SkuID: "p1-a", Requested: 2}, Code: codes.FailedPrecondition, Reason: "INSUFFICIENT_STOCK"},
		apierrtest.Case{Err: domain.ErrSessionEnded, Code: codes.FailedPrecondition, Reason: "SESSION_ENDED"},
		apierrtest.Case{Err: domain.ErrProductArchived, Code: codes.FailedPrecondition, Reason: "PRODUCT_ARCHIVED"},
		apierrtest.Case{Err: domain.ErrTooManySKUs, Code: codes.FailedPrecondition, Reason: "TOO_MANY_SKUS"},
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
