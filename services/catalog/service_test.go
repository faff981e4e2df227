package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog"
)

// mask is an update mask of paths.
func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func twoSKUs(requestID, vendorID string, stockA, stockB int64) *catalogv1.CreateProductRequest {
	return &catalogv1.CreateProductRequest{
		RequestId: requestID, VendorId: vendorID, Title: "Tee " + requestID, Description: "Cotton", Category: "apparel",
		AffiliateCommissionBps: 1500,
		Skus: []*catalogv1.SkuSpec{
			{Code: "black_m", Title: "Black, M", Price: eur(1999), InitialStock: stockA},
			{Code: "white_m", Title: "White, M", Price: eur(2499), InitialStock: stockB},
		},
	}
}

// product creates twoSKUs(requestID, vendorID, stockA, stockB) and
// returns its id.
func product(t *testing.T, c catalogv1.CatalogServiceClient, requestID, vendorID string, stockA, stockB int64) string {
	t.Helper()
	resp, err := c.CreateProduct(t.Context(), twoSKUs(requestID, vendorID, stockA, stockB))
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetProduct().GetProductId()
}

func TestCatalogOverGRPC(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	v1 := client(t, p, "vendor:v1")
	buyer := client(t, p, "buyer:b1")

	reg := &catalogv1.RegisterVendorRequest{RequestId: "r-1", VendorId: "v1", DisplayName: "Acme", CountryCode: "DE"}
	for range 2 { // the same request twice: the same vendor
		resp, err := v1.RegisterVendor(ctx, reg)
		if err != nil || resp.GetVendor().GetDisplayName() != "Acme" || sameTime(resp.GetVendor().GetRegisteredTime(), t0) != nil {
			t.Fatalf("register: %v, %v", resp, err)
		}
	}
	_, err := v1.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "r-2", VendorId: "v1", DisplayName: "Acme 2", CountryCode: "FR"})
	wantCode(t, err, codes.AlreadyExists)
	if got := events(t, p, "vendor-v1"); len(got) != 1 {
		t.Fatalf("vendor events %v", got)
	}
	if v, err := buyer.GetVendor(ctx, &catalogv1.GetVendorRequest{VendorId: "v1"}); err != nil || v.GetVendor().GetCountryCode() != "DE" {
		t.Fatalf("get vendor: %v %v", v, err)
	}
	_, err = buyer.GetVendor(ctx, &catalogv1.GetVendorRequest{VendorId: "v404"})
	wantCode(t, err, codes.NotFound)

	// Create a product with two SKUs; the same request_id again returns the
	// same product and writes nothing.
	var productID string
	for i := range 2 {
		resp, err := v1.CreateProduct(ctx, twoSKUs("prod-1", "v1", 5, 2))
		if err != nil {
			t.Fatalf("create #%d: %v", i, err)
		}
		if productID == "" {
			productID = resp.GetProduct().GetProductId()
		} else if resp.GetProduct().GetProductId() != productID {
			t.Fatalf("second create made %s, first %s", resp.GetProduct().GetProductId(), productID)
		}
	}
	if got := events(t, p, "product-"+productID); !slices.Equal(got, []string{"custody.catalog.v1.ProductCreated"}) {
		t.Fatalf("product events %v", got)
	}
	got, err := buyer.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: productID})
	if err != nil {
		t.Fatal(err)
	}
	pr := got.GetProduct()
	if pr.GetVendorId() != "v1" || pr.GetAffiliateCommissionBps() != 1500 || len(pr.GetSkus()) != 2 || sameTime(pr.GetCreateTime(), t0) != nil {
		t.Fatalf("product %v", pr)
	}
	k := pr.GetSkus()[0]
	if k.GetSkuId() != productID+"-black_m" || k.GetAvailable() != 5 || k.GetReserved() != 0 || k.GetSold() != 0 ||
		k.GetPrice().GetAmountMinor() != 1999 || k.GetPrice().GetCurrencyCode() != "EUR" {
		t.Fatalf("sku %v", k)
	}
	if l := ledger(t, buyer, productID); l["white_m"] != [3]int64{2, 0, 0} {
		t.Fatalf("white %v", l["white_m"])
	}
	_, err = buyer.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: "p404"})
	wantCode(t, err, codes.NotFound)

	// Restock; repeating the request does not restock twice.
	for range 2 {
		if _, err := v1.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "restock-1", SkuId: productID + "-white_m", Delta: 3, Reason: "delivery"}); err != nil {
			t.Fatal(err)
		}
	}
	if l := ledger(t, buyer, productID); l["white_m"] != [3]int64{5, 0, 0} {
		t.Fatalf("white after restock %v", l["white_m"])
	}
	_, err = v1.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "fix-1", SkuId: productID + "-red_m", Delta: 1})
	wantCode(t, err, codes.NotFound)
	_, err = v1.CreateProduct(ctx, twoSKUs("prod-x", "v404", 1, 1))
	wantCode(t, err, codes.PermissionDenied) // v1 may not act for v404
	_, err = client(t, p, "platform").CreateProduct(ctx, twoSKUs("prod-x", "v404", 1, 1))
	wantCode(t, err, codes.NotFound) // no such vendor
}

