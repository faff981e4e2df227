package grpcapi

import (
	"context"

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
var access = auth.Access{
	"GetBalance":         auth.Allow(auth.Vendor, auth.Creator, auth.Support, auth.Platform),
	"ListLedgerEntries":  auth.Allow(auth.Vendor, auth.Creator, auth.Support, auth.Platform),
	"GetStatement":       auth.Allow(auth.Vendor, auth.Creator, auth.Support, auth.Platform),
	"RunPayouts":         auth.Allow(auth.Platform),
	"GetPayoutBatch":     auth.Allow(auth.Vendor, auth.Creator, auth.Support, auth.Platform),
	"GetOrderSettlement": auth.Allow(auth.Vendor, auth.Support, auth.Platform),
}

// owners are the roles of owner ("vendor:v1", "creator:c1"; "" for every
// resource). The platform's, buyers' and payouts' own accounts belong to
// no scoped role: only the unscoped roles reach them.
func owners(owner string) []auth.Role {
	if kind, id, err := domain.ParseOwner(owner); err == nil {
		return []auth.Role{{Kind: auth.Kind(kind), ID: id}}
	}
	return nil
}

// allowedOn reports whether the caller may call rpc on resources of owner.
func allowedOn(c auth.Caller, rpc, owner string) bool {
	return access.Allows(c, rpc, owners(owner)...)
}

// admit is an RPC's admission: a request its validation refused (invalid)
// is answered with its violations, whoever calls; for a valid one the
// caller is authorized on a resource of owner and returned.
func (s *Server) admit(ctx context.Context, rpc string, invalid error, owner string) (auth.Caller, error) {
	if invalid != nil {
		return auth.Caller{}, s.toStatus(ctx, invalid)
	}
	return apierr.Authorize(ctx, access, rpc, owners(owner)...)
}

// actor is who the caller acts as, recorded with the events:
// "platform:<subject>" for a token issued to someone, else the role.
func actor(c auth.Caller) string {
	return auth.Actor(c, []auth.Kind{auth.Platform, auth.Support})
}
