package grpcapi

import "github.com/custody/custody/pkg/auth"

// Access control of custody.order.v1.OrderService (docs/design.md §5, Roles
// and access), as a table:
//
//	RPC          buyer:<id>          vendor:<id>                  support  platform  service
//	PlaceOrder   for itself only     -                            -        -         for any buyer
//	GetOrder     its own orders      orders with a part for it    all      all       all
//	ListOrders   buyer_id = itself   vendor_id = itself           all      all       all
//	CancelOrder  its own orders      -                            all      -         all
//
// A caller who sees an order only as one of its vendors gets the vendor's
// view (vendorView): its own lines and part, the shipping address and the
// state, but not other vendors' lines, the payment or the order total.
//
// creator and carrier roles have no access. Anyone else asking for an
// existing order gets PermissionDenied; an order id that does not exist is
// NotFound for everyone (order ids are 128-bit hashes, so existence reveals
// nothing guessable). Authorization needs the order's buyer and vendors, so
// GetOrder and CancelOrder read the order first.
var access = auth.Access{
	"PlaceOrder":  auth.Allow(auth.Buyer, auth.Service),
	"GetOrder":    auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform, auth.Service),
	"ListOrders":  auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform, auth.Service),
	"CancelOrder": auth.Allow(auth.Buyer, auth.Support, auth.Service),
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

// actor is who the caller acts as, recorded with the events: "buyer:b1",
// or for unscoped roles the role and the token's subject ("service:checkout").
func actor(c auth.Caller, buyerID string) string {
	return auth.Actor(c, []auth.Kind{auth.Service, auth.Support, auth.Platform}, auth.Role{Kind: auth.Buyer, ID: buyerID})
}

// fullView reports whether caller sees all of an order of buyerID, rather
// than only a vendor's share of it.
func fullView(c auth.Caller, buyerID string) bool {
	return c.Has(auth.Support) || c.Has(auth.Platform) || c.Has(auth.Service) || c.Is(auth.Buyer, buyerID)
}
