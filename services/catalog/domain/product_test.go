package domain_test

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog/domain"
)

const pid = "p1"

func eur(minor int64) money.Money { return money.MustNew("EUR", minor) }

var (
	createCmd = domain.CreateProduct{
		ProductID: pid, VendorID: "v1", Title: "Tee", Description: "Cotton", Category: "apparel", CommissionBps: 1500,
		SKUs: []domain.SKUSpec{
			{Code: "black_m", Title: "Black, M", Price: eur(1999), InitialStock: 5},
			{Code: "white_m", Title: "White, M", Price: eur(1999), InitialStock: 2},
		},
		Now: t0,
	}
	created = &catalogv1.ProductCreated{
		ProductId: pid, VendorId: "v1", Title: "Tee", Description: "Cotton", Category: "apparel", AffiliateCommissionBps: 1500,
		Skus: []*catalogv1.SkuCreated{
			{SkuId: "p1-black_m", Code: "black_m", Title: "Black, M", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 1999}, InitialStock: 5},
			{SkuId: "p1-white_m", Code: "white_m", Title: "White, M", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 1999}, InitialStock: 2},
		},
		CreateTime: timestamppb.New(t0),
	}
	black, white = "p1-black_m", "p1-white_m"
)

func lines(kv ...any) []*catalogv1.StockLine {
	var out []*catalogv1.StockLine
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &catalogv1.StockLine{SkuId: kv[i].(string), Quantity: int64(kv[i+1].(int))})
	}
	return out
}

// held is a hold as recorded before holds were pruned (not decided once):
// the product keeps it, whatever becomes of it.
func held(order string, l ...any) *catalogv1.StockHeld {
	return &catalogv1.StockHeld{ProductId: pid, OrderId: order, Lines: lines(l...)}
}

// heldOnce is a hold decided under the order's decision id, as HoldStock
// and ReserveStock decide them now.
func heldOnce(order string, l ...any) *catalogv1.StockHeld {
	h := held(order, l...)
	h.DecidedOnce = true
	return h
}

func released(order, reason string, l ...any) *catalogv1.StockHoldReleased {
	return &catalogv1.StockHoldReleased{ProductId: pid, OrderId: order, Lines: lines(l...), Reason: reason}
}

