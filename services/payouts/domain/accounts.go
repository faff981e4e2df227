package domain

import (
	"fmt"
	"regexp"
	"strings"
)

// Account ids are "<owner>:<bucket>". Owners: "vendor:<id>", "creator:<id>",
// "platform", and the external owners "buyers" and "payouts" through which
// money enters and leaves the ledger.
//
// Sign convention: a posting's amount is from the account's point of view
// (positive adds to its balance). The external accounts therefore show money
// in as a negative buyers:payments balance, and money out as positive
// buyers:refunds and payouts:sent balances; every other account holds money
// for someone. Because every transaction sums to zero, so do all balances:
// money in (−buyers:payments) = money out (buyers:refunds + payouts:sent) +
// the balances of the internal accounts.
const (
	// BuyerPayments is where captured buyer money comes from.
	BuyerPayments = "buyers:payments"
	// BuyerRefunds is where refunded buyer money goes.
	BuyerRefunds = "buyers:refunds"
	// PayoutsSent is where paid-out money goes.
	PayoutsSent = "payouts:sent"
	// PlatformPending holds the merchant fee of delivered parts in their
	// return window.
	PlatformPending = "platform:pending"
	// PlatformFees holds the platform's earned merchant fees.
	PlatformFees = "platform:fees"
)

// Bucket is the last part of a vendor's or creator's account id.
type Bucket string

// Buckets. Vendors have all but none; creators have pending and available.
const (
	Escrow    Bucket = "escrow"
	Pending   Bucket = "pending"
	Held      Bucket = "held"
	Available Bucket = "available"
	Reserve   Bucket = "reserve"
)

// VendorAccount is "vendor:<id>:<bucket>".
func VendorAccount(vendorID string, b Bucket) string { return "vendor:" + vendorID + ":" + string(b) }

// CreatorAccount is "creator:<id>:<bucket>".
func CreatorAccount(creatorID string, b Bucket) string {
	return "creator:" + creatorID + ":" + string(b)
}

// Owner kinds.
const (
	OwnerVendor   = "vendor"
	OwnerCreator  = "creator"
	OwnerPlatform = "platform"
	OwnerBuyers   = "buyers"
	OwnerPayouts  = "payouts"
)

// idPattern: vendor and creator ids are role ids (pkg/auth).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Account is a parsed account id.
type Account struct {
	// Kind is the owner kind: vendor, creator, platform, buyers, payouts.
	Kind string
	// ID is the vendor or creator id; empty for the others.
	ID string
	// Bucket is the last part ("available", "fees", "sent", …).
	Bucket string
}

// Owner is "vendor:<id>", "creator:<id>" or the kind.
func (a Account) Owner() string {
	if a.ID == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.ID
}

// String is the account id.
func (a Account) String() string { return a.Owner() + ":" + a.Bucket }

var buckets = map[string][]string{
	OwnerVendor:   {"escrow", "pending", "held", "available", "reserve"},
	OwnerCreator:  {"pending", "available"},
	OwnerPlatform: {"pending", "fees"},
	OwnerBuyers:   {"payments", "refunds"},
	OwnerPayouts:  {"sent"},
}

// Buckets lists the buckets of an owner kind, in display order.
func Buckets(kind string) []string { return buckets[kind] }

// ParseOwner parses "vendor:<id>", "creator:<id>", "platform", "buyers" or
// "payouts".
func ParseOwner(s string) (kind, id string, err error) {
	kind, id, scoped := strings.Cut(s, ":")
	switch kind {
	case OwnerVendor, OwnerCreator:
		if !scoped || !idPattern.MatchString(id) {
			return "", "", fmt.Errorf("%q: want %s:<id> with an id of 1-128 letters, digits, '.', '_' or '-'", s, kind)
		}
		return kind, id, nil
	case OwnerPlatform, OwnerBuyers, OwnerPayouts:
		if scoped {
			return "", "", fmt.Errorf("%q: %s takes no id", s, kind)
		}
		return kind, "", nil
	}
	return "", "", fmt.Errorf("%q: want vendor:<id>, creator:<id>, platform, buyers or payouts", s)
}

// ParseAccount parses an account id and checks that the owner has the bucket.
func ParseAccount(s string) (Account, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Account{}, fmt.Errorf("%q: want <owner>:<bucket>, e.g. vendor:v1:available", s)
	}
	kind, id, err := ParseOwner(s[:i])
	if err != nil {
		return Account{}, err
	}
	b := s[i+1:]
	for _, ok := range buckets[kind] {
		if b == ok {
			return Account{Kind: kind, ID: id, Bucket: b}, nil
		}
	}
	return Account{}, fmt.Errorf("%q: %s accounts are %s", s, kind, strings.Join(buckets[kind], ", "))
}

// Payable reports whether a payout run pays the account: vendors' and
// creators' available balances.
func Payable(account string) bool {
	a, err := ParseAccount(account)
	return err == nil && (a.Kind == OwnerVendor || a.Kind == OwnerCreator) && a.Bucket == string(Available)
}
