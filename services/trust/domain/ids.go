package domain

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/custody/custody/pkg/es"
)

// claimSuffix is "_c" and 16 hex characters (64 bits of SHA-256).
var claimSuffix = regexp.MustCompile(`_c[0-9a-f]{16}$`)

// ClaimID is the id of the claim a buyer opens on an order with requestID:
// the same request always names the same claim (AIP-155). The order id is
// its prefix, so a claim id alone finds the order's claims stream:
// "<order_id>_c<16 hex>".
func ClaimID(buyerID, orderID, requestID string) string {
	return orderID + "_c" + es.DeriveID("claim", buyerID, orderID, requestID)[:16]
}

// OrderOfClaim returns the order id inside a claim id.
func OrderOfClaim(claimID string) (string, bool) {
	loc := claimSuffix.FindStringIndex(claimID)
	if loc == nil || loc[0] == 0 {
		return "", false
	}
	return claimID[:loc[0]], true
}

// ReturnID is the id of a claim's return (a claim has at most one).
func ReturnID(claimID string) string { return claimID + "_r" }

// RefundID is the id of the n-th refund (1-based) of an order.
func RefundID(orderID string, n int) string { return fmt.Sprintf("%s_f%d", orderID, n) }

var (
	plainStreamID   = regexp.MustCompile(`^[A-Za-z0-9-]{1,120}$`)
	escapedStreamID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,120}$`)
)

// TrustAggregateID is the stream id of a vendor's trust aggregate. Vendor
// ids are role ids ([A-Za-z0-9._-]); stream ids do not allow '.', so ids
// with '.' or '_' are escaped ('_' → "__", '.' → "_d"), and ids that would
// grow too long are hashed ("_h" + 32 hex, which no escape produces).
func TrustAggregateID(vendorID string) string {
	if plainStreamID.MatchString(vendorID) {
		return vendorID
	}
	esc := strings.NewReplacer("_", "__", ".", "_d").Replace(vendorID)
	if escapedStreamID.MatchString(esc) {
		return esc
	}
	return "_h" + es.DeriveID("vendor", vendorID)
}