func TestProductCreate(t *testing.T) {
	bad := func(mut func(*domain.CreateProduct)) domain.CreateProduct {
		c := createCmd
		c.SKUs = append([]domain.SKUSpec(nil), createCmd.SKUs...)
		mut(&c)
		return c
	}
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "create with two skus", When: createCmd, Then: []proto.Message{created}},
		{Name: "create again", Given: []proto.Message{created}, When: createCmd, Err: &domain.ExistsError{Resource: "product", ID: pid}},
		{Name: "no skus", When: bad(func(c *domain.CreateProduct) { c.SKUs = nil }), Err: estest.Invalid("skus")},
		{Name: "commission over 10000 bps", When: bad(func(c *domain.CreateProduct) { c.CommissionBps = 10001 }), Err: estest.Invalid("affiliate_commission_bps")},
		{Name: "negative commission", When: bad(func(c *domain.CreateProduct) { c.CommissionBps = -1 }), Err: estest.Invalid("affiliate_commission_bps")},
		{Name: "negative price", When: bad(func(c *domain.CreateProduct) { c.SKUs[1].Price.Minor = -1 }), Err: estest.Invalid("skus[1].price.amount_minor")},
		{Name: "price above the bound", When: bad(func(c *domain.CreateProduct) { c.SKUs[1].Price.Minor = money.MaxUnitPrice + 1 }), Err: estest.Invalid("skus[1].price.amount_minor")},
		{Name: "price of int64's limit", When: bad(func(c *domain.CreateProduct) { c.SKUs[0].Price.Minor = math.MaxInt64 }), Err: estest.Invalid("skus[0].price.amount_minor")},
		{Name: "mixed currencies", When: bad(func(c *domain.CreateProduct) { c.SKUs[1].Price = money.MustNew("USD", 1) }), Err: estest.Invalid("skus[1].price.currency_code")},
		{Name: "unknown currency", When: bad(func(c *domain.CreateProduct) { c.SKUs[0].Price.Currency = "XXX" }), Err: estest.Invalid("skus[0].price.currency_code")},
		{Name: "duplicate code", When: bad(func(c *domain.CreateProduct) { c.SKUs[1].Code = "black_m" }), Err: estest.Invalid("skus[1].code")},
		{Name: "bad code", When: bad(func(c *domain.CreateProduct) { c.SKUs[0].Code = "Black-M" }), Err: estest.Invalid("skus[0].code")},
		{Name: "negative stock", When: bad(func(c *domain.CreateProduct) { c.SKUs[0].InitialStock = -3 }), Err: estest.Invalid("skus[0].initial_stock")},
		{Name: "stock above the bound", When: bad(func(c *domain.CreateProduct) { c.SKUs[0].InitialStock = domain.MaxUnits + 1 }), Err: estest.Invalid("skus[0].initial_stock")},
		{Name: "no title", When: bad(func(c *domain.CreateProduct) { c.Title = " " }), Err: estest.Invalid("title")},
		{Name: "adjust before create", When: domain.AdjustStock{SkuID: black, Delta: 1}, Err: &domain.NotFoundError{Resource: "product", ID: pid}},
	})
	s := domain.Products.Fold(pid, nil)
	s = domain.Products.Evolve(s, created)
	if k, _ := s.SKU(black); !s.Created || k.Available != 5 || k.Price != eur(1999) || s.CommissionBps != 1500 {
		t.Fatalf("state %+v", s)
	}
}

func TestProductAdjustStock(t *testing.T) {
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "restock", Given: []proto.Message{created}, When: domain.AdjustStock{SkuID: black, Delta: 10, Reason: "delivery", Now: t1},
			Then: []proto.Message{&catalogv1.StockAdjusted{ProductId: pid, SkuId: black, Delta: 10, Reason: "delivery", AdjustTime: timestamppb.New(t1)}}},
		{Name: "correct down to what is reserved", Given: []proto.Message{created, held("o1", black, 3)},
			When: domain.AdjustStock{SkuID: black, Delta: -2, Reason: "damaged", Now: t1},
			Then: []proto.Message{&catalogv1.StockAdjusted{ProductId: pid, SkuId: black, Delta: -2, Reason: "damaged", AdjustTime: timestamppb.New(t1)}}},
		{Name: "never below reserved", Given: []proto.Message{created, held("o1", black, 3)},
			When: domain.AdjustStock{SkuID: black, Delta: -3}, Err: domain.ErrStockBelowReserved},
		{Name: "unknown sku", Given: []proto.Message{created}, When: domain.AdjustStock{SkuID: "p1-red", Delta: 1},
			Err: &domain.NotFoundError{Resource: "sku", ID: "p1-red"}},
		{Name: "zero delta", Given: []proto.Message{created}, When: domain.AdjustStock{SkuID: black}, Err: estest.Invalid("delta")},
		{Name: "beyond the unit limit", Given: []proto.Message{created}, When: domain.AdjustStock{SkuID: black, Delta: domain.MaxUnits},
			Err: estest.Invalid("delta")},
	})
}

