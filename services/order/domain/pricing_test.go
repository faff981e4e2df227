package domain_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/services/order/domain"
)

var skus = map[string]domain.SKU{
	"p1-a":   {SKUID: "p1-a", ProductID: "p1", VendorID: "v1", Title: "A", Price: eur(1000)},
	"p2-b":   {SKUID: "p2-b", ProductID: "p2", VendorID: "v2", Title: "B", Price: eur(500)},
	"p3-c":   {SKUID: "p3-c", ProductID: "p3", VendorID: "v1", Title: "C", Price: eur(99)},
	"p4-usd": {SKUID: "p4-usd", ProductID: "p4", VendorID: "v3", Title: "D", Price: money.MustNew("USD", 100)},
	"p5-big": {SKUID: "p5-big", ProductID: "p5", VendorID: "v3", Title: "E", Price: eur(1 << 62)},
	"p6-max": {SKUID: "p6-max", ProductID: "p6", VendorID: "v3", Title: "F", Price: eur(math.MaxInt64)},
	"p7-top": {SKUID: "p7-top", ProductID: "p7", VendorID: "v3", Title: "G", Price: eur(money.MaxUnitPrice)},
}

func find(id string) (domain.SKU, bool) { s, ok := skus[id]; return s, ok }

func TestPriceLinesAndSplit(t *testing.T) {
	lines, v := domain.PriceLines([]domain.LineRequest{{"p1-a", 2}, {"p2-b", 3}, {"p3-c", 1}}, find)
	if len(v) > 0 {
		t.Fatal(v)
	}
	want := twoVendorLines()
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, lines[i], want[i])
		}
	}
	parts, total, err := domain.Split(lines)
	if err != nil || total != eur(3599) || len(parts) != 2 ||
		parts[0].VendorID != "v1" || parts[0].Subtotal != eur(2099) || strings.Join(parts[0].LineIDs, ",") != "1,3" ||
		parts[1].VendorID != "v2" || parts[1].Subtotal != eur(1500) || strings.Join(parts[1].LineIDs, ",") != "2" {
		t.Fatalf("split = %+v, %v, %v", parts, total, err)
	}
	// Subtotals always add up to the total.
	var sum int64
	for _, p := range parts {
		sum += p.Subtotal.Minor
	}
	if sum != total.Minor {
		t.Fatalf("subtotals %d != total %d", sum, total.Minor)
	}
	if v := domain.CheckPayment(total, eur(3599)); len(v) > 0 {
		t.Fatal(v)
	}
}

func TestPriceLinesViolations(t *testing.T) {
	many := make([]domain.LineRequest, domain.MaxLines+1)
	tests := []struct {
		name  string
		lines []domain.LineRequest
		field string
	}{
		{"no lines", nil, "lines"},
		{"too many lines", many, "lines"},
		{"empty sku", []domain.LineRequest{{"p1-a", 1}, {"", 1}}, "lines[1].sku_id"},
		{"zero quantity", []domain.LineRequest{{"p1-a", 0}}, "lines[0].quantity"},
		{"negative quantity", []domain.LineRequest{{"p1-a", -3}}, "lines[0].quantity"},
		{"absurd quantity", []domain.LineRequest{{"p1-a", 1}, {"p2-b", 1001}}, "lines[1].quantity"},
		{"repeated sku", []domain.LineRequest{{"p1-a", 1}, {"p2-b", 1}, {"p1-a", 2}}, "lines[2].sku_id"},
		{"unknown sku", []domain.LineRequest{{"p1-a", 1}, {"nope", 1}}, "lines[1].sku_id"},
		{"mixed currency", []domain.LineRequest{{"p1-a", 1}, {"p4-usd", 1}}, "lines[1].sku_id"},
		// SKUs listed before prices were bounded cannot be ordered: their
		// line totals could overflow (the second is the reported 2^63-1).
		{"priced beyond the bound", []domain.LineRequest{{"p5-big", 1000}}, "lines[0].sku_id"},
		{"priced at int64's limit", []domain.LineRequest{{"p1-a", 1}, {"p6-max", 1}}, "lines[1].sku_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The edge checks the request's shape, then the app prices what
			// passed: between them, the first violation names the field.
			v := domain.CheckLineRequests(tt.lines)
			var lines []domain.Line
			if len(v) == 0 {
				lines, v = domain.PriceLines(tt.lines, find)
			}
			if lines != nil || len(v) == 0 || v[0].Field != tt.field {
				t.Fatalf("violations = %+v, want %s", v, tt.field)
			}
		})
	}
	if v := domain.CheckPayment(eur(3599), money.MustNew("USD", 3599)); len(v) != 1 || v[0].Field != "payment.amount" {
		t.Fatalf("currency mismatch: %+v", v)
	}
}

// At every bound at once — 100 lines of 1000 units at the highest price —
// an order still prices and splits exactly, to money.MaxAmount.
func TestPricesAtTheBounds(t *testing.T) {
	reqs := make([]domain.LineRequest, domain.MaxLines)
	top := map[string]domain.SKU{}
	for i := range reqs {
		id := fmt.Sprintf("p%d-top", i)
		reqs[i] = domain.LineRequest{SKUID: id, Quantity: domain.MaxQuantity}
		top[id] = domain.SKU{SKUID: id, ProductID: fmt.Sprintf("p%d", i), VendorID: fmt.Sprintf("v%d", i%3), Price: skus["p7-top"].Price}
	}
	if v := domain.CheckLineRequests(reqs); len(v) > 0 {
		t.Fatal(v)
	}
	lines, v := domain.PriceLines(reqs, func(id string) (domain.SKU, bool) { s, ok := top[id]; return s, ok })
	if len(v) > 0 {
		t.Fatal(v)
	}
	_, total, err := domain.Split(lines)
	if err != nil || total != eur(money.MaxAmount) {
		t.Fatalf("total %v, %v; want %d", total, err, int64(money.MaxAmount))
	}
}

