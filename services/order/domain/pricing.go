package domain

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
)

// Limits of one order: the marketplace's, kept once in pkg/money, whose
// bounds.go shows that with unit prices of at most money.MaxUnitPrice no
// order total, split or refund can overflow (at most money.MaxAmount).
const (
	MaxLines    = money.MaxOrderLines
	MaxQuantity = money.MaxLineQuantity
)

// LineRequest is a line as the buyer asked for it.
type LineRequest struct {
	SKUID    string
	Quantity int64
}

// SKU is what the catalog says about a SKU.
type SKU struct {
	SKUID     string
	ProductID string
	VendorID  string
	Title     string
	Price     money.Money
	// Archived: its product takes no new orders.
	Archived bool
}

// CheckLineRequests checks the shape of the requested lines, what needs no
// catalog: 1..MaxLines lines, each with a SKU id, a quantity in
// 1..MaxQuantity, no SKU twice. The edge (grpcapi) runs it with the rest of
// the request's validation, so that one answer names every bad field.
func CheckLineRequests(reqs []LineRequest) Violations {
	var v Violations
	switch {
	case len(reqs) == 0:
		v.Add("lines", "an order needs at least one line")
		return v
	case len(reqs) > MaxLines:
		v.Add("lines", "at most %d lines per order, got %d", MaxLines, len(reqs))
		return v
	}
	first := map[string]int{}
	for i, r := range reqs {
		switch {
		case r.SKUID == "":
			v.Add(lineField(i, "sku_id"), "required")
		case len(r.SKUID) > 128:
			v.Add(lineField(i, "sku_id"), "at most 128 characters")
		default:
			if j, seen := first[r.SKUID]; seen {
				v.Add(lineField(i, "sku_id"), "SKU %q repeats lines[%d]; order it once with the total quantity", r.SKUID, j)
			} else {
				first[r.SKUID] = i
			}
		}
		switch {
		case r.Quantity <= 0:
			v.Add(lineField(i, "quantity"), "must be at least 1, got %d", r.Quantity)
		case r.Quantity > MaxQuantity:
			v.Add(lineField(i, "quantity"), "at most %d per line, got %d", MaxQuantity, r.Quantity)
		}
	}
	return v
}

// PriceLines prices requested lines, whose shape CheckLineRequests has
// passed, at catalog prices (find looks a SKU up). Lines get ids "1", "2", …
// in request order. Every SKU must be known, priced within
// 0..money.MaxUnitPrice and in one currency, the first line's.
func PriceLines(reqs []LineRequest, find func(skuID string) (SKU, bool)) ([]Line, Violations) {
	var v Violations
	lines := make([]Line, 0, len(reqs))
	currency := ""
	for i, r := range reqs {
		sku, ok := find(r.SKUID)
		if !ok {
			v.Add(lineField(i, "sku_id"), "unknown SKU %q", r.SKUID)
			continue
		}
		if sku.Price.Minor < 0 || sku.Price.Minor > money.MaxUnitPrice {
			// Only a SKU listed before prices were bounded: the catalog
			// refuses such prices now.
			v.Add(lineField(i, "sku_id"), "SKU %q is priced at %s, outside 0..%d minor units: it cannot be ordered", r.SKUID, sku.Price, int64(money.MaxUnitPrice))
			continue
		}
		if currency == "" {
			currency = sku.Price.Currency
		} else if sku.Price.Currency != currency {
			v.Add(lineField(i, "sku_id"), "SKU %q is priced in %s, the order's other lines in %s: one currency per order", r.SKUID, sku.Price.Currency, currency)
			continue
		}
		total, err := sku.Price.Mul(r.Quantity)
		if err != nil {
			v.Add(lineField(i, "quantity"), "%d × %s overflows", r.Quantity, sku.Price)
			continue
		}
		lines = append(lines, Line{
			LineID: strconv.Itoa(i + 1), SKUID: r.SKUID, ProductID: sku.ProductID, VendorID: sku.VendorID,
			Title: sku.Title, Quantity: r.Quantity, UnitPrice: sku.Price, LineTotal: total,
		})
	}
	if len(v) > 0 {
		return nil, v
	}
	return lines, nil
}

// CheckOnSale refuses an order with a line of an archived product
// (find looks a SKU up; unknown SKUs are PriceLines' to name):
// FailedPrecondition PRODUCT_ARCHIVED, naming the product and the line.
func CheckOnSale(reqs []LineRequest, find func(skuID string) (SKU, bool)) error {
	for i, r := range reqs {
		if sku, ok := find(r.SKUID); ok && sku.Archived {
			return fault.Precondition(ReasonProductArchived, "lines[%d]: product %s (SKU %s) is archived: it takes no new orders", i, sku.ProductID, r.SKUID)
		}
	}
	return nil
}

// Pays reports whether amount is what lines, priced by PriceLines, cost
// in all.
func Pays(lines []Line, amount money.Money) bool {
	if len(lines) == 0 {
		return false
	}
	total := money.Money{Currency: lines[0].UnitPrice.Currency}
	for _, l := range lines {
		var err error
		if total, err = total.Add(l.LineTotal); err != nil {
			return false
		}
	}
	return total == amount
}

// Split groups lines into one part per vendor, in order of each vendor's
// first line, and adds up the subtotals and the total exactly. It checks the
// lines' arithmetic (line total = unit price × quantity, one currency), so
// an order built from it is consistent whoever priced the lines.
func Split(lines []Line) (parts []Part, total money.Money, err error) {
	if len(lines) == 0 {
		return nil, money.Money{}, errors.New("no lines")
	}
	total = money.Money{Currency: lines[0].UnitPrice.Currency}
	index := map[string]int{}
	for _, l := range lines {
		want, err := l.UnitPrice.Mul(l.Quantity)
		if err != nil {
			return nil, money.Money{}, fmt.Errorf("line %s: %w", l.LineID, err)
		}
		if want != l.LineTotal {
			return nil, money.Money{}, fmt.Errorf("line %s: total %s is not %d × %s", l.LineID, l.LineTotal, l.Quantity, l.UnitPrice)
		}
		if total, err = total.Add(l.LineTotal); err != nil {
			return nil, money.Money{}, fmt.Errorf("line %s: %w", l.LineID, err)
		}
		i, ok := index[l.VendorID]
		if !ok {
			i = len(parts)
			index[l.VendorID] = i
			parts = append(parts, Part{VendorID: l.VendorID, Subtotal: money.Money{Currency: total.Currency}})
		}
		p := &parts[i]
		p.LineIDs = append(p.LineIDs, l.LineID)
		if p.Subtotal, err = p.Subtotal.Add(l.LineTotal); err != nil {
			return nil, money.Money{}, fmt.Errorf("line %s: %w", l.LineID, err)
		}
	}
	return parts, total, nil
}

// CheckPayment checks that the authorised amount is exactly the total.
func CheckPayment(total, authorised money.Money) Violations {
	var v Violations
	if authorised != total {
		v.Add("payment.amount", "authorised %s, but the order total is %s", authorised, total)
	}
	return v
}

func lineField(i int, field string) string { return fmt.Sprintf("lines[%d].%s", i, field) }
