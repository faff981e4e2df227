package grpcapi

import (
	"slices"

	"github.com/custody/custody/pkg/auth"
)

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
var access = map[string]rule{
	"PlaceOrder":  {buyer: true, service: true},
	"GetOrder":    {buyer: true, vendor: true, support: true, platform: true, service: true},
	"ListOrders":  {buyer: true, vendor: true, support: true, platform: true, service: true},
	"CancelOrder": {buyer: true, support: true, service: true},
}

// rule says who may call an RPC: buyer and vendor only on their own
// resources, the unscoped roles on every resource.
type rule struct {
	buyer, vendor              bool
	support, platform, service bool
}

// allowed reports whether caller may call rpc on a resource belonging to
// buyerID (empty: none) with parts for vendorIDs.
func allowed(c auth.Caller, rpc, buyerID string, vendorIDs ...string) bool {
	r, ok := access[rpc]
	if !ok {
		return false
	}
	switch {
	case r.support && c.Has(auth.Support), r.platform && c.Has(auth.Platform), r.service && c.Has(auth.Service):
		return true
	case r.buyer && buyerID != "" && c.Is(auth.Buyer, buyerID):
		return true
	case r.vendor && slices.ContainsFunc(vendorIDs, func(v string) bool { return v != "" && c.Is(auth.Vendor, v) }):
		return true
	}
	return false
}

// actor is who the caller acts as, recorded with the events: "buyer:b1",
// or for unscoped roles the role and the token's subject ("service:checkout").
func actor(c auth.Caller, buyerID string) string {
	if buyerID != "" && c.Is(auth.Buyer, buyerID) {
		return "buyer:" + buyerID
	}
	for _, k := range []auth.Kind{auth.Service, auth.Support, auth.Platform} {
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

// fullView reports whether caller sees all of an order of buyerID, rather
// than only a vendor's share of it.
func fullView(c auth.Caller, buyerID string) bool {
	return c.Has(auth.Support) || c.Has(auth.Platform) || c.Has(auth.Service) || c.Is(auth.Buyer, buyerID)
}
