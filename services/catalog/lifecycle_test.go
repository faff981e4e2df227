package catalog_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

const (
	ProductCreated         = "custody.catalog.v1.ProductCreated"
	ProductUpdated         = "custody.catalog.v1.ProductUpdated"
	SkuPriceChanged        = "custody.catalog.v1.SkuPriceChanged"
	SkuAdded               = "custody.catalog.v1.SkuAdded"
	ProductArchived        = "custody.catalog.v1.ProductArchived"
	StockHeld              = "custody.catalog.v1.StockHeld"
	StockReserved          = "custody.catalog.v1.StockReserved"
	StockReservationFailed = "custody.catalog.v1.StockReservationFailed"
)

// A vendor's handling time: set at registration, changed, cleared; each
// request applied once.
func TestVendorHandlingTime(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	v := client(t, p, "vendor:v1")
	if _, err := v.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg", VendorId: "v1", DisplayName: "Acme", CountryCode: "DE",
		HandlingTime: durationpb.New(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	handling := func() time.Duration {
		got, err := v.GetVendor(ctx, &catalogv1.GetVendorRequest{VendorId: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetVendor().GetHandlingTime().AsDuration()
	}
	if got := handling(); got != 48*time.Hour {
		t.Fatalf("handling time %s, want 48h", got)
	}
	for range 2 {
		if _, err := v.SetVendorHandlingTime(ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "ht-1", VendorId: "v1", HandlingTime: durationpb.New(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := handling(); got != 24*time.Hour {
		t.Fatalf("handling time %s, want 24h", got)
	}
	if _, err := v.SetVendorHandlingTime(ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "ht-2", VendorId: "v1"}); err != nil {
		t.Fatal(err)
	}
	if got := handling(); got != 0 {
		t.Fatalf("handling time %s after clearing it, want none (the platform's default)", got)
	}
	holds(t, eventsAre(t, p, "vendor-v1", "custody.catalog.v1.VendorRegistered", "custody.catalog.v1.VendorHandlingTimeSet", "custody.catalog.v1.VendorHandlingTimeSet"))
	_, err := client(t, p, "platform").SetVendorHandlingTime(ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "x", VendorId: "v404", HandlingTime: durationpb.New(time.Hour)})
	wantCode(t, err, codes.NotFound)
}

// A product's life: updated, repriced, a SKU added, archived. Each request
// is applied once; the commission applies to links made after it; an
// archived product changes no more, takes no new links and no orders
// placed after it, and keeps the stock held for orders placed before.
func TestProductLifecycle(t *testing.T) {
	t.Parallel()
	p, clk := start(t)
	ctx := t.Context()
	v := vendor(t, p, "v1")
	creator := client(t, p, "creator:c1")
	pid := product(t, v, "tee", "v1", 5, 2)
	black := pid + "-black_m"
	link := func(requestID string) (*catalogv1.AffiliateLink, error) {
		resp, err := creator.CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: requestID, CreatorId: "c1", ProductId: pid})
		return resp.GetLink(), err
	}
	before, err := link("l-before")
	if err != nil {
		t.Fatal(err)
	}

	// Update the title and the commission, twice with the same request.
	for range 2 {
		resp, err := v.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{RequestId: "upd-1", ProductId: pid, Title: "Tee v2",
			Description: "ignored: not in the mask", AffiliateCommissionBps: 2000, UpdateMask: mask("title", "affiliate_commission_bps")})
		if err != nil {
			t.Fatal(err)
		}
		if pr := resp.GetProduct(); pr.GetTitle() != "Tee v2" || pr.GetDescription() != "Cotton" || pr.GetAffiliateCommissionBps() != 2000 {
			t.Fatalf("updated product %v", pr)
		}
	}
	after, err := link("l-after")
	if err != nil {
		t.Fatal(err)
	}
	if before.GetCommissionBps() != 1500 || after.GetCommissionBps() != 2000 {
		t.Fatalf("links' commissions %d (made before) and %d (after), want 1500 and 2000", before.GetCommissionBps(), after.GetCommissionBps())
	}
	if l, err := creator.GetAffiliateLink(ctx, &catalogv1.GetAffiliateLinkRequest{LinkId: before.GetLinkId()}); err != nil || l.GetLink().GetCommissionBps() != 1500 {
		t.Fatalf("the link made before keeps its rate: %v %v", l, err)
	}

	// A new price, twice with the same request; the same price again under
	// another request changes nothing.
	for _, rid := range []string{"price-1", "price-1", "price-2"} {
		if _, err := v.SetSkuPrice(ctx, &catalogv1.SetSkuPriceRequest{RequestId: rid, SkuId: black, Price: eur(2500)}); err != nil {
			t.Fatal(err)
		}
	}
	// A SKU with its stock, twice with the same request.
	for range 2 {
		if _, err := v.AddSku(ctx, &catalogv1.AddSkuRequest{RequestId: "add-1", ProductId: pid,
			Sku: &catalogv1.SkuSpec{Code: "red_m", Title: "Red, M", Price: eur(2100), InitialStock: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := v.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: pid})
	if err != nil {
		t.Fatal(err)
	}
	if k := got.GetProduct().GetSkus(); len(k) != 3 || k[0].GetPrice().GetAmountMinor() != 2500 || k[1].GetPrice().GetAmountMinor() != 2499 ||
		k[2].GetSkuId() != pid+"-red_m" || k[2].GetAvailable() != 4 {
		t.Fatalf("skus %v", k)
	}
	// The listing folds the same events.
	list, err := v.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v1"})
	if err != nil || len(list.GetProducts()) != 1 || list.GetProducts()[0].GetTitle() != "Tee v2" || len(list.GetProducts()[0].GetSkus()) != 3 {
		t.Fatalf("listed %v, %v", list.GetProducts(), err)
	}

	// An order placed before the archive holds stock.
	clk.Advance(time.Minute)
	placedBefore := clk.Now()
	p.Emit(t, "order", "order-o1", placedAt(orderPlaced("o1", map[string]int64{black: 2}), placedBefore))
	reacted(t, p, "o1 reserved", stockIs(t, v, pid, "black_m", [3]int64{3, 2, 0}))

	// Archive, twice with the same request, then with another: one event.
	clk.Advance(time.Minute)
	for _, rid := range []string{"arch-1", "arch-1", "arch-2"} {
		resp, err := v.ArchiveProduct(ctx, &catalogv1.ArchiveProductRequest{RequestId: rid, ProductId: pid, Reason: "discontinued"})
		if err != nil {
			t.Fatal(err)
		}
		if pr := resp.GetProduct(); !pr.GetArchived() || sameTime(pr.GetArchiveTime(), clk.Now()) != nil {
			t.Fatalf("archived product %v", pr)
		}
	}
	holds(t, endsWith(t, p, "product-"+pid, ProductCreated, ProductUpdated, SkuPriceChanged, SkuAdded, StockHeld, StockReserved, ProductArchived))

	// Nothing about it changes any more, and it takes no new link.
	refusals := []func() error{
		platformtest.Call(v.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "upd-2", ProductId: pid, Title: "Tee v3", UpdateMask: mask("title")}),
		platformtest.Call(v.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "price-3", SkuId: black, Price: eur(1)}),
		platformtest.Call(v.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "add-2", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "blue_m", Price: eur(1)}}),
		platformtest.Call(creator.CreateAffiliateLink, ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l-archived", CreatorId: "c1", ProductId: pid}),
	}
	p.WritesNothing(t, "catalog", func() {
		for _, call := range refusals {
			platformtest.WantReason(t, call(), codes.FailedPrecondition, "PRODUCT_ARCHIVED")
		}
	})
	// A link made before is still answered as made.
	if l, err := link("l-before"); err != nil || l.GetLinkId() != before.GetLinkId() {
		t.Fatalf("repeating the link made before: %v %v", l, err)
	}

	// An order placed after the archive is refused by the product, in one
	// decision; the one placed before keeps its stock.
	clk.Advance(time.Minute)
	p.Emit(t, "order", "order-o2", placedAt(orderPlaced("o2", map[string]int64{black: 1}), clk.Now()))
	reacted(t, p, "o2 refused", endsWith(t, p, "product-"+pid, ProductArchived, StockReservationFailed))
	failed := p.Events(t, "catalog", "product-"+pid)
	f := failed[len(failed)-1].(*catalogv1.StockReservationFailed)
	if f.GetOrderId() != "o2" || !strings.Contains(f.GetReason(), "archived") || !strings.Contains(f.GetReason(), pid) {
		t.Fatalf("refusal %v: want o2's, naming the product and its archive", f)
	}
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{3, 2, 0}))
	// Stock corrections go on.
	if _, err := v.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "adj", SkuId: black, Delta: -3, Reason: "written off"}); err != nil {
		t.Fatal(err)
	}
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{0, 2, 0}))
}

// placedAt sets an OrderPlaced's place time.
func placedAt(ev *orderv1.OrderPlaced, at time.Time) *orderv1.OrderPlaced {
	ev.PlaceTime = timestamppb.New(at)
	ev.Total = &typev1.Money{CurrencyCode: "EUR"}
	return ev
}