func TestAttributeToLink(t *testing.T) {
	now := t0
	link := domain.Link{LinkID: "l1", CreatorID: "c1", ProductID: "p1", CommissionBps: 800}
	lines := twoVendorLines()
	out, attr, v := domain.AttributeToLink(lines, link, time.Time{}, now, domain.DefaultAttributionWindow)
	if len(v) > 0 {
		t.Fatal(v)
	}
	if out[0].CreatorID != "c1" || out[0].CommissionBps != 800 || out[1].CreatorID != "" || out[2].CreatorID != "" {
		t.Fatalf("lines = %+v", out)
	}
	if lines[0].CreatorID != "" {
		t.Fatal("input lines changed")
	}
	if attr.AffiliateLinkID != "l1" || attr.CreatorID != "c1" || !attr.TouchTime.Equal(now) {
		t.Fatalf("attribution = %+v", attr)
	}
	tests := []struct {
		name  string
		link  domain.Link
		touch time.Time
		field string
	}{
		{"inside the window", link, now.Add(-6 * 24 * time.Hour), ""},
		{"at the window's edge", link, now.Add(-domain.DefaultAttributionWindow), ""},
		{"outside the window", link, now.Add(-8 * 24 * time.Hour), "attribution.touch_time"},
		{"in the future", link, now.Add(time.Hour), "attribution.touch_time"},
		{"product not in the order", domain.Link{LinkID: "l2", CreatorID: "c1", ProductID: "p9"}, time.Time{}, "attribution.affiliate_link_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, v := domain.AttributeToLink(lines, tt.link, tt.touch, now, domain.DefaultAttributionWindow)
			if (tt.field == "") != (len(v) == 0) || (tt.field != "" && v[0].Field != tt.field) {
				t.Fatalf("violations = %+v, want %q", v, tt.field)
			}
		})
	}
}

func TestAttributeToSession(t *testing.T) {
	now := t0
	day := 24 * time.Hour
	session := domain.Session{SessionID: "s1", CreatorID: "c2", StartTime: now.Add(-20 * day), Pins: []domain.Pin{
		{ProductID: "p1", CommissionBps: 500, From: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)},
		{ProductID: "p1", CommissionBps: 700, From: now.Add(-30 * time.Minute)}, // re-pinned at a new rate, still pinned
		{ProductID: "p2", CommissionBps: 900, From: now.Add(-10 * day), Until: now.Add(-9 * day)},
		{ProductID: "p3", CommissionBps: 300, From: now.Add(time.Hour)}, // after the order
	}}
	lines := twoVendorLines()

	out, attr, v := domain.AttributeToSession(lines, session, time.Time{}, now, domain.DefaultAttributionWindow)
	if len(v) > 0 {
		t.Fatal(v)
	}
	if out[0].CreatorID != "c2" || out[0].CommissionBps != 700 {
		t.Errorf("p1 line = %+v, want the latest pin's rate", out[0])
	}
	if out[1].CreatorID != "" {
		t.Errorf("p2 line (pinned 10 days ago) = %+v, want unattributed", out[1])
	}
	if out[2].CreatorID != "" {
		t.Errorf("p3 line (pinned after the order) = %+v, want unattributed", out[2])
	}
	if attr.LiveSessionID != "s1" || attr.CreatorID != "c2" {
		t.Fatalf("attribution = %+v", attr)
	}

	// A touch 6 days ago looks back to 13 days ago: the p2 pin counts.
	out, _, v = domain.AttributeToSession(lines, session, now.Add(-6*day), now, domain.DefaultAttributionWindow)
	if len(v) > 0 || out[1].CreatorID != "c2" || out[1].CommissionBps != 900 {
		t.Fatalf("touch 6 days ago: %+v %+v", out, v)
	}

	onlyP2 := []domain.Line{lines[1]}
	if _, _, v := domain.AttributeToSession(onlyP2, session, time.Time{}, now, domain.DefaultAttributionWindow); len(v) != 1 || v[0].Field != "attribution.live_session_id" {
		t.Fatalf("only an old pin: %+v", v)
	}
	if _, _, v := domain.AttributeToSession(lines, session, now.Add(-8*day), now, domain.DefaultAttributionWindow); len(v) != 1 || v[0].Field != "attribution.touch_time" {
		t.Fatalf("touch outside the window: %+v", v)
	}
	late := session
	late.StartTime = now.Add(-time.Hour)
	if _, _, v := domain.AttributeToSession(lines, late, now.Add(-2*time.Hour), now, domain.DefaultAttributionWindow); len(v) != 1 || v[0].Field != "attribution.touch_time" {
		t.Fatalf("touch before the session: %+v", v)
	}
	onlyP3 := []domain.Line{lines[2]}
	if _, _, v := domain.AttributeToSession(onlyP3, session, time.Time{}, now, domain.DefaultAttributionWindow); len(v) != 1 {
		t.Fatalf("pinned only after the order: %+v", v)
	}
}
