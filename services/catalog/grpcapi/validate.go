package grpcapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// Field limits.
const (
	maxRequestID   = 128
	maxName        = 200
	maxDescription = 5000
	maxCategory    = 64
	maxReason      = 500
	defaultPage    = 50
	maxPage        = 500
)

// checker accumulates field violations for one request.
type checker struct{ apierr.Violations }

func (c *checker) requestID(id string) {
	switch {
	case id == "":
		c.Add("request_id", "is required (an idempotency key, e.g. a UUID)")
	case len(id) > maxRequestID:
		c.Addf("request_id", "at most %d bytes", maxRequestID)
	}
}

func (c *checker) match(field, v string, ok bool, what string) {
	switch {
	case v == "":
		c.Add(field, "is required")
	case !ok:
		c.Add(field, what)
	}
}

func (c *checker) vendorID(field, v string) {
	c.match(field, v, domain.VendorIDPattern.MatchString(v), "must be 1-64 letters, digits, '-' or '_'")
}

func (c *checker) creatorID(field, v string) {
	c.match(field, v, domain.CreatorIDPattern.MatchString(v), "must be 1-128 letters, digits, '.', '-' or '_'")
}

// assignedID checks the id of a resource the catalog assigns ids to, in
// the field named after it ("product_id").
func (c *checker) assignedID(field, v string) {
	c.match(field, v, domain.AssignedIDPattern.MatchString(v), "is not a "+strings.TrimSuffix(field, "_id")+" id")
}

func (c *checker) skuID(field, v string) {
	_, ok := domain.ProductOfSKU(v)
	c.match(field, v, ok, `is not a SKU id ("<product_id>-<code>")`)
}

func (c *checker) text(field, v string, max int, required bool) {
	switch {
	case required && strings.TrimSpace(v) == "":
		c.Add(field, "is required")
	case utf8.RuneCountInString(v) > max:
		c.Addf(field, "at most %d characters", max)
	}
}

