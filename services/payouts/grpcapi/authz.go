package grpcapi

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/services/payouts/domain"
)

// Access control of custody.payouts.v1.PayoutsService (docs/design.md §5),
// one row per RPC:
//
//	RPC                 vendor:<id>                 creator:<id>                support  platform  buyer, carrier, service
//	GetBalance          owner = itself              owner = itself              all      all       -
//	ListLedgerEntries   account = one of its own    account = one of its own    all      all       -
//	GetStatement        account = one of its own    account = one of its own    all      all       -
//	RunPayouts          -                           -                           -        yes       -
//	GetPayoutBatch      its own lines of a batch    its own lines of a batch    all      all       -
//	                    that paid it                that paid it
//	GetOrderSettlement  its own part of an order    -                           all      all       -
//	                    it sells in
//
// Vendors and creators see only their own accounts; support and the
// platform see everything; only the platform runs payouts. Listing without
// an account (the whole ledger, or one order's entries, which touch many
// parties) is for support and the platform. An RPC missing from the table
// is denied to everyone.
var access = map[string]rule{
	"GetBalance":         {own: []auth.Kind{auth.Vendor, auth.Creator}, staff: []auth.Kind{auth.Support, auth.Platform}},
	"ListLedgerEntries":  {own: []auth.Kind{auth.Vendor, auth.Creator}, staff: []auth.Kind{auth.Support, auth.Platform}},
	"GetStatement":       {own: []auth.Kind{auth.Vendor, auth.Creator}, staff: []auth.Kind{auth.Support, auth.Platform}},
	"RunPayouts":         {staff: []auth.Kind{auth.Platform}},
	"GetPayoutBatch":     {own: []auth.Kind{auth.Vendor, auth.Creator}, staff: []auth.Kind{auth.Support, auth.Platform}},
	"GetOrderSettlement": {own: []auth.Kind{auth.Vendor}, staff: []auth.Kind{auth.Support, auth.Platform}},
}

// rule says who may call an RPC: scoped roles (own) on resources they own,
// unscoped roles (staff) on every resource.
type rule struct {
	own   []auth.Kind
	staff []auth.Kind
}

// staff reports whether the caller may call rpc on every resource.
func staff(c auth.Caller, rpc string) bool {
	for _, k := range access[rpc].staff {
		if c.Has(k) {
			return true
		}
	}
	return false
}

// owns reports whether the caller may call rpc on resources of owner
// ("vendor:v1", "creator:c1"; the platform's, buyers' and payouts' own
// accounts belong to no scoped role).
func owns(c auth.Caller, rpc, owner string) bool {
	kind, id, err := domain.ParseOwner(owner)
	if err != nil || id == "" {
		return false
	}
	for _, k := range access[rpc].own {
		if string(k) == kind && c.Is(k, id) {
			return true
		}
	}
	return false
}

// authorize checks that the caller may call rpc on every resource (owner
// ""), or on one owned by owner.
func authorize(c auth.Caller, ok bool, rpc, owner string) error {
	if !ok || len(c.Roles) == 0 {
		return status.Error(codes.Unauthenticated, "no caller identity")
	}
	if _, known := access[rpc]; !known {
		return apierr.PermissionDenied(rpc + " is not open to any caller")
	}
	if staff(c, rpc) || (owner != "" && owns(c, rpc, owner)) {
		return nil
	}
	var who []string
	for _, k := range access[rpc].own {
		who = append(who, string(k)+":<its own id>")
	}
	for _, k := range access[rpc].staff {
		who = append(who, string(k))
	}
	what := "every resource"
	if owner != "" {
		what = owner + "'s"
	}
	return apierr.PermissionDenied(fmt.Sprintf("%s on %s requires one of the roles %s", rpc, what, strings.Join(who, ", ")))
}

// actor is who the caller acts as, recorded with the events:
// "platform:<subject>" for a token issued to someone, else the role.
func actor(c auth.Caller) string {
	for _, k := range []auth.Kind{auth.Platform, auth.Support} {
		if c.Has(k) {
			if c.Subject != "" && c.Subject != string(k) {
				return string(k) + ":" + c.Subject
			}
			return string(k)
		}
	}
	if len(c.Roles) > 0 {
		return c.Roles[0].String()
	}
	return c.Subject
}
