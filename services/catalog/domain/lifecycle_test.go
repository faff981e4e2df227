package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// A product's life after it was created: its descriptive fields, its
// prices, new SKUs, and archiving, which ends new orders, links and pins.

var archived = &catalogv1.ProductArchived{ProductId: pid, VendorId: "v1", Reason: "discontinued", ArchiveTime: timestamppb.New(t1)}

// evolveAll folds events into s.
func evolveAll[S any](s S, evolve func(S, proto.Message) S, events ...proto.Message) S {
	for _, e := range events {
		s = evolve(s, e)
	}
	return s
}

func pmoney(m money.Money) *typev1.Money { return m.ToProto() }

func TestProductUpdate(t *testing.T) {
	update := func(fields ...string) domain.UpdateProduct {
		return domain.UpdateProduct{Fields: fields, Title: "Tee v2", Description: "Organic cotton", Category: "apparel", CommissionBps: 2000, Now: t1}
	}
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "title and commission; every field as it is after", Given: []proto.Message{created},
			When: update("affiliate_commission_bps", "title"),
			Then: []proto.Message{&catalogv1.ProductUpdated{ProductId: pid, Title: "Tee v2", Description: "Cotton", Category: "apparel",
				AffiliateCommissionBps: 2000, ChangedFields: []string{"title", "affiliate_commission_bps"}, UpdateTime: timestamppb.New(t1)}}},
		{Name: "a field not in the mask is left as it is", Given: []proto.Message{created},
			When: update("description"),
			Then: []proto.Message{&catalogv1.ProductUpdated{ProductId: pid, Title: "Tee", Description: "Organic cotton", Category: "apparel",
				AffiliateCommissionBps: 1500, ChangedFields: []string{"description"}, UpdateTime: timestamppb.New(t1)}}},
		{Name: "the values it has already: nothing", Given: []proto.Message{created},
			When: domain.UpdateProduct{Fields: []string{"category"}, Category: "apparel", Now: t1}},
		{Name: "no fields", Given: []proto.Message{created}, When: update(), Err: estest.Invalid("update_mask")},
		{Name: "an unknown field", Given: []proto.Message{created}, When: update("vendor_id"), Err: estest.Invalid("update_mask")},
		{Name: "a blank title", Given: []proto.Message{created},
			When: domain.UpdateProduct{Fields: []string{"title"}, Title: " "}, Err: estest.Invalid("title")},
		{Name: "commission over 10000 bps", Given: []proto.Message{created},
			When: domain.UpdateProduct{Fields: []string{"affiliate_commission_bps"}, CommissionBps: 10001}, Err: estest.Invalid("affiliate_commission_bps")},
		{Name: "an archived product does not change", Given: []proto.Message{created, archived},
			When: update("title"), Err: domain.ErrProductArchived},
		{Name: "before it was created", When: update("title"), Err: &domain.NotFoundError{Resource: "product", ID: pid}},
	})
	s := domain.Products.Fold(pid, nil)
	s = domain.Products.Evolve(s, created)
	s = domain.Products.Evolve(s, &catalogv1.ProductUpdated{ProductId: pid, Title: "Tee v2", Description: "Cotton", Category: "tops", AffiliateCommissionBps: 2000})
	if s.Title != "Tee v2" || s.Category != "tops" || s.CommissionBps != 2000 || len(s.SKUs) != 2 {
		t.Fatalf("state %+v", s)
	}
}

func TestSkuPrice(t *testing.T) {
	changed := &catalogv1.SkuPriceChanged{ProductId: pid, SkuId: black, Price: pmoney(eur(2499)), PreviousPrice: pmoney(eur(1999)), ChangeTime: timestamppb.New(t1)}
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "a new price, with the one before", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: black, Price: eur(2499), Now: t1}, Then: []proto.Message{changed}},
		{Name: "the price it has: nothing", Given: []proto.Message{created, changed},
			When: domain.SetSkuPrice{SkuID: black, Price: eur(2499), Now: t2}},
		{Name: "free is a price", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: white, Price: eur(0), Now: t1},
			Then: []proto.Message{&catalogv1.SkuPriceChanged{ProductId: pid, SkuId: white, Price: pmoney(eur(0)), PreviousPrice: pmoney(eur(1999)), ChangeTime: timestamppb.New(t1)}}},
		{Name: "another currency than the product's", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: black, Price: money.MustNew("USD", 100)}, Err: estest.Invalid("price.currency_code")},
		{Name: "above the bound", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: black, Price: eur(money.MaxUnitPrice + 1)}, Err: estest.Invalid("price.amount_minor")},
		{Name: "negative", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: black, Price: eur(-1)}, Err: estest.Invalid("price.amount_minor")},
		{Name: "an unknown sku", Given: []proto.Message{created},
			When: domain.SetSkuPrice{SkuID: "p1-red", Price: eur(1)}, Err: &domain.NotFoundError{Resource: "sku", ID: "p1-red"}},
		{Name: "an archived product is not repriced", Given: []proto.Message{created, archived},
			When: domain.SetSkuPrice{SkuID: black, Price: eur(1)}, Err: domain.ErrProductArchived},
	})
	s := domain.Products.Fold(pid, nil)
	s = domain.Products.Evolve(s, created)
	s = domain.Products.Evolve(s, heldOnce("o1", black, 2))
	s = domain.Products.Evolve(s, changed)
	if k, _ := s.SKU(black); k.Price != eur(2499) || k.Available != 3 || k.Reserved != 2 {
		t.Fatalf("black after the price change: %+v (the ledger stays as it was)", k)
	}
}

