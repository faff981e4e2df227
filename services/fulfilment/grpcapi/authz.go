package grpcapi

import "github.com/custody/custody/pkg/auth"

// Access control of custody.fulfilment.v1.FulfilmentService (docs/design.md
// §5, Roles and access), as one table:
//
//	RPC                  vendor:<id>          buyer:<id>                carrier:<code>               support  platform  service
//	ListFulfilments      vendor_id = itself   order_id of its own order -                            all      all       all
//	GetFulfilment        its own              its own                   -                            all      all       all
//	ShipFulfilment       its own              -                         -                            -        -         all
//	RecordTrackingEvent  -                    -                         its own carrier's numbers    -        -         all
//	ConfirmReceipt       -                    its own                   -                            -        -         all
//	WatchFulfilments     vendor_id = itself   -                         -                            all      all       -
//
// "Its own" is decided on the stored fulfilment (its vendor, its buyer),
// so authorization of GetFulfilment, ShipFulfilment and ConfirmReceipt reads
// it first. A carrier role's id is the carrier code (carrier:dhl), and
// tracking numbers are per carrier, so a carrier can only ever reach its
// own. service is an internal client acting for someone (a warehouse system
// for a vendor, a carrier integration, checkout for a buyer); support reads
// everything and changes nothing here. Creators have no access. Someone
// else's existing fulfilment is PermissionDenied; a missing one NotFound
// (ids are 96-bit hashes, so existence reveals nothing guessable).
var access = auth.Access{
	"ListFulfilments":     auth.Allow(auth.Vendor, auth.Buyer, auth.Support, auth.Platform, auth.Service),
	"GetFulfilment":       auth.Allow(auth.Vendor, auth.Buyer, auth.Support, auth.Platform, auth.Service),
	"ShipFulfilment":      auth.Allow(auth.Vendor, auth.Service),
	"RecordTrackingEvent": auth.Allow(auth.Carrier, auth.Service),
	"ConfirmReceipt":      auth.Allow(auth.Buyer, auth.Service),
	"WatchFulfilments":    auth.Allow(auth.Vendor, auth.Support, auth.Platform),
}

// resource names the owners of what an RPC touches; empty fields match no
// scoped role.
type resource struct {
	vendorID, buyerID, carrier string
}

// owners are the scoped roles res belongs to, in the order actor prefers
// them.
func (res resource) owners() []auth.Role {
	return []auth.Role{{Kind: auth.Vendor, ID: res.vendorID}, {Kind: auth.Carrier, ID: res.carrier}, {Kind: auth.Buyer, ID: res.buyerID}}
}

// allowed reports whether caller may call rpc on res.
func allowed(c auth.Caller, rpc string, res resource) bool {
	return access.Allows(c, rpc, res.owners()...)
}

// actor is who the caller acts as, recorded with the events: the scoped
// role it used on res ("vendor:v1", "carrier:dhl", "buyer:b1"), or for
// unscoped roles the role and the token's subject ("service:wms").
func actor(c auth.Caller, res resource) string {
	return auth.Actor(c, []auth.Kind{auth.Service, auth.Support, auth.Platform}, res.owners()...)
}
