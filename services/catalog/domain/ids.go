package domain

import (
	"regexp"
	"strings"

	"github.com/custody/custody/pkg/es"
)

// Identifier rules. Every id that names an aggregate becomes a stream id
// ([A-Za-z0-9_-]); ids the catalog assigns contain no '-' so that a SKU id
// "<product_id>-<code>" splits unambiguously.
var (
	// VendorIDPattern: vendor ids are chosen by the registrant and appear in
	// roles (vendor:<id>) and stream names.
	VendorIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// CreatorIDPattern: creator ids come from roles (creator:<id>).
	CreatorIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	// SKUCodePattern: a SKU code, unique within its product.
	SKUCodePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	// AssignedIDPattern: ids the catalog assigns (products, links, sessions).
	AssignedIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	// OrderIDPattern: order ids (assigned by the order service) as stream ids.
	OrderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// assigned makes a catalog-assigned id: a one-letter kind prefix and 80
// bits of a hash of what makes it unique, so the same request always
// yields the same id.
func assigned(prefix string, parts ...string) string {
	return prefix + es.DeriveID(parts...)[:20]
}

// ProductID is the id of the product that vendorID creates with requestID.
func ProductID(vendorID, requestID string) string {
	return assigned("p", "product", vendorID, requestID)
}

// LinkID is the id of the affiliate link creatorID makes with requestID.
func LinkID(creatorID, requestID string) string { return assigned("l", "link", creatorID, requestID) }

// SessionID is the id of the live session creatorID starts with requestID.
func SessionID(creatorID, requestID string) string {
	return assigned("s", "session", creatorID, requestID)
}

// SKUID is the id of a product's SKU: "<product_id>-<code>".
func SKUID(productID, code string) string { return productID + "-" + code }

// ProductOfSKU returns the product id inside a SKU id, and whether the SKU
// id is well formed.
func ProductOfSKU(skuID string) (string, bool) {
	p, code, ok := strings.Cut(skuID, "-")
	if !ok || !AssignedIDPattern.MatchString(p) || !SKUCodePattern.MatchString(code) {
		return "", false
	}
	return p, true
}