func TestProductHolds(t *testing.T) {
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "hold two skus, repeated lines merged", Given: []proto.Message{created},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{white, 1}, {black, 2}, {white, 1}}},
			Then: []proto.Message{heldOnce("o1", black, 2, white, 2)}},
		{Name: "the place time is recorded", Given: []proto.Message{created},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}, PlacedAt: t0},
			Then: []proto.Message{placedAt(heldOnce("o1", black, 1), t0)}},
		{Name: "hold more than available", Given: []proto.Message{created, held("o1", white, 1)},
			When: domain.HoldStock{OrderID: "o2", Lines: []domain.Line{{black, 1}, {white, 2}}},
			Err:  &domain.InsufficientStockError{SkuID: white, Requested: 2, Available: 1}},
		{Name: "hold an unknown sku", Given: []proto.Message{created},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{"p1-red", 1}}},
			Err:  &domain.NotFoundError{Resource: "sku", ID: "p1-red"}},
		{Name: "hold zero units", Given: []proto.Message{created},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 0}}}, Err: estest.Invalid("lines[0].quantity")},
		{Name: "hold again for the same order is a no-op", Given: []proto.Message{created, held("o1", black, 2)},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 2}}}},
		{Name: "hold after release is a no-op, even with stock (a hold recorded before pruning)", Given: []proto.Message{created, held("o1", black, 2), released("o1", "reservation failed", black, 2)},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 2}}}},
		{Name: "hold after a tombstone is a no-op (recorded before pruning)", Given: []proto.Message{created, released("o1", "order cancelled")},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}}},
		{Name: "release a hold", Given: []proto.Message{created, held("o1", black, 2)},
			When: domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"},
			Then: []proto.Message{released("o1", "order cancelled", black, 2)}},
		{Name: "release twice", Given: []proto.Message{created, held("o1", black, 2), released("o1", "x", black, 2)},
			When: domain.ReleaseStock{OrderID: "o1", Reason: "again"}},
		{Name: "release a hold decided once says so", Given: []proto.Message{created, heldOnce("o1", black, 2)},
			When: domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"},
			Then: []proto.Message{releasedOnce("o1", "order cancelled", black, 2)}},
		{Name: "release an unseen order decides nothing", Given: []proto.Message{created},
			When: domain.ReleaseStock{OrderID: "o9", Reason: "order cancelled"}},
		{Name: "fence an unseen order: a tombstone decided once", Given: []proto.Message{created},
			When: domain.FenceOrder{OrderID: "o9", Reason: "order cancelled"},
			Then: []proto.Message{releasedOnce("o9", "order cancelled")}},
		{Name: "fence an order held before pruning: its hold is its fence", Given: []proto.Message{created, held("o1", black, 2)},
			When: domain.FenceOrder{OrderID: "o1", Reason: "order cancelled"}},
		{Name: "fence an order released before pruning", Given: []proto.Message{created, released("o1", "order cancelled")},
			When: domain.FenceOrder{OrderID: "o1", Reason: "again"}},
		{Name: "sell a hold", Given: []proto.Message{created, held("o1", black, 2)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh1", Lines: []domain.Line{{black, 2}}},
			Then: []proto.Message{&catalogv1.StockSold{ProductId: pid, OrderId: "o1", Lines: lines(black, 2), ShipmentId: "sh1"}}},
		{Name: "sell part of a hold, other products' lines ignored", Given: []proto.Message{created, held("o1", black, 2)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh1", Lines: []domain.Line{{black, 1}, {"p9-other", 4}}},
			Then: []proto.Message{&catalogv1.StockSold{ProductId: pid, OrderId: "o1", Lines: lines(black, 1), ShipmentId: "sh1"}}},
		{Name: "the same shipment sells once", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 1)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh1", Lines: []domain.Line{{black, 1}}}},
		{Name: "a second shipment sells the rest", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 1)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh2", Lines: []domain.Line{{black, 1}}},
			Then: []proto.Message{sold("o1", "sh2", black, 1)}},
		{Name: "shipping more than held is refused", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 2)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh2", Lines: []domain.Line{{black, 1}}}, Err: domain.ErrNoHold},
		{Name: "restock a resellable return", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 2)},
			When: domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 1}}},
			Then: []proto.Message{&catalogv1.StockRestocked{ProductId: pid, OrderId: "o1", Lines: lines(black, 1), ReturnId: "r1"}}},
		{Name: "the same return restocks once", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 2),
			&catalogv1.StockRestocked{ProductId: pid, OrderId: "o1", Lines: lines(black, 1), ReturnId: "r1"}},
			When: domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 1}}}},
		{Name: "restocking more than shipped is refused", Given: []proto.Message{created, held("o1", black, 2), sold("o1", "sh1", black, 1)},
			When: domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 2}}}, Err: domain.ErrNoHold},
		{Name: "sold units are not released", Given: []proto.Message{created, held("o1", black, 2), &catalogv1.StockSold{ProductId: pid, OrderId: "o1", Lines: lines(black, 2)}},
			When: domain.ReleaseStock{OrderID: "o1"}},
		{Name: "sell without a hold", Given: []proto.Message{created}, When: domain.SellStock{OrderID: "o1"}, Err: domain.ErrNoHold},
		{Name: "hold on a product that does not exist", When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}},
			Err: &domain.NotFoundError{Resource: "product"}},
	})
}

