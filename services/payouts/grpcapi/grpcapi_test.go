package grpcapi

import (
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
	"github.com/custody/custody/pkg/es"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// The access table covers the service and says what authz.go does.
func TestAccess(t *testing.T) {
	authtest.Check(t, access, &payoutsv1.PayoutsService_ServiceDesc,
		authtest.Case{RPC: "GetBalance", Owners: "vendor:v1", In: []string{"vendor:v1"}, Out: []string{"service", "creator:v1"}},
		authtest.Case{RPC: "GetBalance", Owners: "vendor:v2", Out: []string{"vendor:v1"}},
		authtest.Case{RPC: "GetBalance", Owners: "creator:v1", Out: []string{"vendor:v1"}}, // same id, other kind
		authtest.Case{RPC: "GetBalance", Owners: "vendor:v9", In: []string{"buyer:b1 vendor:v9"}},
		authtest.Case{RPC: "GetStatement", Owners: "creator:c1", In: []string{"creator:c1"}},
		authtest.Case{RPC: "GetOrderSettlement", Owners: "creator:c1", Out: []string{"creator:c1"}},
		authtest.Case{RPC: "ListLedgerEntries", In: []string{"support"}, Out: []string{"vendor:v1"}},
		authtest.Case{RPC: "RunPayouts", In: []string{"platform"}, Out: []string{"support"}},
		authtest.Case{RPC: "NoSuchRPC", Out: []string{"platform"}},
	)
}

// An owner is a role the access table knows; "" is every resource.
func TestOwners(t *testing.T) {
	for owner, want := range map[string]string{"vendor:v1": "[vendor:v1]", "creator:c1": "[creator:c1]", "platform": "[platform]", "": "[]"} {
		if got := fmt.Sprint(owners(owner)); got != want {
			t.Errorf("owners(%q) = %s, want %s", owner, got, want)
		}
	}
	if a := actor(auth.Caller{Subject: "ops-1", Roles: []auth.Role{{Kind: auth.Platform}}}); a != "platform:ops-1" {
		t.Errorf("actor = %q", a)
	}
}

// Bad input is refused as such, before the caller is looked at.
func TestAdmitValidatesFirst(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	if _, err := s.admit(t.Context(), "RunPayouts", validateRun(&payoutsv1.RunPayoutsRequest{}), ""); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a run without request_id by no one: %v", err)
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: app.ErrBehind, Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", es.ErrBadCommand), Code: codes.InvalidArgument},
		apierrtest.Case{Err: domain.ErrUnbalanced, Code: codes.Internal},
		apierrtest.Case{Err: fmt.Errorf("x: %w", domain.ErrOverflow), Code: codes.FailedPrecondition, Reason: "AMOUNT_OVERFLOW"},
	)
}
