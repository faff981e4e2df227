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
var access = map[string]rule{
	"OpenClaim":            {buyer: true, service: true},
	"RespondToClaim":       {vendor: true},
	"AnswerOffer":          {buyer: true, service: true},
	"ResolveClaim":         {support: true},
	"WithdrawClaim":        {buyer: true, service: true},
	"RecordReturnShipment": {buyer: true, service: true},
	"ReceiveReturn":        {vendor: true, support: true},
	"GetClaim":             {buyer: true, vendor: true, support: true, platform: true, service: true},
	"ListClaims":           {buyer: true, vendor: true, support: true, platform: true, service: true},
	"GetVendorTrust":       {vendor: true, support: true, platform: true},
	"ListVendorTrust":      {support: true, platform: true},
}

// rule says who may call an RPC: buyer and vendor only on their own
// resources, the unscoped roles on every resource.
type rule struct {
	buyer, vendor              bool
	support, platform, service bool
}

// allowed reports whether caller may call rpc on a resource of buyerID
// (empty: none) and vendorID (empty: none).
func allowed(c auth.Caller, rpc, buyerID, vendorID string) bool {
	r, ok := access[rpc]
	if !ok {
		return false
	}
	switch {
	case r.support && c.Has(auth.Support), r.platform && c.Has(auth.Platform), r.service && c.Has(auth.Service):
		return true
	case r.buyer && buyerID != "" && c.Is(auth.Buyer, buyerID):
		return true
	case r.vendor && vendorID != "" && c.Is(auth.Vendor, vendorID):
		return true
	}
	return false
}

// actor is who the caller acts as, recorded with the events and in
// decided_by: "buyer:b1", "vendor:v1", or for unscoped roles the role and
// the token's subject ("support:alice").
func actor(c auth.Caller, buyerID, vendorID string) string {
	if buyerID != "" && c.Is(auth.Buyer, buyerID) {
		return "buyer:" + buyerID
	}
	if vendorID != "" && c.Is(auth.Vendor, vendorID) {
		return "vendor:" + vendorID
	}
	for _, k := range []auth.Kind{auth.Support, auth.Service, auth.Platform} {
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
