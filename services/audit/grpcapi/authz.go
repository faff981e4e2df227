package grpcapi

import "github.com/custody/custody/pkg/auth"

// Access control of custody.audit.v1.AuditService (docs/design.md §5), as a table:
//
//	RPC               buyer:<id>     vendor  creator  carrier  support  platform  service
//	GetOrderTimeline  -              -       -        -        all      all       -
//	VerifyOrderChain  its own orders -       -        -        all      all       -
//	ReplayOrder       -              -       -        -        all      all       -
//	ListParkedEvents  -              -       -        -        all      all       -
//	RedriveParkedEvent -             -       -        -        all      all       -
//
// The audit trail is for the people who settle disputes: support (who
// replay an order's history to decide a claim) and platform (finance and
// operations). Its payloads carry what no single party may see of an order:
// every vendor's lines and splits, creators' commissions, the platform's
// fee, trust assessments. So a buyer does not read the timeline or the
// replay — the order, fulfilment and trust services show it its own view —
// but it may verify its own order's chain: the answer is only "intact" or
// the coordinates of the first broken link, and "anyone can verify" is the
// point of a tamper-evident record. Vendors are not given verification:
// an order's streams include other vendors' parts.
//
// Handing a parked event back to its consumer (RedriveParkedEvent) is an
// operator's act, recorded with who did it: support and platform only.
//
// Internal service callers have no access: nothing automated needs the
// audit trail, and it should not become a back door to other services'
// data.
//
// A caller with no role that could ever read an RPC is refused before the
// order is looked up (PermissionDenied, revealing nothing). A buyer asking
// for an order that is not its own gets PermissionDenied; an order with no
// events is NotFound for everyone allowed the RPC (order ids are 128-bit
// hashes, so existence reveals nothing guessable).
var access = auth.Access{
	"GetOrderTimeline":   auth.Allow(auth.Support, auth.Platform),
	"VerifyOrderChain":   auth.Allow(auth.Buyer, auth.Support, auth.Platform),
	"ReplayOrder":        auth.Allow(auth.Support, auth.Platform),
	"ListParkedEvents":   auth.Allow(auth.Support, auth.Platform),
	"RedriveParkedEvent": auth.Allow(auth.Support, auth.Platform),
}

// allowed reports whether caller may call rpc on an order of buyerID
// (empty: unknown).
func allowed(c auth.Caller, rpc, buyerID string) bool {
	return access.Allows(c, rpc, auth.Role{Kind: auth.Buyer, ID: buyerID})
}

// Access control of custody.audit.v1.PrivacyService:
//
//	RPC              buyer:<id>  vendor  creator  carrier  support  platform  service
//	EraseBuyer       -           -       -        -        -        all       -
//	ExportBuyerData  themself    -       -        -        -        all       -
//
// Erasure destroys data for good: the platform role (the data-protection
// officer's desk) only, never support, who settle disputes with the very
// data it destroys. An export is the buyer's right of access: the buyer
// asks for their own (buyer:<id> with the request's buyer_id), or the
// platform answers a request that came in another way. Support reads
// orders in the audit trail; it does not need a buyer's whole record.
var privacyAccess = auth.Access{
	"EraseBuyer":      auth.Allow(auth.Platform),
	"ExportBuyerData": auth.Allow(auth.Buyer, auth.Platform),
}