func TestListProductsPages(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	v1, v2 := vendor(t, p, "v1"), vendor(t, p, "v2")
	var ids []string
	for i := range 5 {
		resp, err := v1.CreateProduct(ctx, twoSKUs(fmt.Sprintf("p-%d", i), "v1", 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetProduct().GetProductId())
		if _, err := v2.CreateProduct(ctx, twoSKUs(fmt.Sprintf("p-%d", i), "v2", 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(ids) // newest first

	buyer := client(t, p, "buyer:b1")
	var listed []string
	token := ""
	for page := 0; ; page++ {
		resp, err := buyer.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v1", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range resp.GetProducts() {
			if pr.GetVendorId() != "v1" || len(pr.GetSkus()) != 2 {
				t.Fatalf("listed %v", pr)
			}
			listed = append(listed, pr.GetProductId())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			if page != 2 {
				t.Fatalf("%d pages, want 3", page+1)
			}
			break
		}
		if page == 0 {
			// A product created while paging does not shift later pages.
			if _, err := v1.CreateProduct(ctx, twoSKUs("late", "v1", 1, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(listed, ids) {
		t.Fatalf("listed %v\nwant   %v", listed, ids)
	}
	// Read your writes: the late product is on the first page right away.
	resp, err := buyer.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v1"})
	if err != nil || len(resp.GetProducts()) != 6 || resp.GetNextPageToken() != "" || resp.GetProducts()[0].GetTitle() != "Tee late" {
		t.Fatalf("default page: %d products, %v", len(resp.GetProducts()), err)
	}
	first, _ := buyer.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v1", PageSize: 1})
	_, err = buyer.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v2", PageToken: first.GetNextPageToken()})
	wantField(t, err, "page_token")
}

func TestValidation(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	c := client(t, p, "platform") // may do anything: refusals here are about input only
	register(t, c, "v1")
	pid := product(t, c, "good", "v1", 1, 1)
	sess, err := c.StartLiveSession(ctx, &catalogv1.StartLiveSessionRequest{RequestId: "s", CreatorId: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	sid := sess.GetSession().GetSessionId()
	// Requests applied once, whose request_ids the reuse rows below send
	// again with another body (AIP-155); each sent again unchanged is a
	// retry that changes nothing.
	pid2 := product(t, c, "good2", "v1", 1, 1)
	applied := []func() error{
		platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg-v1", VendorId: "v1", DisplayName: "Vendor v1", CountryCode: "DE"}),
		platformtest.Call(c.CreateProduct, ctx, twoSKUs("good", "v1", 1, 1)),
		platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "adj", SkuId: pid + "-black_m", Delta: 2, Reason: "delivery"}),
		platformtest.Call(c.CreateAffiliateLink, ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l", CreatorId: "c1", ProductId: pid}),
		platformtest.Call(c.StartLiveSession, ctx, &catalogv1.StartLiveSessionRequest{RequestId: "s", CreatorId: "c1"}),
		platformtest.Call(c.PinProduct, ctx, &catalogv1.PinProductRequest{RequestId: "pin", SessionId: sid, ProductId: pid}),
		platformtest.Call(c.UnpinProduct, ctx, &catalogv1.UnpinProductRequest{RequestId: "unpin", SessionId: sid, ProductId: pid}),
		platformtest.Call(c.SetVendorHandlingTime, ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "ht", VendorId: "v1", HandlingTime: durationpb.New(48 * time.Hour)}),
		platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "upd", ProductId: pid, Title: "Tee v2", UpdateMask: mask("title")}),
		platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "price", SkuId: pid + "-black_m", Price: eur(2100)}),
		platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "add", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "red_m", Price: eur(2100), InitialStock: 1}}),
		platformtest.Call(c.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{RequestId: "arch", ProductId: pid2, Reason: "discontinued"}),
	}
	for _, call := range applied[2:] {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}

	badProduct := func(mut func(*catalogv1.CreateProductRequest)) func() error {
		r := twoSKUs("bad", "v1", 1, 1)
		mut(r)
		return platformtest.Call(c.CreateProduct, ctx, r)
	}
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"vendor without request_id", platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{VendorId: "v2", DisplayName: "x", CountryCode: "DE"}), "request_id"},
		{"vendor with a bad country", platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "r", VendorId: "v2", DisplayName: "x", CountryCode: "Germany"}), "country_code"},
		{"display name not UTF-8", servertest.CallInvalidUTF8(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "r", VendorId: "v2", DisplayName: "x", CountryCode: "DE"}, "display_name"), "display_name"},
		{"vendor id with a dot", platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "r", VendorId: "v.2", DisplayName: "x", CountryCode: "DE"}), "vendor_id"},
		{"product without request_id", badProduct(func(r *catalogv1.CreateProductRequest) { r.RequestId = "" }), "request_id"},
		{"product without skus", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus = nil }), "skus"},
		{"product without title", badProduct(func(r *catalogv1.CreateProductRequest) { r.Title = "" }), "title"},
		{"negative price", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[1].Price.AmountMinor = -1 }), "skus[1].price.amount_minor"},
		{"price above the bound", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[1].Price.AmountMinor = money.MaxUnitPrice + 1 }), "skus[1].price.amount_minor"},
		{"price of int64's limit", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].Price.AmountMinor = math.MaxInt64 }), "skus[0].price.amount_minor"},
		{"mixed currencies", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[1].Price.CurrencyCode = "USD" }), "skus[1].price.currency_code"},
		{"unknown currency", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].Price.CurrencyCode = "XYZ" }), "skus[0].price.currency_code"},
		{"lower-case currency", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].Price.CurrencyCode = "eur" }), "skus[0].price.currency_code"},
		{"no price", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].Price = nil }), "skus[0].price"},
		{"commission over 10000 bps", badProduct(func(r *catalogv1.CreateProductRequest) { r.AffiliateCommissionBps = 10001 }), "affiliate_commission_bps"},
		{"bad sku code", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].Code = "Black M" }), "skus[0].code"},
		{"duplicate sku code", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[1].Code = r.Skus[0].Code }), "skus[1].code"},
		{"negative stock", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].InitialStock = -1 }), "skus[0].initial_stock"},
		{"stock above the bound", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[0].InitialStock = 1_000_000_000_001 }), "skus[0].initial_stock"},
		{"stock of int64's limit", badProduct(func(r *catalogv1.CreateProductRequest) { r.Skus[1].InitialStock = math.MaxInt64 }), "skus[1].initial_stock"},
		{"bad vendor id", badProduct(func(r *catalogv1.CreateProductRequest) { r.VendorId = "" }), "vendor_id"},
		{"adjust by zero", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "a", SkuId: pid + "-black_m"}), "delta"},
		{"adjust beyond the bound", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "a", SkuId: pid + "-black_m", Delta: math.MaxInt64}), "delta"},
		{"adjust below the bound", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "a", SkuId: pid + "-black_m", Delta: math.MinInt64}), "delta"},
		{"adjust a malformed sku", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "a", SkuId: "black", Delta: 1}), "sku_id"},
		{"adjust without request_id", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{SkuId: pid + "-black_m", Delta: 1}), "request_id"},
		{"link without product", platformtest.Call(c.CreateAffiliateLink, ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l", CreatorId: "c1"}), "product_id"},
		{"session without creator", platformtest.Call(c.StartLiveSession, ctx, &catalogv1.StartLiveSessionRequest{RequestId: "s2"}), "creator_id"},
		{"pin without session", platformtest.Call(c.PinProduct, ctx, &catalogv1.PinProductRequest{RequestId: "p", ProductId: pid}), "session_id"},
		{"pin without request_id", platformtest.Call(c.PinProduct, ctx, &catalogv1.PinProductRequest{SessionId: sid, ProductId: pid}), "request_id"},
		{"list with a negative page size", platformtest.Call(c.ListProducts, ctx, &catalogv1.ListProductsRequest{VendorId: "v1", PageSize: -1}), "page_size"},
		{"list with a forged token", platformtest.Call(c.ListProducts, ctx, &catalogv1.ListProductsRequest{VendorId: "v1", PageToken: "bm9wZQ"}), "page_token"},
		{"get a malformed product id", platformtest.Call(c.GetProduct, ctx, &catalogv1.GetProductRequest{ProductId: "a-b"}), "product_id"},
		{"vendor request_id reused", platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg-v1", VendorId: "v1", DisplayName: "Another name", CountryCode: "DE"}), "request_id"},
		{"product request_id reused", platformtest.Call(c.CreateProduct, ctx, twoSKUs("good", "v1", 7, 1)), "request_id"},
		{"adjust request_id reused", platformtest.Call(c.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "adj", SkuId: pid + "-black_m", Delta: 3, Reason: "delivery"}), "request_id"},
		{"link request_id reused", platformtest.Call(c.CreateAffiliateLink, ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l", CreatorId: "c1", ProductId: pid2}), "request_id"},
		{"session request_id reused", platformtest.Call(c.StartLiveSession, ctx, &catalogv1.StartLiveSessionRequest{RequestId: "s", CreatorId: "c1", Title: "Another"}), "request_id"},
		{"pin request_id reused", platformtest.Call(c.PinProduct, ctx, &catalogv1.PinProductRequest{RequestId: "pin", SessionId: sid, ProductId: pid2}), "request_id"},
		{"unpin request_id reused", platformtest.Call(c.UnpinProduct, ctx, &catalogv1.UnpinProductRequest{RequestId: "unpin", SessionId: sid, ProductId: pid2}), "request_id"},
		{"vendor handling time below an hour", platformtest.Call(c.SetVendorHandlingTime, ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "h", VendorId: "v1", HandlingTime: durationpb.New(time.Minute)}), "handling_time"},
		{"vendor handling time above 30 days", platformtest.Call(c.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "r", VendorId: "v3", DisplayName: "x", CountryCode: "DE", HandlingTime: durationpb.New(31 * 24 * time.Hour)}), "handling_time"},
		{"vendor handling time without request_id", platformtest.Call(c.SetVendorHandlingTime, ctx, &catalogv1.SetVendorHandlingTimeRequest{VendorId: "v1"}), "request_id"},
		{"handling time request_id reused", platformtest.Call(c.SetVendorHandlingTime, ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "ht", VendorId: "v1", HandlingTime: durationpb.New(72 * time.Hour)}), "request_id"},
		{"update without a mask", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "u", ProductId: pid, Title: "x"}), "update_mask"},
		{"update an unknown field", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "u", ProductId: pid, UpdateMask: mask("vendor_id")}), "update_mask"},
		{"update to a blank title", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "u", ProductId: pid, UpdateMask: mask("title")}), "title"},
		{"update the commission above 10000 bps", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "u", ProductId: pid, AffiliateCommissionBps: 10001, UpdateMask: mask("affiliate_commission_bps")}), "affiliate_commission_bps"},
		{"update a malformed product id", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "u", ProductId: "a-b", Title: "x", UpdateMask: mask("title")}), "product_id"},
		{"update request_id reused", platformtest.Call(c.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "upd", ProductId: pid, Title: "Tee v3", UpdateMask: mask("title")}), "request_id"},
		{"price without a price", platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "pr", SkuId: pid + "-black_m"}), "price"},
		{"price above the bound", platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "pr", SkuId: pid + "-black_m", Price: eur(money.MaxUnitPrice + 1)}), "price.amount_minor"},
		{"price in another currency than the product's", platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "pr", SkuId: pid + "-black_m", Price: &typev1.Money{CurrencyCode: "USD", AmountMinor: 1}}), "price.currency_code"},
		{"price of a malformed sku", platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "pr", SkuId: "black", Price: eur(1)}), "sku_id"},
		{"price request_id reused", platformtest.Call(c.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "price", SkuId: pid + "-black_m", Price: eur(2200)}), "request_id"},
		{"add without a sku", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "a", ProductId: pid}), "sku"},
		{"add a bad code", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "a", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "Red M", Price: eur(1)}}), "sku.code"},
		{"add without a price", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "a", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "blue_m"}}), "sku.price"},
		{"add in another currency than the product's", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "a", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "blue_m", Price: &typev1.Money{CurrencyCode: "USD", AmountMinor: 1}}}), "sku.price.currency_code"},
		{"add negative stock", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "a", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "blue_m", Price: eur(1), InitialStock: -1}}), "sku.initial_stock"},
		{"add request_id reused", platformtest.Call(c.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "add", ProductId: pid, Sku: &catalogv1.SkuSpec{Code: "blue_m", Price: eur(2100), InitialStock: 1}}), "request_id"},
		{"archive without request_id", platformtest.Call(c.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{ProductId: pid}), "request_id"},
		{"archive request_id reused", platformtest.Call(c.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{RequestId: "arch", ProductId: pid2, Reason: "another reason"}), "request_id"},
	}
	p.WritesNothing(t, catalog.Name, func() {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantField(t, tc.call(), tc.field) })
		}
		for i, call := range applied {
			if err := call(); err != nil {
				t.Errorf("applied request %d sent again: %v, want its first result", i, err)
			}
		}
	})
	if l := ledger(t, c, pid); l["black_m"] != [3]int64{3, 0, 0} {
		t.Errorf("black_m after a restock of 2 and a reused request_id: %v, want 3 available", l["black_m"])
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	va, vb := vendor(t, p, "va"), vendor(t, p, "vb")
	cx, cy := client(t, p, "creator:cx"), client(t, p, "creator:cy")
	buyer, support, anon := client(t, p, "buyer:b1"), client(t, p, "support"), client(t, p)
	bProduct := product(t, vb, "b-1", "vb", 3, 3)
	bSKU := bProduct + "-black_m"
	ys, err := cy.StartLiveSession(ctx, &catalogv1.StartLiveSessionRequest{RequestId: "y-1", CreatorId: "cy"})
	if err != nil {
		t.Fatal(err)
	}
	ySession := ys.GetSession().GetSessionId()

	denied := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"vendor A creates a product for vendor B", platformtest.Call(va.CreateProduct, ctx, twoSKUs("x", "vb", 1, 1)), codes.PermissionDenied},
		{"vendor A adjusts B's stock", platformtest.Call(va.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "x", SkuId: bSKU, Delta: 100}), codes.PermissionDenied},
		{"vendor A registers as B", platformtest.Call(va.RegisterVendor, ctx, &catalogv1.RegisterVendorRequest{RequestId: "x", VendorId: "vc", DisplayName: "x", CountryCode: "DE"}), codes.PermissionDenied},
		{"creator X makes a link for Y", platformtest.Call(cx.CreateAffiliateLink, ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "x", CreatorId: "cy", ProductId: bProduct}), codes.PermissionDenied},
		{"creator X starts a session for Y", platformtest.Call(cx.StartLiveSession, ctx, &catalogv1.StartLiveSessionRequest{RequestId: "x", CreatorId: "cy"}), codes.PermissionDenied},
		{"creator X pins in Y's session", platformtest.Call(cx.PinProduct, ctx, &catalogv1.PinProductRequest{RequestId: "x", SessionId: ySession, ProductId: bProduct}), codes.PermissionDenied},
		{"creator X ends Y's session", platformtest.Call(cx.EndLiveSession, ctx, &catalogv1.EndLiveSessionRequest{RequestId: "x", SessionId: ySession}), codes.PermissionDenied},
		{"buyer creates a product", platformtest.Call(buyer.CreateProduct, ctx, twoSKUs("x", "vb", 1, 1)), codes.PermissionDenied},
		{"support adjusts stock", platformtest.Call(support.AdjustStock, ctx, &catalogv1.AdjustStockRequest{RequestId: "x", SkuId: bSKU, Delta: 1}), codes.PermissionDenied},
		{"no token", platformtest.Call(anon.GetProduct, ctx, &catalogv1.GetProductRequest{ProductId: "p1"}), codes.Unauthenticated},
		{"vendor A sets B's handling time", platformtest.Call(va.SetVendorHandlingTime, ctx, &catalogv1.SetVendorHandlingTimeRequest{RequestId: "x", VendorId: "vb", HandlingTime: durationpb.New(time.Hour)}), codes.PermissionDenied},
		{"vendor A updates B's product", platformtest.Call(va.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "x", ProductId: bProduct, Title: "x", UpdateMask: mask("title")}), codes.PermissionDenied},
		{"vendor A reprices B's sku", platformtest.Call(va.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "x", SkuId: bSKU, Price: eur(1)}), codes.PermissionDenied},
		{"vendor A adds a sku to B's product", platformtest.Call(va.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "x", ProductId: bProduct, Sku: &catalogv1.SkuSpec{Code: "x", Price: eur(1)}}), codes.PermissionDenied},
		{"vendor A archives B's product", platformtest.Call(va.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{RequestId: "x", ProductId: bProduct}), codes.PermissionDenied},
		{"support archives a product", platformtest.Call(support.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{RequestId: "x", ProductId: bProduct}), codes.PermissionDenied},
		{"a buyer reprices", platformtest.Call(buyer.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "x", SkuId: bSKU, Price: eur(1)}), codes.PermissionDenied},
		{"a creator updates a product", platformtest.Call(cx.UpdateProduct, ctx, &catalogv1.UpdateProductRequest{RequestId: "x", ProductId: bProduct, Title: "x", UpdateMask: mask("title")}), codes.PermissionDenied},
		{"archive a product that does not exist", platformtest.Call(vb.ArchiveProduct, ctx, &catalogv1.ArchiveProductRequest{RequestId: "x", ProductId: "p404"}), codes.NotFound},
		{"reprice a sku that does not exist", platformtest.Call(vb.SetSkuPrice, ctx, &catalogv1.SetSkuPriceRequest{RequestId: "x", SkuId: bProduct + "-red_m", Price: eur(1)}), codes.NotFound},
		{"add a sku the product has", platformtest.Call(vb.AddSku, ctx, &catalogv1.AddSkuRequest{RequestId: "x", ProductId: bProduct, Sku: &catalogv1.SkuSpec{Code: "black_m", Price: eur(1)}}), codes.AlreadyExists},
	}
	p.WritesNothing(t, catalog.Name, func() {
		for _, tc := range denied {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.want) })
		}
	})
	// Support reads everything; the owner and platform may write.
	if _, err := support.GetLiveSession(ctx, &catalogv1.GetLiveSessionRequest{SessionId: ySession}); err != nil {
		t.Fatal(err)
	}
	if _, err := vb.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "ok", SkuId: bSKU, Delta: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, p, "service").CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "ok", CreatorId: "cx", ProductId: bProduct}); err != nil {
		t.Fatal(err)
	}
}