func TestAddSku(t *testing.T) {
	red := domain.SKUSpec{Code: "red_m", Title: "Red, M", Price: eur(2199), InitialStock: 4}
	added := &catalogv1.SkuAdded{ProductId: pid, AddTime: timestamppb.New(t1),
		Sku: &catalogv1.SkuCreated{SkuId: "p1-red_m", Code: "red_m", Title: "Red, M", Price: pmoney(eur(2199)), InitialStock: 4}}
	with := func(mut func(*domain.SKUSpec)) domain.AddSKU {
		k := red
		mut(&k)
		return domain.AddSKU{SKU: k, Now: t1}
	}
	full := &catalogv1.ProductCreated{ProductId: pid, VendorId: "v1", Title: "Many"}
	for i := range domain.MaxSKUs {
		full.Skus = append(full.Skus, &catalogv1.SkuCreated{SkuId: domain.SKUID(pid, "k"+string(rune('a'+i/26))+string(rune('a'+i%26))), Price: pmoney(eur(1))})
	}
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "a new sku with its stock", Given: []proto.Message{created}, When: domain.AddSKU{SKU: red, Now: t1}, Then: []proto.Message{added}},
		{Name: "a code the product has", Given: []proto.Message{created},
			When: with(func(k *domain.SKUSpec) { k.Code = "black_m" }), Err: &domain.ExistsError{Resource: "sku", ID: black}},
		{Name: "a bad code, another currency, negative stock", Given: []proto.Message{created},
			When: with(func(k *domain.SKUSpec) { k.Code = "Red"; k.Price = money.MustNew("USD", 1); k.InitialStock = -1 }),
			Err:  estest.Invalid("sku.code", "sku.price.currency_code", "sku.initial_stock")},
		{Name: "a price above the bound", Given: []proto.Message{created},
			When: with(func(k *domain.SKUSpec) { k.Price = eur(money.MaxUnitPrice + 1) }), Err: estest.Invalid("sku.price.amount_minor")},
		{Name: "the most SKUs a product may have", Given: []proto.Message{full}, When: domain.AddSKU{SKU: red}, Err: domain.ErrTooManySKUs},
		{Name: "an archived product", Given: []proto.Message{created, archived}, When: domain.AddSKU{SKU: red}, Err: domain.ErrProductArchived},
	})
	s := evolveAll(domain.Products.Initial(pid), domain.Products.Evolve, created, added)
	if k, ok := s.SKU("p1-red_m"); !ok || k.Available != 4 || k.Price != eur(2199) || len(s.SKUs) != 3 {
		t.Fatalf("state %+v", s)
	}
}

func TestArchiveProduct(t *testing.T) {
	reserve := func(order string, placed time.Time) domain.ReserveStock {
		return domain.ReserveStock{OrderID: order, Lines: []domain.Line{{black, 2}}, PlacedAt: placed, Now: t2}
	}
	late := t1.Add(time.Millisecond)
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "archive", Given: []proto.Message{created}, When: domain.ArchiveProduct{Reason: "discontinued", Now: t1}, Then: []proto.Message{archived}},
		{Name: "archive an archived product: nothing", Given: []proto.Message{created, archived}, When: domain.ArchiveProduct{Reason: "again", Now: t2}},
		{Name: "an order placed after: refused in one decision, no shortfall", Given: []proto.Message{created, archived},
			When: reserve("o1", late),
			Then: []proto.Message{&catalogv1.StockReservationFailed{OrderId: "o1", SkuId: black, Requested: 2, Available: 5,
				Reason: "product p1 was archived at " + t1.Format(time.RFC3339) + ": it takes no new orders", FailTime: timestamppb.New(t2),
				DecidedOnce: true, PlaceTime: timestamppb.New(late)}}},
		{Name: "an order placed before it is reserved", Given: []proto.Message{created, archived},
			When: reserve("o1", t0),
			Then: []proto.Message{placedAt(heldOnce("o1", black, 2), t0), &catalogv1.StockReserved{OrderId: "o1", Lines: lines(black, 2), ReserveTime: timestamppb.New(t2)}}},
		{Name: "a hold for an order placed after is refused", Given: []proto.Message{created, archived},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}, PlacedAt: late}, Err: domain.ErrProductArchived},
		{Name: "a hold without a place time is refused", Given: []proto.Message{created, archived},
			When: domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}}, Err: domain.ErrProductArchived},
		{Name: "existing holds ship", Given: []proto.Message{created, heldOnce("o1", black, 2), archived},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "sh1", Lines: []domain.Line{{black, 2}}},
			Then: []proto.Message{sold("o1", "sh1", black, 2)}},
		{Name: "existing holds are released", Given: []proto.Message{created, heldOnce("o1", black, 2), archived},
			When: domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"},
			Then: []proto.Message{releasedOnce("o1", "order cancelled", black, 2)}},
		{Name: "returns restock", Given: []proto.Message{created, heldOnce("o1", black, 2), sold("o1", "sh1", black, 2), archived},
			When: domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 1}}},
			Then: []proto.Message{&catalogv1.StockRestocked{ProductId: pid, OrderId: "o1", Lines: lines(black, 1), ReturnId: "r1"}}},
		{Name: "stock is still corrected", Given: []proto.Message{created, archived},
			When: domain.AdjustStock{SkuID: black, Delta: -5, Reason: "written off", Now: t2},
			Then: []proto.Message{&catalogv1.StockAdjusted{ProductId: pid, SkuId: black, Delta: -5, Reason: "written off", AdjustTime: timestamppb.New(t2)}}},
	})
	s := evolveAll(domain.Products.Initial(pid), domain.Products.Evolve, created, archived)
	if !s.Archived || !s.ArchivedAt.Equal(t1) {
		t.Fatalf("state %+v", s)
	}
}

