package grpcapi

import (
	"context"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
)

// policy is the catalog's access table (docs/design.md §5, "Roles and
// access"), one row per RPC; an RPC missing from it is denied to everyone.
//
//	RPC                  | who may call it, on which resources
//	---------------------+--------------------------------------------------------------
//	RegisterVendor       | vendor:<vendor_id> (itself); platform; service
//	SetVendorHandlingTime| vendor:<vendor_id> (itself); platform; service
//	CreateProduct        | vendor:<vendor_id> (its own catalog); platform; service
//	UpdateProduct        | vendor:<the product's vendor>; platform; service
//	SetSkuPrice          | vendor:<the SKU's product's vendor>; platform; service
//	AddSku               | vendor:<the product's vendor>; platform; service
//	ArchiveProduct       | vendor:<the product's vendor>; platform; service
//	AdjustStock          | vendor:<the SKU's product's vendor>; platform; service
//	CreateAffiliateLink  | creator:<creator_id> (itself); platform; service
//	StartLiveSession     | creator:<creator_id> (itself); platform; service
//	PinProduct           | creator:<the session's creator>; platform; service
//	UnpinProduct         | creator:<the session's creator>; platform; service
//	EndLiveSession       | creator:<the session's creator>; platform; service
//	GetVendor            | any authenticated caller (buyers, vendors, creators, support, …)
//	GetProduct           | any authenticated caller
//	ListProducts         | any authenticated caller
//	GetAffiliateLink     | any authenticated caller
//	GetLiveSession       | any authenticated caller
//
// Catalog data (vendors, products, links, sessions) is what buyers browse:
// every authenticated caller reads it. Support reads everything and changes
// nothing; buyers and carriers only read. A creator may pin any product
// (that is what affiliate selling is). A resource's owner is resolved per
// call: from the request, or from the stored resource when the request
// names only its id.
var policy = auth.Access{
	"RegisterVendor":        auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"SetVendorHandlingTime": auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"CreateProduct":         auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"UpdateProduct":         auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"SetSkuPrice":           auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"AddSku":                auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"ArchiveProduct":        auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"AdjustStock":           auth.Allow(auth.Vendor, auth.Platform, auth.Service),
	"CreateAffiliateLink":   auth.Allow(auth.Creator, auth.Platform, auth.Service),
	"StartLiveSession":      auth.Allow(auth.Creator, auth.Platform, auth.Service),
	"PinProduct":            auth.Allow(auth.Creator, auth.Platform, auth.Service),
	"UnpinProduct":          auth.Allow(auth.Creator, auth.Platform, auth.Service),
	"EndLiveSession":        auth.Allow(auth.Creator, auth.Platform, auth.Service),
	"GetVendor":             auth.Open,
	"GetProduct":            auth.Open,
	"ListProducts":          auth.Open,
	"GetAffiliateLink":      auth.Open,
	"GetLiveSession":        auth.Open,
}

// authorize checks the caller in ctx against rpc's row of the policy;
// ownerID is the id of the resource's owner, the vendor or the creator
// (whichever the row names), "" when the RPC has none.
func authorize(ctx context.Context, rpc, ownerID string) error {
	_, err := apierr.Authorize(ctx, policy, rpc, auth.Role{Kind: auth.Vendor, ID: ownerID}, auth.Role{Kind: auth.Creator, ID: ownerID})
	return err
}

// admit is an RPC's admission: a request its validation refused (invalid)
// is answered with its violations, whoever calls; a valid one is
// authorized on a resource of ownerID.
func admit(ctx context.Context, rpc string, invalid error, ownerID string) error {
	if invalid != nil {
		return invalid
	}
	return authorize(ctx, rpc, ownerID)
}