func TestLiveSessionsAndLinks(t *testing.T) {
	t.Parallel()
	p, clk := start(t)
	ctx := t.Context()
	v := vendor(t, p, "v1")
	pid := product(t, v, "p", "v1", 5, 5)
	c1 := client(t, p, "creator:c1")

	// Links fix the product's commission at creation.
	link, err := c1.CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l-1", CreatorId: "c1", ProductId: pid})
	if err != nil {
		t.Fatal(err)
	}
	l := link.GetLink()
	if l.GetCommissionBps() != 1500 || l.GetVendorId() != "v1" || l.GetCreatorId() != "c1" || sameTime(l.GetCreateTime(), t0) != nil {
		t.Fatalf("link %v", l)
	}
	again, err := c1.CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l-1", CreatorId: "c1", ProductId: pid})
	if err != nil || again.GetLink().GetLinkId() != l.GetLinkId() {
		t.Fatalf("repeated link: %v %v", again, err)
	}
	if got, err := client(t, p, "buyer:b1").GetAffiliateLink(ctx, &catalogv1.GetAffiliateLinkRequest{LinkId: l.GetLinkId()}); err != nil || got.GetLink().GetProductId() != pid {
		t.Fatalf("get link: %v %v", got, err)
	}
	_, err = c1.CreateAffiliateLink(ctx, &catalogv1.CreateAffiliateLinkRequest{RequestId: "l-2", CreatorId: "c1", ProductId: "p404"})
	wantCode(t, err, codes.NotFound)

	// A session: pin and unpin times are recorded as the clock says.
	start, err := c1.StartLiveSession(ctx, &catalogv1.StartLiveSessionRequest{RequestId: "s-1", CreatorId: "c1", Title: "Friday drop"})
	if err != nil {
		t.Fatal(err)
	}
	sid := start.GetSession().GetSessionId()
	step := func(d time.Duration) { clk.Advance(d) }
	step(time.Minute)
	if _, err := c1.PinProduct(ctx, &catalogv1.PinProductRequest{RequestId: "pin-1", SessionId: sid, ProductId: pid}); err != nil {
		t.Fatal(err)
	}
	_, err = c1.PinProduct(ctx, &catalogv1.PinProductRequest{RequestId: "pin-2", SessionId: sid, ProductId: pid})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = c1.PinProduct(ctx, &catalogv1.PinProductRequest{RequestId: "pin-3", SessionId: sid, ProductId: "p404"})
	wantCode(t, err, codes.NotFound)
	step(5 * time.Minute)
	for range 2 { // repeated request: unpinned once
		if _, err := c1.UnpinProduct(ctx, &catalogv1.UnpinProductRequest{RequestId: "unpin-1", SessionId: sid, ProductId: pid}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c1.UnpinProduct(ctx, &catalogv1.UnpinProductRequest{RequestId: "unpin-2", SessionId: sid, ProductId: pid})
	wantCode(t, err, codes.FailedPrecondition)
	step(2 * time.Minute)
	if _, err := c1.PinProduct(ctx, &catalogv1.PinProductRequest{RequestId: "pin-4", SessionId: sid, ProductId: pid}); err != nil {
		t.Fatal(err)
	}
	step(2 * time.Minute)
	if _, err := c1.EndLiveSession(ctx, &catalogv1.EndLiveSessionRequest{RequestId: "end", SessionId: sid}); err != nil {
		t.Fatal(err)
	}
	_, err = c1.PinProduct(ctx, &catalogv1.PinProductRequest{RequestId: "pin-5", SessionId: sid, ProductId: pid})
	wantCode(t, err, codes.FailedPrecondition)

	got, err := client(t, p, "support").GetLiveSession(ctx, &catalogv1.GetLiveSessionRequest{SessionId: sid})
	if err != nil {
		t.Fatal(err)
	}
	s := got.GetSession()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	if s.GetCreatorId() != "c1" || s.GetTitle() != "Friday drop" || sameTime(s.GetStartTime(), t0) != nil || sameTime(s.GetEndTime(), at(10)) != nil {
		t.Fatalf("session %v", s)
	}
	want := [][2]time.Time{{at(1), at(6)}, {at(8), at(10)}}
	if len(s.GetPins()) != len(want) {
		t.Fatalf("pins %v", s.GetPins())
	}
	for i, pin := range s.GetPins() {
		if pin.GetProductId() != pid || pin.GetCommissionBps() != 1500 || sameTime(pin.GetPinTime(), want[i][0]) != nil || sameTime(pin.GetUnpinTime(), want[i][1]) != nil {
			t.Fatalf("pin %d: %v, want %v", i, pin, want[i])
		}
	}
}

// orderPlaced is an OrderPlaced as the order service publishes it.
func orderPlaced(orderID string, lines map[string]int64) *orderv1.OrderPlaced {
	ev := &orderv1.OrderPlaced{OrderId: orderID, BuyerId: "b1", PlaceTime: timestamppb.New(t0), Total: &typev1.Money{CurrencyCode: "EUR"}}
	for _, sku := range slices.Sorted(func(yield func(string) bool) {
		for k := range lines {
			if !yield(k) {
				return
			}
		}
	}) {
		pid, _, _ := strings.Cut(sku, "-")
		ev.Lines = append(ev.Lines, &orderv1.OrderLine{LineId: fmt.Sprint(len(ev.Lines) + 1), SkuId: sku, ProductId: pid, VendorId: "v1", Quantity: lines[sku]})
	}
	return ev
}

// The reservation end to end: order events emitted into the order
// service's stream, reactions observed through the catalog's API and
// events. An order of one product is reserved by the product in one step;
// an order across products by the reservation saga. The catalog starts
// before the order stream exists (as with --target=catalog before the
// order service ever ran) and subscribes once it appears; a restart
// resumes without reserving anything twice.
func TestReservationSagaOverTheBus(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	ctx := t.Context()
	v := vendor(t, p, "v1")
	pid := product(t, v, "p1", "v1", 5, 2)
	black, white := pid+"-black_m", pid+"-white_m"
	shortSKU := product(t, v, "p2", "v1", 1, 0) + "-black_m"
	order := func(orderID string, m proto.Message) { p.Emit(t, "order", "order-"+orderID, m) }
	cancel := func(orderID, reason string, products ...string) {
		order(orderID, &orderv1.OrderCancelled{OrderId: orderID, Reason: reason, CancelledBy: "buyer:b1", ProductIds: products})
	}

	// One product: held and reserved in one append on the product.
	order("o1", orderPlaced("o1", map[string]int64{black: 2, white: 1}))
	reacted(t, p, "o1 reserved", endsWith(t, p, "product-"+pid, held, reserved))
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{3, 2, 0}), stockIs(t, v, pid, "white_m", [3]int64{1, 1, 0}),
		eventsAre(t, p, "reservation-o1"))

	// Stock never drops below what is reserved.
	p.WritesNothing(t, catalog.Name, func() {
		_, err := v.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "too-far", SkuId: black, Delta: -4})
		wantCode(t, err, codes.FailedPrecondition)
	})
	if _, err := v.AdjustStock(ctx, &catalogv1.AdjustStockRequest{RequestId: "to-reserved", SkuId: black, Delta: -3}); err != nil {
		t.Fatal(err)
	}
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{0, 2, 0}))

	// All or nothing across products: white is held, then released.
	order("o2", orderPlaced("o2", map[string]int64{white: 1, shortSKU: 2}))
	reacted(t, p, "o2 failed", eventsAre(t, p, "reservation-o2", requested, failed))
	holds(t, stockIs(t, v, pid, "white_m", [3]int64{1, 1, 0}))

	// Cancelled: released.
	cancel("o1", "changed mind", pid)
	reacted(t, p, "o1 released", endsWith(t, p, "product-"+pid, held, holdReleased, holdReleased))
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{2, 0, 0}), stockIs(t, v, pid, "white_m", [3]int64{2, 0, 0}))

	// Cancelled before placed: the late OrderPlaced reserves nothing. (o3's
	// fence is waited for: o4 is another order, handled alongside.)
	n := len(events(t, p, "product-"+pid))
	cancel("o3", "fraud", pid)
	reacted(t, p, "o3 fenced", func() error {
		if got := events(t, p, "product-"+pid); len(got) != n+1 || got[n] != holdReleased {
			return fmt.Errorf("product events %v, want one more: the fence", got[n:])
		}
		return nil
	})
	order("o3", orderPlaced("o3", map[string]int64{black: 1}))
	order("o4", orderPlaced("o4", map[string]int64{white: 3}))
	reacted(t, p, "o4 failed", endsWith(t, p, "product-"+pid, holdReleased, failed))
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{2, 0, 0}), stockIs(t, v, pid, "white_m", [3]int64{2, 0, 0}))

	// Restart: the read model is rebuilt, the consumer resumes where it
	// was, nothing is reserved twice, and new orders still work.
	p.Restart(t)
	v = client(t, p, "vendor:v1")
	p.Settled(t)
	holds(t, stockIs(t, v, pid, "white_m", [3]int64{2, 0, 0}))
	list, err := v.ListProducts(ctx, &catalogv1.ListProductsRequest{VendorId: "v1"})
	if err != nil || len(list.GetProducts()) != 2 || list.GetProducts()[1].GetSkus()[0].GetAvailable() != 2 {
		t.Fatalf("list after restart: %v %v", list, err)
	}
	before := len(events(t, p, "product-"+pid))
	order("o5", orderPlaced("o5", map[string]int64{black: 2}))
	reacted(t, p, "o5 reserved", endsWith(t, p, "product-"+pid, held, reserved))
	holds(t, stockIs(t, v, pid, "black_m", [3]int64{0, 2, 0}), stockIs(t, v, pid, "white_m", [3]int64{2, 0, 0}))
	if n := len(events(t, p, "product-"+pid)); n != before+2 {
		t.Fatalf("the product has %d events after o5, want %d: something was decided twice", n, before+2)
	}
}