func TestArchivedProductTakesNoLinksOrPins(t *testing.T) {
	estest.Run(t, domain.Links, "l1", []estest.Case[domain.LinkCommand]{
		{Name: "a new link", When: domain.CreateLink{CreatorID: "c1", ProductID: pid, VendorID: "v1", CommissionBps: 1500, Archived: true},
			Err: domain.ErrProductArchived},
	})
	started := &catalogv1.LiveSessionStarted{SessionId: "s1", CreatorId: "c1", StartTime: timestamppb.New(t0)}
	estest.Run(t, domain.Sessions, "s1", []estest.Case[domain.SessionCommand]{
		{Name: "a new pin", Given: []proto.Message{started}, When: domain.PinProduct{ProductID: pid, VendorID: "v1", Archived: true},
			Err: domain.ErrProductArchived},
	})
}

func TestVendorHandlingTime(t *testing.T) {
	registered := &catalogv1.VendorRegistered{VendorId: "v1", DisplayName: "Acme", CountryCode: "DE", RegisteredTime: timestamppb.New(t0),
		HandlingTime: durationpb.New(48 * time.Hour)}
	set := func(d time.Duration) *catalogv1.VendorHandlingTimeSet {
		s := &catalogv1.VendorHandlingTimeSet{VendorId: "v1", SetTime: timestamppb.New(t1)}
		if d > 0 {
			s.HandlingTime = durationpb.New(d)
		}
		return s
	}
	estest.Run(t, domain.Vendors, "v1", []estest.Case[domain.VendorCommand]{
		{Name: "register with a handling time", When: domain.RegisterVendor{VendorID: "v1", DisplayName: "Acme", CountryCode: "DE", HandlingTime: 48 * time.Hour, Now: t0},
			Then: []proto.Message{registered}},
		{Name: "register with a handling time out of bounds", When: domain.RegisterVendor{VendorID: "v1", DisplayName: "Acme", CountryCode: "DE", HandlingTime: time.Minute},
			Err: estest.Invalid("handling_time")},
		{Name: "set another", Given: []proto.Message{registered}, When: domain.SetHandlingTime{HandlingTime: 24 * time.Hour, Now: t1},
			Then: []proto.Message{set(24 * time.Hour)}},
		{Name: "back to the platform's default", Given: []proto.Message{registered}, When: domain.SetHandlingTime{Now: t1},
			Then: []proto.Message{set(0)}},
		{Name: "the one it has: nothing", Given: []proto.Message{registered}, When: domain.SetHandlingTime{HandlingTime: 48 * time.Hour, Now: t1}},
		{Name: "longer than 30 days", Given: []proto.Message{registered}, When: domain.SetHandlingTime{HandlingTime: 31 * 24 * time.Hour},
			Err: estest.Invalid("handling_time")},
		{Name: "not whole seconds", Given: []proto.Message{registered}, When: domain.SetHandlingTime{HandlingTime: 2*time.Hour + time.Millisecond},
			Err: estest.Invalid("handling_time")},
		{Name: "an unregistered vendor", When: domain.SetHandlingTime{HandlingTime: time.Hour}, Err: &domain.NotFoundError{Resource: "vendor", ID: "v1"}},
	})
	s := evolveAll(domain.Vendors.Initial("v1"), domain.Vendors.Evolve, registered)
	if s.HandlingTime != 48*time.Hour {
		t.Fatalf("registered: %+v", s)
	}
	if s = domain.Vendors.Evolve(s, set(0)); s.HandlingTime != 0 {
		t.Fatalf("cleared: %+v", s)
	}
}
