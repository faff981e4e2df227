package grpcapi

import "github.com/custody/custody/pkg/auth"

// Access control of custody.trust.v1.TrustService (docs/design.md §5), as a table:
//
//	RPC                   buyer:<id>               vendor:<id>              support  platform  service
//	OpenClaim             its own orders           -                        -        -         for any buyer
//	RespondToClaim        -                        claims against it        -        -         -
//	AnswerOffer           its own claims           -                        -        -         yes
//	ResolveClaim          -                        -                        yes      -         -
//	WithdrawClaim         its own claims           -                        -        -         yes
//	RecordReturnShipment  its own claims           -                        -        -         yes
//	ReceiveReturn         -                        claims against it        yes      -         -
//	GetClaim              its own claims           claims against it        yes      yes       yes
//	ListClaims            buyer_id = itself, or    vendor_id = itself       all      all       all
//	                      order_id of its order
//	GetVendorTrust        -                        itself                   yes      yes       -
//	ListVendorTrust       -                        -                        yes      yes       -
//
// Buyers claim only on their own orders, vendors respond only on claims
// against them, and only support decides. Creator and carrier roles have
// no access. A caller denied on an existing claim or order gets
// PermissionDenied; an id that does not exist is NotFound for everyone
// (claim and order ids are 128-bit hashes: existence reveals nothing
// guessable). Listing every claim (no order, vendor or buyer) is for
// support, platform and service.
var access = auth.Access{
	"OpenClaim":            auth.Allow(auth.Buyer, auth.Service),
	"RespondToClaim":       auth.Allow(auth.Vendor),
	"AnswerOffer":          auth.Allow(auth.Buyer, auth.Service),
	"ResolveClaim":         auth.Allow(auth.Support),
	"WithdrawClaim":        auth.Allow(auth.Buyer, auth.Service),
	"RecordReturnShipment": auth.Allow(auth.Buyer, auth.Service),
	"ReceiveReturn":        auth.Allow(auth.Vendor, auth.Support),
	"GetClaim":             auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform, auth.Service),
	"ListClaims":           auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform, auth.Service),
	"GetVendorTrust":       auth.Allow(auth.Vendor, auth.Support, auth.Platform),
	"ListVendorTrust":      auth.Allow(auth.Support, auth.Platform),
}

// owners are the scoped roles of a resource of buyerID and vendorID (empty:
// none), in the order actor prefers them.
func owners(buyerID, vendorID string) []auth.Role {
	return []auth.Role{{Kind: auth.Buyer, ID: buyerID}, {Kind: auth.Vendor, ID: vendorID}}
}

// allowed reports whether caller may call rpc on a resource of buyerID
// (empty: none) and vendorID (empty: none).
func allowed(c auth.Caller, rpc, buyerID, vendorID string) bool {
	return access.Allows(c, rpc, owners(buyerID, vendorID)...)
}

// actor is who the caller acts as, recorded with the events and in
// decided_by: "buyer:b1", "vendor:v1", or for unscoped roles the role and
// the token's subject ("support:alice").
func actor(c auth.Caller, buyerID, vendorID string) string {
	return auth.Actor(c, []auth.Kind{auth.Support, auth.Service, auth.Platform}, owners(buyerID, vendorID)...)
}
