package grpcapi

import (
	"github.com/custody/custody/pkg/auth"
)

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
var access = map[string]rule{
	"ListFulfilments":     {vendor: true, buyer: true, support: true, platform: true, service: true},
	"GetFulfilment":       {vendor: true, buyer: true, support: true, platform: true, service: true},
	"ShipFulfilment":      {vendor: true, service: true},
	"RecordTrackingEvent": {carrier: true, service: true},
	"ConfirmReceipt":      {buyer: true, service: true},
	"WatchFulfilments":    {vendor: true, support: true, platform: true},
}

// rule says who may call an RPC: the scoped roles only on their own
// resources, the unscoped roles on every resource.
type rule struct {
	vendor, buyer, carrier     bool
	support, platform, service bool
}

// resource names the owners of what an RPC touches; empty fields match no
// scoped role.
type resource struct {
	vendorID, buyerID, carrier string
}

// allowed reports whether caller may call rpc on res.
func allowed(c auth.Caller, rpc string, res resource) bool {
	r, ok := access[rpc]
	if !ok {
		return false
	}
	switch {
	case r.support && c.Has(auth.Support), r.platform && c.Has(auth.Platform), r.service && c.Has(auth.Service):
		return true
	case r.vendor && res.vendorID != "" && c.Is(auth.Vendor, res.vendorID):
		return true
	case r.buyer && res.buyerID != "" && c.Is(auth.Buyer, res.buyerID):
		return true
	case r.carrier && res.carrier != "" && c.Is(auth.Carrier, res.carrier):
		return true
	}
	return false
}

// unscoped reports whether caller may call rpc on every resource.
func unscoped(c auth.Caller, rpc string) bool {
	r := access[rpc]
	return (r.support && c.Has(auth.Support)) || (r.platform && c.Has(auth.Platform)) || (r.service && c.Has(auth.Service))
}

// actor is who the caller acts as, recorded with the events: the scoped
// role it used on res ("vendor:v1", "carrier:dhl", "buyer:b1"), or for
// unscoped roles the role and the token's subject ("service:wms").
func actor(c auth.Caller, res resource) string {
	switch {
	case res.vendorID != "" && c.Is(auth.Vendor, res.vendorID):
		return "vendor:" + res.vendorID
	case res.carrier != "" && c.Is(auth.Carrier, res.carrier):
		return "carrier:" + res.carrier
	case res.buyerID != "" && c.Is(auth.Buyer, res.buyerID):
		return "buyer:" + res.buyerID
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