// Catalog event types the tests expect.
const (
	requested    = "custody.catalog.v1.ReservationRequested"
	reserved     = "custody.catalog.v1.StockReserved"
	failed       = "custody.catalog.v1.StockReservationFailed"
	held         = "custody.catalog.v1.StockHeld"
	holdReleased = "custody.catalog.v1.StockHoldReleased"
	cancelled    = "custody.catalog.v1.ReservationCancelled"
	released     = "custody.catalog.v1.StockReleased"
	sold         = "custody.catalog.v1.StockSold"
	restocked    = "custody.catalog.v1.StockRestocked"
)

// After a reservation, the catalog follows the fulfilment and trust
// services: shipped units are sold, a fulfilment cancelled by the ship-by
// policy gives its vendor's units back, and resellable returns are
// restocked (damaged ones are not).
func TestStockFollowsShipmentsAndReturns(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	v1, v2 := vendor(t, p, "v1"), vendor(t, p, "v2")
	p1, p2 := product(t, v1, "p1", "v1", 5, 5), product(t, v2, "p2", "v2", 5, 5)
	black, white, other := p1+"-black_m", p1+"-white_m", p2+"-black_m"

	p.Emit(t, "order", "order-o1", orderPlaced("o1", map[string]int64{black: 3, white: 1, other: 2}))
	reacted(t, p, "o1 reserved", eventsAre(t, p, "reservation-o1", requested, reserved))
	holds(t, stockIs(t, v1, p1, "black_m", [3]int64{2, 3, 0}), stockIs(t, v1, p2, "black_m", [3]int64{3, 2, 0}))

	// v2 misses its ship-by deadline; v1 ships in two parts.
	p.Emit(t, "fulfilment", "fulfilment-f2", &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f2", OrderId: "o1", VendorId: "v2", Reason: "not shipped by the deadline"})
	p.Emit(t, "fulfilment", "fulfilment-f1", &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1",
		Lines: []*fulfilmentv1.ShippedLine{{SkuId: black, Quantity: 2}}})
	reacted(t, p, "first shipment sold", stockIs(t, v1, p1, "black_m", [3]int64{2, 1, 2}))
	holds(t, stockIs(t, v1, p2, "black_m", [3]int64{5, 0, 0}))
	p.Emit(t, "fulfilment", "fulfilment-f1", &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s2",
		Lines: []*fulfilmentv1.ShippedLine{{SkuId: black, Quantity: 1}, {SkuId: white, Quantity: 1}}, FullyShipped: true})
	reacted(t, p, "second shipment sold", stockIs(t, v1, p1, "white_m", [3]int64{4, 0, 1}))
	holds(t, stockIs(t, v1, p1, "black_m", [3]int64{2, 0, 3}))

	// One unit comes back damaged, two resellable.
	p.Emit(t, "trust", "claims-o1", &trustv1.ReturnReceived{ClaimId: "c2", ReturnId: "r2", OrderId: "o1", VendorId: "v1",
		Condition: trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED, Lines: []*trustv1.ClaimLine{{SkuId: white, Quantity: 1}}})
	p.Emit(t, "trust", "claims-o1", &trustv1.ReturnReceived{ClaimId: "c1", ReturnId: "r1", OrderId: "o1", VendorId: "v1", Restock: true,
		Condition: trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED, Lines: []*trustv1.ClaimLine{{SkuId: black, Quantity: 2}}})
	reacted(t, p, "return restocked", stockIs(t, v1, p1, "black_m", [3]int64{4, 0, 1}))
	holds(t, stockIs(t, v1, p1, "white_m", [3]int64{4, 0, 1}))
	got := events(t, p, "product-"+p1)
	if n := len(got); n < 3 || !slices.Equal(got[n-3:], []string{sold, sold, restocked}) {
		t.Fatalf("product events %v: want two sales and one restock last", got)
	}
}