func validateRegisterVendor(r *catalogv1.RegisterVendorRequest) error {
	var c checker
	c.handlingTime(r.GetHandlingTime())
	c.requestID(r.GetRequestId())
	c.vendorID("vendor_id", r.GetVendorId())
	c.text("display_name", r.GetDisplayName(), maxName, true)
	cc := r.GetCountryCode()
	c.match("country_code", cc, len(cc) == 2 && strings.ToUpper(cc) == cc && strings.Trim(cc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "",
		`must be an ISO 3166-1 alpha-2 code such as "DE"`)
	return c.Err()
}

// createProductCommand validates a CreateProductRequest and converts it.
// Shape (ids, lengths, presence) is checked here; the product invariants
// (SKUs, codes, prices, currencies, commission) by the domain, whose
// violations name the same request fields.
func createProductCommand(r *catalogv1.CreateProductRequest) (domain.CreateProduct, error) {
	var c checker
	c.requestID(r.GetRequestId())
	c.vendorID("vendor_id", r.GetVendorId())
	c.text("title", r.GetTitle(), maxName, true)
	c.text("description", r.GetDescription(), maxDescription, false)
	c.text("category", r.GetCategory(), maxCategory, false)
	cmd := domain.CreateProduct{
		VendorID: r.GetVendorId(), Title: r.GetTitle(), Description: r.GetDescription(), Category: r.GetCategory(),
		CommissionBps: r.GetAffiliateCommissionBps(),
	}
	reported := map[string]bool{}
	for i, k := range r.GetSkus() {
		f := fmt.Sprintf("skus[%d]", i)
		c.text(f+".title", k.GetTitle(), maxName, false)
		if k.GetPrice() == nil {
			c.Add(f+".price", "is required")
			reported[f+".price"] = true
		}
		cmd.SKUs = append(cmd.SKUs, domain.SKUSpec{
			Code: k.GetCode(), Title: k.GetTitle(), InitialStock: k.GetInitialStock(),
			Price: money.Money{Currency: k.GetPrice().GetCurrencyCode(), Minor: k.GetPrice().GetAmountMinor()},
		})
	}
	var invalid *domain.ValidationError
	if errors.As(domain.ValidateProduct(cmd), &invalid) {
		for _, v := range invalid.Violations {
			if v.Field == "vendor_id" || v.Field == "title" || reported[parentField(v.Field)] {
				continue // already reported above
			}
			c.Add(v.Field, v.Description)
		}
	}
	return cmd, c.Err()
}

// parentField turns "skus[0].price.currency_code" into "skus[0].price".
func parentField(f string) string {
	if i := strings.LastIndexByte(f, '.'); i > 0 {
		return f[:i]
	}
	return f
}

// handlingTime checks an optional handling time (nil: the platform's
// default) and returns it, 0 for none.
func (c *checker) handlingTime(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	ht := d.AsDuration()
	if d.CheckValid() != nil || ht < domain.MinHandlingTime || ht > domain.MaxHandlingTime || ht%time.Second != 0 {
		c.Addf("handling_time", "must be whole seconds from %s to %s, or unset for the platform's default", domain.MinHandlingTime, domain.MaxHandlingTime)
		return 0
	}
	return ht
}

func validateSetVendorHandlingTime(r *catalogv1.SetVendorHandlingTimeRequest) (time.Duration, error) {
	var c checker
	c.requestID(r.GetRequestId())
	c.vendorID("vendor_id", r.GetVendorId())
	ht := c.handlingTime(r.GetHandlingTime())
	return ht, c.Err()
}

// updateProductCommand validates an UpdateProductRequest and converts it:
// the fields named in update_mask must be known and valid; the others are
// ignored.
func updateProductCommand(r *catalogv1.UpdateProductRequest) (domain.UpdateProduct, error) {
	var c checker
	c.requestID(r.GetRequestId())
	c.assignedID("product_id", r.GetProductId())
	cmd := domain.UpdateProduct{Title: r.GetTitle(), Description: r.GetDescription(), Category: r.GetCategory(), CommissionBps: r.GetAffiliateCommissionBps()}
	paths := r.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		c.Addf("update_mask", "name the fields to change: %s", strings.Join(domain.Updatable, ", "))
	}
	seen := map[string]bool{}
	for _, f := range paths {
		switch {
		case !slices.Contains(domain.Updatable, f):
			c.Addf("update_mask", "unknown field %q: the fields are %s", f, strings.Join(domain.Updatable, ", "))
			continue
		case seen[f]:
			continue
		}
		seen[f] = true
		cmd.Fields = append(cmd.Fields, f)
		switch f {
		case "title":
			c.text("title", r.GetTitle(), maxName, true)
		case "description":
			c.text("description", r.GetDescription(), maxDescription, false)
		case "category":
			c.text("category", r.GetCategory(), maxCategory, false)
		case "affiliate_commission_bps":
			if b := r.GetAffiliateCommissionBps(); b < 0 || b > domain.MaxBps {
				c.Addf("affiliate_commission_bps", "must be between 0 and %d basis points, got %d", domain.MaxBps, b)
			}
		}
	}
	return cmd, c.Err()
}

func validateSetSkuPrice(r *catalogv1.SetSkuPriceRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.skuID("sku_id", r.GetSkuId())
	c.price("price", r.GetPrice())
	return c.Err()
}

// price checks what a price is without its product: present, a currency,
// an amount within bounds (the product checks its currency).
func (c *checker) price(field string, m *typev1.Money) {
	if m == nil {
		c.Add(field, "is required")
		return
	}
	if err := money.ValidateCurrency(m.GetCurrencyCode()); err != nil {
		c.Add(field+".currency_code", `must be a supported ISO 4217 code such as "EUR"`)
	}
	if a := m.GetAmountMinor(); a < 0 || a > money.MaxUnitPrice {
		c.Addf(field+".amount_minor", "must be between 0 and %d minor units (the highest unit price), got %d", int64(money.MaxUnitPrice), a)
	}
}