// TestProductReserves is ReserveStock: an order whose every line is this
// product's is held and answered in one decision.
func TestProductReserves(t *testing.T) {
	reserve := func(order string, ls ...domain.Line) domain.ReserveStock {
		return domain.ReserveStock{OrderID: order, Lines: ls, Now: t1}
	}
	reserved := func(order string, l ...any) *catalogv1.StockReserved {
		return &catalogv1.StockReserved{OrderId: order, Lines: lines(l...), ReserveTime: timestamppb.New(t1)}
	}
	failed := func(order, sku string, requested, available int64, reason string) *catalogv1.StockReservationFailed {
		return &catalogv1.StockReservationFailed{OrderId: order, SkuId: sku, Requested: requested, Available: available,
			Reason: reason, FailTime: timestamppb.New(t1), DecidedOnce: true}
	}
	refused := failed("o2", white, 2, 1, "sku p1-white_m: 2 requested, 1 available")
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "held and reserved in one decision, repeated lines merged", Given: []proto.Message{created},
			When: reserve("o1", domain.Line{white, 1}, domain.Line{black, 2}, domain.Line{white, 1}),
			Then: []proto.Message{heldOnce("o1", black, 2, white, 2), reserved("o1", black, 2, white, 2)}},
		{Name: "the place time is recorded", Given: []proto.Message{created},
			When: domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}, PlacedAt: t0, Now: t1},
			Then: []proto.Message{placedAt(heldOnce("o1", black, 1), t0), reserved("o1", black, 1)}},
		{Name: "short: the failure is recorded, nothing held", Given: []proto.Message{created, held("o1", white, 1)},
			When: reserve("o2", domain.Line{black, 1}, domain.Line{white, 2}), Then: []proto.Message{refused}},
		{Name: "an unknown sku fails the order", Given: []proto.Message{created},
			When: reserve("o1", domain.Line{"p1-red", 3}),
			Then: []proto.Message{failed("o1", "p1-red", 3, 0, "sku p1-red: no such sku")}},
		{Name: "reserved once", Given: []proto.Message{created, held("o1", black, 2), reserved("o1", black, 2)},
			When: reserve("o1", domain.Line{black, 2})},
		{Name: "failed once, even when stock came back (a failure recorded before pruning)", Given: []proto.Message{created, held("o1", white, 1), before(refused),
			released("o1", "order cancelled", white, 1)},
			When: reserve("o2", domain.Line{white, 2})},
		{Name: "nothing after a cancellation's tombstone (recorded before pruning)", Given: []proto.Message{created, released("o1", "order cancelled")},
			When: reserve("o1", domain.Line{black, 1})},
		{Name: "a failed order holds nothing to release", Given: []proto.Message{created, refused},
			When: domain.ReleaseStock{OrderID: "o2", Reason: "order rejected"}},
		{Name: "a failed order holds nothing to release (recorded before pruning)", Given: []proto.Message{created, before(refused)},
			When: domain.ReleaseStock{OrderID: "o2", Reason: "order rejected"}},
		{Name: "zero units", Given: []proto.Message{created}, When: reserve("o1", domain.Line{black, 0}), Err: estest.Invalid("lines[0].quantity")},
		{Name: "on a product that does not exist", When: reserve("o1", domain.Line{black, 1}),
			Err: &domain.NotFoundError{Resource: "product"}},
	})
}