// An order of one product reserves without a reservation aggregate; when
// the ship-by policy cancels its only fulfilment, the catalog finds the
// product from the order's OrderPlaced and gives the units back (the order
// service records the part's fate; it no longer cancels the order).
func TestShipByCancelReleasesAnOrderOfOneProduct(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	v1 := vendor(t, p, "v1")
	p1 := product(t, v1, "p1", "v1", 5, 5)
	black := p1 + "-black_m"
	p.Emit(t, "order", "order-o1", orderPlaced("o1", map[string]int64{black: 2}))
	reacted(t, p, "o1 held", stockIs(t, v1, p1, "black_m", [3]int64{3, 2, 0}))
	p.Emit(t, "fulfilment", "fulfilment-f1", &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", Reason: "ship-by deadline missed"})
	reacted(t, p, "o1's units back on sale", stockIs(t, v1, p1, "black_m", [3]int64{5, 0, 0}))
}

// The first delivery of an order event does the work and then fails, as if
// the process died before acknowledging it; the runtime delivers it again
// and the saga must not reserve twice.
func TestSagaRedelivery(t *testing.T) {
	t.Parallel()
	var deliveries atomic.Int32
	m := catalog.Module()
	newParts := m.New
	m.New = func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		parts, err := newParts(ctx, d)
		for i, r := range parts.Reactions {
			if r.Name != catalog.ConsumerName {
				continue
			}
			parts.Reactions[i].Handle = func(ctx context.Context, e eventstore.RecordedEvent) error {
				err := r.Handle(ctx, e)
				if deliveries.Add(1) == 1 && err == nil {
					return errors.New("crash after the work, before the ack")
				}
				return err
			}
		}
		return parts, err
	}
	p := platformtest.Start(t, platformtest.Options{Clock: clock.NewFake(t0)}, m)
	v := vendor(t, p, "v1")
	pid := product(t, v, "p1", "v1", 5, 5)
	p.Emit(t, "order", "order-o7", orderPlaced("o7", map[string]int64{pid + "-black_m": 2}))
	reacted(t, p, "a redelivery", func() error {
		if n := deliveries.Load(); n < 2 {
			return fmt.Errorf("%d deliveries", n)
		}
		return nil
	})
	if n := deliveries.Load(); n != 2 {
		t.Fatalf("%d deliveries, want 2", n)
	}
	holds(t,
		stockIs(t, v, pid, "black_m", [3]int64{3, 2, 0}),
		endsWith(t, p, "product-"+pid, held, reserved))
}