func addSkuCommand(r *catalogv1.AddSkuRequest) (domain.AddSKU, error) {
	var c checker
	c.requestID(r.GetRequestId())
	c.assignedID("product_id", r.GetProductId())
	k := r.GetSku()
	if k == nil {
		c.Add("sku", "is required")
		return domain.AddSKU{}, c.Err()
	}
	if !domain.SKUCodePattern.MatchString(k.GetCode()) {
		c.Add("sku.code", "must be 1-32 lower-case letters, digits or '_'")
	}
	c.text("sku.title", k.GetTitle(), maxName, false)
	c.price("sku.price", k.GetPrice())
	if n := k.GetInitialStock(); n < 0 || n > domain.MaxUnits {
		c.Addf("sku.initial_stock", "must be between 0 and %d, got %d", int64(domain.MaxUnits), n)
	}
	return domain.AddSKU{SKU: domain.SKUSpec{Code: k.GetCode(), Title: k.GetTitle(), InitialStock: k.GetInitialStock(),
		Price: money.Money{Currency: k.GetPrice().GetCurrencyCode(), Minor: k.GetPrice().GetAmountMinor()}}}, c.Err()
}

func validateArchiveProduct(r *catalogv1.ArchiveProductRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.assignedID("product_id", r.GetProductId())
	c.text("reason", r.GetReason(), maxReason, false)
	return c.Err()
}

func validateAdjustStock(r *catalogv1.AdjustStockRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.skuID("sku_id", r.GetSkuId())
	switch d := r.GetDelta(); {
	case d == 0:
		c.Add("delta", "must not be zero: positive to restock, negative to correct")
	case d > domain.MaxUnits || d < -domain.MaxUnits:
		c.Addf("delta", "must be within ±%d", int64(domain.MaxUnits))
	}
	c.text("reason", r.GetReason(), maxReason, false)
	return c.Err()
}

func validateCreateAffiliateLink(r *catalogv1.CreateAffiliateLinkRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.creatorID("creator_id", r.GetCreatorId())
	c.assignedID("product_id", r.GetProductId())
	return c.Err()
}

func validateStartLiveSession(r *catalogv1.StartLiveSessionRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.creatorID("creator_id", r.GetCreatorId())
	c.text("title", r.GetTitle(), maxName, false)
	return c.Err()
}

func validatePin(requestID, sessionID, productID string) error {
	var c checker
	c.requestID(requestID)
	c.assignedID("session_id", sessionID)
	c.assignedID("product_id", productID)
	return c.Err()
}

func validateEndLiveSession(r *catalogv1.EndLiveSessionRequest) error {
	var c checker
	c.requestID(r.GetRequestId())
	c.assignedID("session_id", r.GetSessionId())
	return c.Err()
}

// validateID checks the one id of a Get request.
func validateID(field, v string, check func(*checker, string, string)) error {
	var c checker
	check(&c, field, v)
	return c.Err()
}

// listRequest is a validated ListProductsRequest.
type listRequest struct {
	vendorID string
	size     int
	before   uint64
}

func validateListProducts(r *catalogv1.ListProductsRequest) (listRequest, error) {
	var c checker
	c.vendorID("vendor_id", r.GetVendorId())
	lr := listRequest{vendorID: r.GetVendorId(), size: int(r.GetPageSize())}
	switch {
	case lr.size < 0:
		c.Add("page_size", "must not be negative")
	case lr.size == 0:
		lr.size = defaultPage
	case lr.size > maxPage:
		lr.size = maxPage // AIP-158: coerce to the maximum
	}
	if t := r.GetPageToken(); t != "" {
		before, err := decodePageToken(t, r.GetVendorId())
		if err != nil {
			c.Add("page_token", err.Error())
		}
		lr.before = before
	}
	return lr, c.Err()
}

// Page tokens are opaque to clients: base64url of "v1|<vendor_id>|<position>",
// the store position of the last product returned. Keyed by position, not by
// offset, so products created while a client pages do not shift its pages.
func encodePageToken(vendorID string, before uint64) string {
	if before == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + vendorID + "|" + strconv.FormatUint(before, 10)))
}

func decodePageToken(t, vendorID string) (uint64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return 0, fmt.Errorf("is not a token this service issued")
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != "v1" {
		return 0, fmt.Errorf("is not a token this service issued")
	}
	if parts[1] != vendorID {
		return 0, fmt.Errorf("was issued for another vendor_id")
	}
	pos, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || pos == 0 {
		return 0, fmt.Errorf("is not a token this service issued")
	}
	return pos, nil
}
