package grpcapi

import (
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/services/order/app"
	"github.com/custody/custody/services/order/domain"
)

// Access control of custody.order.v1.OrderService (docs/design.md §5, Roles
// and access), as a table:
//
//	RPC                    buyer:<id>          vendor:<id>                  creator:<id>         support  platform  service
//	PlaceOrder             for itself only     -                            -                    -        -         for any buyer
//	GetOrder               its own orders      orders with a part for it    -                    all      all       all
//	ListOrders             buyer_id = itself   vendor_id = itself           creator_id = itself  all      all       all
//	CancelOrder            its own orders      -                            -                    all      -         all
//	CancelOrderLines       its own orders      its own part's lines only    -                    all      -         all
//	ChangeShippingAddress  its own orders      -                            -                    all      -         all
//
// A vendor admitted to CancelOrderLines only as one of the order's vendors
// (vendorOnly) may name only its own part's lines, or its own vendor_id:
// the aggregate refuses anything else (domain.ErrOtherVendor), which is
// PermissionDenied.
//
// ListOrders' filters all narrow the list, so one of them naming the
// caller (buyer_id, vendor_id or creator_id = itself) keeps every order
// listed the caller's own; support, platform and service may give any
// filters or none (every order).
//
// A caller who sees an order only as one of its vendors gets the vendor's
// view (vendorView): its own lines and part, the shipping address and the
// state, but not other vendors' lines, the payment or the order total. A
// creator sees its attributed orders in the creator's view (creatorView):
// the lines it earns commission on, the attribution, the state and times —
// not the buyer, the address, the payment or the total.
//
// The carrier role has no access. Anyone else asking for an
// existing order gets PermissionDenied; an order id that does not exist is
// NotFound for everyone (order ids are 128-bit hashes, so existence reveals
// nothing guessable). Authorization needs the order's buyer and vendors, so
// GetOrder and CancelOrder read the order first.
var access = auth.Access{
	"PlaceOrder":            auth.Allow(auth.Buyer, auth.Service),
	"GetOrder":              auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform, auth.Service),
	"ListOrders":            auth.Allow(auth.Buyer, auth.Vendor, auth.Creator, auth.Support, auth.Platform, auth.Service),
	"CancelOrder":           auth.Allow(auth.Buyer, auth.Support, auth.Service),
	"CancelOrderLines":      auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Service),
	"ChangeShippingAddress": auth.Allow(auth.Buyer, auth.Support, auth.Service),
}

// allowed reports whether caller may call rpc on a resource belonging to
// buyerID (empty: none) with parts for vendorIDs.
func allowed(c auth.Caller, rpc, buyerID string, vendorIDs ...string) bool {
	owners := []auth.Role{{Kind: auth.Buyer, ID: buyerID}}
	for _, v := range vendorIDs {
		owners = append(owners, auth.Role{Kind: auth.Vendor, ID: v})
	}
	return access.Allows(c, rpc, owners...)
}

// listAllowed reports whether caller may list the orders q selects: it
// is support, platform or service, or q names it as the buyer, a vendor or
// the creator (every filter narrows, so then every order listed is its own).
func listAllowed(c auth.Caller, q app.ListQuery) bool {
	return access.Allows(c, "ListOrders", auth.Role{Kind: auth.Buyer, ID: q.BuyerID},
		auth.Role{Kind: auth.Vendor, ID: q.VendorID}, auth.Role{Kind: auth.Creator, ID: q.CreatorID})
}

// actor is who the caller acts as, recorded with the events: "buyer:b1",
// or for unscoped roles the role and the token's subject ("service:checkout").
func actor(c auth.Caller, buyerID string) string {
	return auth.Actor(c, actorKinds, auth.Role{Kind: auth.Buyer, ID: buyerID})
}

// actorKinds are the unscoped roles an actor is named by.
var actorKinds = []auth.Kind{auth.Service, auth.Support, auth.Platform}

// vendorOnly is the vendor of order o caller acts as when rpc admits it
// only as one of o's vendors (not as its buyer or an unscoped role); ""
// otherwise.
func vendorOnly(c auth.Caller, rpc string, o domain.Order) string {
	if access.AllowsAll(c, rpc) || c.Is(auth.Buyer, o.BuyerID) {
		return ""
	}
	for _, p := range o.Parts {
		if c.Is(auth.Vendor, p.VendorID) {
			return p.VendorID
		}
	}
	return ""
}

// fullView reports whether caller sees all of an order of buyerID, rather
// than only a vendor's share of it.
func fullView(c auth.Caller, buyerID string) bool {
	return c.Has(auth.Support) || c.Has(auth.Platform) || c.Has(auth.Service) || c.Is(auth.Buyer, buyerID)
}
