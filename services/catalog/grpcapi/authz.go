package grpcapi

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
)

// access says who may call one RPC.
type access struct {
	// anyone: every authenticated caller. Catalog data (vendors, products,
	// links, sessions) is what buyers browse; support reads it all.
	anyone bool
	// owner is the scoped role that may act on its own resources: vendor:<id>
	// for the vendor's products, creator:<id> for the creator's links and
	// sessions. The resource's owner is resolved per call (from the request,
	// or from the stored resource when the request names only its id).
	owner auth.Kind
	// staff may act on any resource.
	staff []auth.Kind
}

var internal = []auth.Kind{auth.Platform, auth.Service}

// policy is the catalog's access table (docs/design.md §5, "Roles and
// access"), one row per RPC; an RPC missing from it is denied to everyone.
//
//	RPC                  | who may call it, on which resources
//	---------------------+--------------------------------------------------------------
//	RegisterVendor       | vendor:<vendor_id> (itself); platform; service
//	CreateProduct        | vendor:<vendor_id> (its own catalog); platform; service
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
// Support reads everything and changes nothing; buyers and carriers only
// read. A creator may pin any product (that is what affiliate selling is).
var policy = map[string]access{
	"RegisterVendor":      {owner: auth.Vendor, staff: internal},
	"CreateProduct":       {owner: auth.Vendor, staff: internal},
	"AdjustStock":         {owner: auth.Vendor, staff: internal},
	"CreateAffiliateLink": {owner: auth.Creator, staff: internal},
	"StartLiveSession":    {owner: auth.Creator, staff: internal},
	"PinProduct":          {owner: auth.Creator, staff: internal},
	"UnpinProduct":        {owner: auth.Creator, staff: internal},
	"EndLiveSession":      {owner: auth.Creator, staff: internal},
	"GetVendor":           {anyone: true},
	"GetProduct":          {anyone: true},
	"ListProducts":        {anyone: true},
	"GetAffiliateLink":    {anyone: true},
	"GetLiveSession":      {anyone: true},
}

// authorize checks the caller in ctx against rpc's row of the policy;
// ownerID is the id of the resource's owner (vendor or creator), "" when
// the RPC has none.
func authorize(ctx context.Context, rpc, ownerID string) error {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no caller identity")
	}
	p, ok := policy[rpc]
	if !ok {
		return apierr.PermissionDenied(rpc + " is not open to any caller")
	}
	if p.anyone {
		return nil
	}
	for _, k := range p.staff {
		if c.Has(k) {
			return nil
		}
	}
	if p.owner != "" && ownerID != "" && c.Is(p.owner, ownerID) {
		return nil
	}
	who := make([]string, 0, len(p.staff)+1)
	if p.owner != "" {
		who = append(who, fmt.Sprintf("%s:%s", p.owner, ownerID))
	}
	for _, k := range p.staff {
		who = append(who, string(k))
	}
	return apierr.PermissionDenied(fmt.Sprintf("%s on this resource requires one of the roles %s", rpc, strings.Join(who, ", ")))
}