func sold(order, shipment, sku string, n int) *catalogv1.StockSold {
	return &catalogv1.StockSold{ProductId: pid, OrderId: order, Lines: lines(sku, n), ShipmentId: shipment}
}

func TestProductLedger(t *testing.T) {
	s := domain.Products.Fold(pid, nil)
	for _, e := range []proto.Message{
		created,
		held("o1", black, 2, white, 1),
		held("o2", black, 1),
		released("o2", "cancelled", black, 1),
		&catalogv1.StockSold{ProductId: pid, OrderId: "o1", Lines: lines(black, 2, white, 1)},
		&catalogv1.StockAdjusted{ProductId: pid, SkuId: white, Delta: 4},
		held("o3", white, 2),
	} {
		s = domain.Products.Evolve(s, e)
	}
	want := map[string][3]int64{black: {3, 0, 2}, white: {3, 2, 1}}
	for id, w := range want {
		k, _ := s.SKU(id)
		if got := [3]int64{k.Available, k.Reserved, k.Sold}; got != w {
			t.Errorf("%s available/reserved/sold = %v, want %v", id, got, w)
		}
	}
	for order, st := range map[string]domain.HoldStatus{"o1": domain.HoldSold, "o2": domain.HoldReleased, "o3": domain.HoldHeld, "o4": domain.HoldNone} {
		if got := s.HoldFor(order).Status; got != st {
			t.Errorf("hold %s = %v, want %v", order, got, st)
		}
	}
	// Clones are independent.
	c := domain.Products.Evolve(domain.CloneProduct(s), held("o5", black, 1))
	if k, _ := c.SKU(black); k.Available != 2 {
		t.Fatalf("the clone did not evolve: %d available", k.Available)
	}
	if k, _ := s.SKU(black); k.Available != 3 || s.HoldFor("o5").Status != domain.HoldNone {
		t.Fatal("evolving a clone changed the original")
	}
	// Shipping on a clone changes neither the original's hold nor its maps.
	c = domain.Products.Evolve(domain.CloneProduct(s), sold("o3", "f9/s1", white, 1))
	if c.HoldFor("o3").Shipped[white] != 1 || s.HoldFor("o3").Shipped[white] != 0 || len(s.HoldFor("o3").Shipments) != 0 {
		t.Fatalf("shipping on a clone: clone %+v, original %+v", c.HoldFor("o3"), s.HoldFor("o3"))
	}
	if s.HoldCount() != 3 || c.HoldCount() != 3 {
		t.Fatalf("hold counts %d and %d, want 3 (o1, o2, o3)", s.HoldCount(), c.HoldCount())
	}
}

func TestIDs(t *testing.T) {
	p := domain.ProductID("v1", "r1")
	if p != domain.ProductID("v1", "r1") || p == domain.ProductID("v2", "r1") || len(p) != 21 || !domain.AssignedIDPattern.MatchString(p) {
		t.Fatalf("product id %q", p)
	}
	if got, ok := domain.ProductOfSKU(domain.SKUID(p, "black_m")); !ok || got != p {
		t.Fatalf("ProductOfSKU = %q, %v", got, ok)
	}
	for _, bad := range []string{"", "p1", "p1-", "-x", "p1-Black", "p.1-x", "p1-a-b"} {
		if _, ok := domain.ProductOfSKU(bad); ok {
			t.Errorf("ProductOfSKU(%q) ok", bad)
		}
	}
}
