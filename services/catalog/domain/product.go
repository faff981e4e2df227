package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// Limits that keep the stock ledger far from integer overflow and products
// a sane size. A SKU's price is bounded by money.MaxUnitPrice, which keeps
// every order of it exact (pkg/money/bounds.go).
const (
	MaxSKUs  = 100
	MaxUnits = 1_000_000_000_000 // per SKU: available + reserved + sold
	MaxBps   = 10_000
)

// SoldHorizon is how long a product keeps the hold of an order sold in
// full, for the returns that may restock its units: until the product
// decides an order placed SoldHorizon after it: far longer than a return
// takes with the platform's defaults (a claim within the trust service's
// claim window, 30 days after delivery, then the parcel's way back); a
// claim window configured anywhere near it needs SoldHorizon raised.
// A return later than that is refused (NO_HOLD) and parked, for support
// to restock by hand with AdjustStock.
const SoldHorizon = 180 * 24 * time.Hour

// sweepEvery is how far the newest place time must move on before the
// product looks for sold holds past SoldHorizon again: a sweep visits
// every hold, so it is done now and then, not at every event.
const sweepEvery = 24 * time.Hour

// DecisionID is the command id under which a product decides an order:
// ReserveStock, HoldStock and FenceOrder for orderID on productID must be
// issued with it (es.Command.ID). The handler applies a command id once —
// a repeat decides nothing and returns the product as it is, after a
// restart, a replay from the first event or on another instance alike,
// because the ids applied are those its stored events were caused by — so
// the product decides each order once whoever asks and however often, and
// needs no record of a finished hold to refuse a second decision. That is
// what lets it drop them (see Product.holds).
func DecisionID(productID, orderID string) string {
	return es.DeriveID("catalog-decide", productID, orderID)
}

// Product is a vendor's product: its SKUs with their stock ledger, and the
// stock held per order.
type Product struct {
	ID            string
	Created       bool
	VendorID      string
	Title         string
	Description   string
	Category      string
	CommissionBps int32
	SKUs          []SKU
	CreatedAt     time.Time
	// Archived: the product takes no new orders, links or pins (an order
	// placed before ArchivedAt is still reserved); nothing about it
	// changes any more but its stock.
	Archived   bool
	ArchivedAt time.Time
	// holds are the holds the product keeps, by order id (HoldFor): the
	// open ones (held, or partly shipped), those sold in full until
	// SoldHorizon has passed (returns may restock their units), and the
	// ones recorded before holds were pruned (not decided once: they are
	// their order's only fence, so they stay). A hold decided once (under
	// DecisionID) is dropped as soon as it is released, and a failure or a
	// fence decided once leaves none: the handler's record of the decision
	// id refuses a second decision for the order.
	holds holdTable
	// placedUpTo is the newest place time of an order the product decided;
	// swept is where it stood at the last sweep of sold holds.
	placedUpTo, swept time.Time
}

// SKU is one variant and its ledger. Available + Reserved + Sold is the
// stock received (initial stock plus adjustments).
type SKU struct {
	ID        string
	Code      string
	Title     string
	Price     money.Money
	Available int64
	Reserved  int64
	Sold      int64
}

// HoldStatus is what became of the stock held for one order.
type HoldStatus int

// Hold statuses. HoldNone is the zero value: the product never saw the order.
const (
	HoldNone     HoldStatus = iota
	HoldHeld                // units moved available -> reserved
	HoldReleased            // units went back (or none were ever held: a tombstone)
	HoldSold                // units shipped: reserved -> sold
)

func (s HoldStatus) String() string {
	switch s {
	case HoldHeld:
		return "held"
	case HoldReleased:
		return "released"
	case HoldSold:
		return "sold"
	}
	return "none"
}

// Hold is the stock of this product held for one order.
type Hold struct {
	Status HoldStatus
	Lines  []Line // never modified in place once recorded
	// Placed is when the order was placed (zero if the hold's event did
	// not say); Once, that the hold was decided under DecisionID, so the
	// product drops it once it is finished.
	Placed time.Time
	Once   bool
	// Shipped and Returned are the units sold and restocked so far, by
	// SKU, with the shipment and return ids already applied.
	Shipped   map[string]int64
	Returned  map[string]int64
	Shipments []string
	Returns   []string
}

// without is h (a copy) holding the units of released less, its SKUs
// with none left dropped; it is sold once every unit left has shipped.
func (h Hold) without(released []Line) Hold {
	h = h.clone()
	var lines []Line
	held, shipped := int64(0), int64(0)
	for _, l := range h.Lines {
		l.Quantity -= Quantity(released, l.SkuID)
		if l.Quantity > 0 {
			lines = append(lines, l)
			held += l.Quantity
		}
	}
	for _, n := range h.Shipped {
		shipped += n
	}
	h.Lines = lines
	if shipped > 0 && shipped >= held {
		h.Status = HoldSold
	}
	return h
}

func (h Hold) clone() Hold {
	h.Shipped, h.Returned = maps.Clone(h.Shipped), maps.Clone(h.Returned)
	h.Shipments, h.Returns = slices.Clone(h.Shipments), slices.Clone(h.Returns)
	return h
}

// Line is a quantity of one SKU.
type Line struct {
	SkuID    string
	Quantity int64
}

// SKU returns the SKU with id, if the product has it.
func (p Product) SKU(id string) (SKU, bool) {
	if i := p.skuIndex(id); i >= 0 {
		return p.SKUs[i], true
	}
	return SKU{}, false
}

func (p Product) skuIndex(id string) int {
	return slices.IndexFunc(p.SKUs, func(s SKU) bool { return s.ID == id })
}

// HoldFor returns the hold for orderID: Status HoldNone if the product
// keeps none — it never decided the order, or the hold finished and was
// dropped (released, or sold past SoldHorizon). Its maps and slices are
// shared: read them, do not change them.
func (p Product) HoldFor(orderID string) Hold { return p.holds.get(orderID) }

// HoldCount is the number of holds the product keeps (see Product.holds):
// it does not grow with the orders that finished.
func (p Product) HoldCount() int { return p.holds.len() }

// WithoutHolds is p without its holds (a read model that lists stock).
func (p Product) WithoutHolds() Product {
	p.holds = holdTable{}
	return p
}

// CloneProduct copies p so that deciding on the copy leaves p as it was
// (the handler decides on copies). The holds are immutable and shared, so
// this costs the SKUs, not the orders the product has seen.
func CloneProduct(p Product) Product {
	p.SKUs = slices.Clone(p.SKUs)
	return p
}

// ProductCommand is a command to a product.
type ProductCommand interface{ command[Product] }

// CreateProduct lists a new product.
type CreateProduct struct {
	ProductID     string
	VendorID      string
	Title         string
	Description   string
	Category      string
	CommissionBps int32
	SKUs          []SKUSpec
	Now           time.Time
}

// SKUSpec describes a SKU to create.
type SKUSpec struct {
	Code         string
	Title        string
	Price        money.Money
	InitialStock int64
}

// AdjustStock restocks (Delta > 0) or corrects (Delta < 0) one SKU.
type AdjustStock struct {
	SkuID  string
	Delta  int64
	Reason string
	Now    time.Time
}

// HoldStock sets units aside for an order: all lines or none. Holding for
// an order that already has a hold (in any status) decides nothing; the
// caller reads the existing status from the state. Issue it under
// DecisionID: the hold is recorded as decided once.
type HoldStock struct {
	OrderID string
	Lines   []Line
	// PlacedAt is when the order was placed (OrderPlaced.place_time), if
	// known: SoldHorizon is measured from it.
	PlacedAt time.Time
}

// ReserveStock reserves an order whose every line is this product's: it
// holds the lines and answers the order in the same decision, StockHeld
// with StockReserved, or StockReservationFailed naming the SKU that is
// short or unknown. The order's reservation is then one durable step,
// where an order across products takes a reservation saga. An order that
// already has a hold here, in any status, decides nothing. Issue it under
// DecisionID, like HoldStock: that makes it the order's only decision
// here, a failure included.
type ReserveStock struct {
	OrderID  string
	Lines    []Line
	PlacedAt time.Time // as in HoldStock
	Now      time.Time
}

// ReleaseStock gives back what is held for an order. An order with no
// stock held here (released, sold, never decided here, or finished and
// dropped) decides nothing: nothing is released twice. Fencing off an
// order the product has not seen yet is FenceOrder's.
type ReleaseStock struct {
	OrderID string
	Reason  string
}

// ReleaseLines gives back some of the units held for an order: the order
// cancelled them before they shipped (OrderLinesCancelled). Per SKU it
// releases at most what is held and not shipped, so a later release of the
// whole hold (ReleaseStock: the order or its fulfilment cancelled) gives
// back only the rest, and nothing goes back twice. Units that would leave
// nothing held and nothing shipped release the whole hold (as ReleaseStock
// does); otherwise the event is partial and the hold stands with the rest.
// An order with nothing held here decides nothing. Lines not of this
// product are ignored.
type ReleaseLines struct {
	OrderID string
	Lines   []Line
	Reason  string
}

// FenceOrder makes sure the product never holds stock for an order that
// went away (it was cancelled) before the product decided it. Issue it
// under DecisionID, before releasing: if the product decided the order,
// the handler answers it as a repeat and ReleaseStock gives back what is
// held; if not, it records an empty release (a tombstone) under the
// order's decision id, so the OrderPlaced arriving later is the repeat
// and holds nothing. The product keeps no record of the order either way.
type FenceOrder struct {
	OrderID string
	Reason  string
}

// SellStock marks units held for an order as shipped (reserved -> sold).
// Lines not of this product are ignored; a shipment is applied once.
type SellStock struct {
	OrderID    string
	ShipmentID string
	Lines      []Line
}

// RestockReturn puts returned, resellable units back (sold -> available).
// Applied once per return.
type RestockReturn struct {
	OrderID  string
	ReturnID string
	Lines    []Line
}

// UpdateProduct changes the descriptive fields named in Fields ("title",
// "description", "category", "affiliate_commission_bps") to the values
// given. A new commission applies to the links and pins made after it.
type UpdateProduct struct {
	Fields        []string
	Title         string
	Description   string
	Category      string
	CommissionBps int32
	Now           time.Time
}

// Updatable are the fields UpdateProduct may change.
var Updatable = []string{"title", "description", "category", "affiliate_commission_bps"}

// SetSkuPrice changes a SKU's unit price for the orders placed after it.
type SetSkuPrice struct {
	SkuID string
	Price money.Money
	Now   time.Time
}

// AddSKU adds a SKU with its initial stock, under the rules of
// CreateProduct's SKUs.
type AddSKU struct {
	SKU SKUSpec
	Now time.Time
}

// ArchiveProduct stops selling the product. Archiving an archived product
// decides nothing.
type ArchiveProduct struct {
	Reason string
	Now    time.Time
}

// Products is the product aggregate: every command but CreateProduct
// needs a product that was created.
var Products = createdBy[Product, ProductCommand, CreateProduct]("product", func(id string) Product { return Product{ID: id} }, evolveProduct, CloneProduct)

func (s Product) created() (string, bool) { return s.ID, s.Created }

func (c CreateProduct) decide(s Product) ([]proto.Message, error) {
	if err := ValidateProduct(c); err != nil {
		return nil, err
	}
	ev := &catalogv1.ProductCreated{
		ProductId: s.ID, VendorId: c.VendorID, Title: c.Title, Description: c.Description,
		Category: c.Category, AffiliateCommissionBps: c.CommissionBps, CreateTime: timestamppb.New(c.Now),
	}
	for _, k := range c.SKUs {
		ev.Skus = append(ev.Skus, &catalogv1.SkuCreated{
			SkuId: SKUID(s.ID, k.Code), Code: k.Code, Title: k.Title, Price: k.Price.ToProto(), InitialStock: k.InitialStock,
		})
	}
	return []proto.Message{ev}, nil
}

// ValidateProduct checks the invariants of a new product; violations name
// the fields of the CreateProduct request.
func ValidateProduct(c CreateProduct) error {
	var v fault.Violations
	if !VendorIDPattern.MatchString(c.VendorID) {
		v.Add("vendor_id", "must be 1-64 letters, digits, '-' or '_'")
	}
	if strings.TrimSpace(c.Title) == "" {
		v.Add("title", "is required")
	}
	if c.CommissionBps < 0 || c.CommissionBps > MaxBps {
		v.Add("affiliate_commission_bps", "must be between 0 and %d basis points, got %d", MaxBps, c.CommissionBps)
	}
	switch {
	case len(c.SKUs) == 0:
		v.Add("skus", "at least one SKU is required")
	case len(c.SKUs) > MaxSKUs:
		v.Add("skus", "at most %d SKUs, got %d", MaxSKUs, len(c.SKUs))
	}
	codes := map[string]int{}
	currency := ""
	for i, k := range c.SKUs {
		f := fmt.Sprintf("skus[%d]", i)
		if !SKUCodePattern.MatchString(k.Code) {
			v.Add(f+".code", "must be 1-32 lower-case letters, digits or '_'")
		} else if j, dup := codes[k.Code]; dup {
			v.Add(f+".code", "duplicates skus[%d].code %q", j, k.Code)
		} else {
			codes[k.Code] = i
		}
		switch err := money.ValidateCurrency(k.Price.Currency); {
		case err != nil:
			v.Add(f+".price.currency_code", "%s", currencyProblem(err))
		case currency == "":
			currency = k.Price.Currency
		case k.Price.Currency != currency:
			v.Add(f+".price.currency_code", "all SKUs share one currency: want %s, got %s", currency, k.Price.Currency)
		}
		if k.Price.Minor < 0 || k.Price.Minor > money.MaxUnitPrice {
			v.Add(f+".price.amount_minor", "must be between 0 and %d minor units (the highest unit price), got %d", int64(money.MaxUnitPrice), k.Price.Minor)
		}
		if k.InitialStock < 0 || k.InitialStock > MaxUnits {
			v.Add(f+".initial_stock", "must be between 0 and %d, got %d", int64(MaxUnits), k.InitialStock)
		}
	}
	return v.Err()
}

// currencyProblem describes a money.ValidateCurrency error for a person.
func currencyProblem(err error) string {
	if errors.Is(err, money.ErrUnknownCurrency) {
		return "unsupported currency"
	}
	return "must be a three-letter upper-case ISO 4217 code such as \"EUR\""
}

// archived is ErrProductArchived for what the archived product s refuses.
func (s Product) archived(what string) error {
	return refuse(ErrProductArchived, "product %s was archived at %s: it takes no %s", s.ID, s.ArchivedAt.Format(time.RFC3339), what)
}

// orderable is nil if the product takes an order placed at placedAt:
// unless it is archived, or the order was placed before it was (the
// order service had priced it already; zero: not known, refused).
func (s Product) orderable(placedAt time.Time) error {
	if !s.Archived || (!placedAt.IsZero() && placedAt.Before(s.ArchivedAt)) {
		return nil
	}
	return s.archived("new orders")
}

func (c UpdateProduct) decide(s Product) ([]proto.Message, error) {
	var v fault.Violations
	if len(c.Fields) == 0 {
		v.Add("update_mask", "name at least one of %s", strings.Join(Updatable, ", "))
	}
	next := s
	var changed []string
	for _, f := range c.Fields {
		switch f {
		case "title":
			if strings.TrimSpace(c.Title) == "" {
				v.Add("title", "is required")
			}
			next.Title = c.Title
		case "description":
			next.Description = c.Description
		case "category":
			next.Category = c.Category
		case "affiliate_commission_bps":
			if c.CommissionBps < 0 || c.CommissionBps > MaxBps {
				v.Add("affiliate_commission_bps", "must be between 0 and %d basis points, got %d", MaxBps, c.CommissionBps)
			}
			next.CommissionBps = c.CommissionBps
		default:
			v.Add("update_mask", "unknown field %q: the fields are %s", f, strings.Join(Updatable, ", "))
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.Archived {
		return nil, s.archived("changes")
	}
	differs := map[string]bool{"title": next.Title != s.Title, "description": next.Description != s.Description,
		"category": next.Category != s.Category, "affiliate_commission_bps": next.CommissionBps != s.CommissionBps}
	for _, f := range Updatable { // in Updatable's order
		if differs[f] {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return nil, nil // as it is already
	}
	return []proto.Message{&catalogv1.ProductUpdated{
		ProductId: s.ID, Title: next.Title, Description: next.Description, Category: next.Category,
		AffiliateCommissionBps: next.CommissionBps, ChangedFields: changed, UpdateTime: timestamppb.New(c.Now),
	}}, nil
}

// currency is the currency every SKU of the product is priced in.
func (s Product) currency() string {
	if len(s.SKUs) == 0 {
		return ""
	}
	return s.SKUs[0].Price.Currency
}

// checkPrice adds the violations of price for a SKU of s under field
// (its ".currency_code" and ".amount_minor").
func (s Product) checkPrice(v *fault.Violations, field string, price money.Money) {
	switch err := money.ValidateCurrency(price.Currency); {
	case err != nil:
		v.Add(field+".currency_code", "%s", currencyProblem(err))
	case s.currency() != "" && price.Currency != s.currency():
		v.Add(field+".currency_code", "all SKUs of the product share one currency: want %s, got %s", s.currency(), price.Currency)
	}
	if price.Minor < 0 || price.Minor > money.MaxUnitPrice {
		v.Add(field+".amount_minor", "must be between 0 and %d minor units (the highest unit price), got %d", int64(money.MaxUnitPrice), price.Minor)
	}
}

func (c SetSkuPrice) decide(s Product) ([]proto.Message, error) {
	var v fault.Violations
	s.checkPrice(&v, "price", c.Price)
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, ok := s.SKU(c.SkuID)
	if !ok {
		return nil, &NotFoundError{Resource: "sku", ID: c.SkuID}
	}
	if s.Archived {
		return nil, s.archived("changes")
	}
	if k.Price == c.Price {
		return nil, nil // priced so already
	}
	return []proto.Message{&catalogv1.SkuPriceChanged{
		ProductId: s.ID, SkuId: k.ID, Price: c.Price.ToProto(), PreviousPrice: k.Price.ToProto(), ChangeTime: timestamppb.New(c.Now),
	}}, nil
}

func (c AddSKU) decide(s Product) ([]proto.Message, error) {
	var v fault.Violations
	k := c.SKU
	if !SKUCodePattern.MatchString(k.Code) {
		v.Add("sku.code", "must be 1-32 lower-case letters, digits or '_'")
	}
	s.checkPrice(&v, "sku.price", k.Price)
	if k.InitialStock < 0 || k.InitialStock > MaxUnits {
		v.Add("sku.initial_stock", "must be between 0 and %d, got %d", int64(MaxUnits), k.InitialStock)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := SKUID(s.ID, k.Code)
	switch {
	case s.skuIndex(id) >= 0:
		return nil, &ExistsError{Resource: "sku", ID: id}
	case s.Archived:
		return nil, s.archived("new SKUs")
	case len(s.SKUs) >= MaxSKUs:
		return nil, refuse(ErrTooManySKUs, "product %s has %d SKUs, the most a product may have", s.ID, len(s.SKUs))
	}
	return []proto.Message{&catalogv1.SkuAdded{
		ProductId: s.ID, Sku: &catalogv1.SkuCreated{SkuId: id, Code: k.Code, Title: k.Title, Price: k.Price.ToProto(), InitialStock: k.InitialStock},
		AddTime: timestamppb.New(c.Now),
	}}, nil
}

func (c ArchiveProduct) decide(s Product) ([]proto.Message, error) {
	if s.Archived {
		return nil, nil // archived already: nothing to do
	}
	return []proto.Message{&catalogv1.ProductArchived{ProductId: s.ID, VendorId: s.VendorID, Reason: c.Reason, ArchiveTime: timestamppb.New(c.Now)}}, nil
}

func (c AdjustStock) decide(s Product) ([]proto.Message, error) {
	var v fault.Violations
	if c.Delta == 0 {
		v.Add("delta", "must not be zero")
	} else if c.Delta > MaxUnits || c.Delta < -MaxUnits {
		v.Add("delta", "must be within ±%d", int64(MaxUnits))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, ok := s.SKU(c.SkuID)
	if !ok {
		return nil, &NotFoundError{Resource: "sku", ID: c.SkuID}
	}
	if k.Available+c.Delta < 0 {
		return nil, refuse(ErrStockBelowReserved, "sku %s: removing %d units would leave %d in stock, below the %d reserved",
			k.ID, -c.Delta, k.Available+k.Reserved+c.Delta, k.Reserved)
	}
	if k.Available+k.Reserved+k.Sold+c.Delta > MaxUnits {
		return nil, invalid("delta", "would take sku %s above %d units", k.ID, int64(MaxUnits))
	}
	return []proto.Message{&catalogv1.StockAdjusted{
		ProductId: s.ID, SkuId: c.SkuID, Delta: c.Delta, Reason: c.Reason, AdjustTime: timestamppb.New(c.Now),
	}}, nil
}

// firstHold is lines merged, if orderID has no hold here yet; first is
// false when the product decided for the order before (the caller reads
// the status).
func (s Product) firstHold(orderID string, lines []Line) (merged []Line, first bool, err error) {
	if s.HoldFor(orderID).Status != HoldNone {
		return nil, false, nil
	}
	merged, err = mergeLines(lines)
	return merged, err == nil, err
}

func (c HoldStock) decide(s Product) ([]proto.Message, error) {
	lines, first, err := s.firstHold(c.OrderID, c.Lines)
	if !first {
		return nil, err
	}
	if err := s.orderable(c.PlacedAt); err != nil {
		return nil, err
	}
	if err := s.shortfall(lines); err != nil {
		return nil, err
	}
	return []proto.Message{s.held(c.OrderID, lines, c.PlacedAt)}, nil
}

// held is the StockHeld of a hold decided once.
func (s Product) held(orderID string, lines []Line, placedAt time.Time) *catalogv1.StockHeld {
	return &catalogv1.StockHeld{ProductId: s.ID, OrderId: orderID, Lines: linesToProto(lines), PlaceTime: timeOrNil(placedAt), DecidedOnce: true}
}

// timeOrNil is t as a proto timestamp, nil for the zero time.
func timeOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (c ReserveStock) decide(s Product) ([]proto.Message, error) {
	lines, first, err := s.firstHold(c.OrderID, c.Lines)
	if !first {
		return nil, err
	}
	if err := s.orderable(c.PlacedAt); err != nil {
		k, _ := s.SKU(lines[0].SkuID) // available as it is: the refusal is no shortfall
		return []proto.Message{c.refusal(lines[0].SkuID, lines[0].Quantity, k.Available, err.Error())}, nil
	}
	var short *InsufficientStockError
	var missing *NotFoundError
	switch err := s.shortfall(lines); {
	case errors.As(err, &short):
		return []proto.Message{c.refusal(short.SkuID, short.Requested, short.Available, short.Error())}, nil
	case errors.As(err, &missing):
		requested := Quantity(lines, missing.ID)
		return []proto.Message{c.refusal(missing.ID, requested, 0, fmt.Sprintf("sku %s: no such sku", missing.ID))}, nil
	}
	h := s.held(c.OrderID, lines, c.PlacedAt)
	return []proto.Message{h, &catalogv1.StockReserved{OrderId: c.OrderID, Lines: h.Lines, ReserveTime: timestamppb.New(c.Now)}}, nil
}

func (c ReserveStock) refusal(sku string, requested, available int64, reason string) *catalogv1.StockReservationFailed {
	return &catalogv1.StockReservationFailed{OrderId: c.OrderID, SkuId: sku, Requested: requested, Available: available,
		Reason: reason, FailTime: timestamppb.New(c.Now), DecidedOnce: true, PlaceTime: timeOrNil(c.PlacedAt)}
}

// shortfall is why lines (merged) cannot be held now: a SKU the product
// does not have, or not enough of one available.
func (s Product) shortfall(lines []Line) error {
	for _, l := range lines {
		k, ok := s.SKU(l.SkuID)
		if !ok {
			return &NotFoundError{Resource: "sku", ID: l.SkuID}
		}
		if k.Available < l.Quantity {
			return &InsufficientStockError{SkuID: l.SkuID, Requested: l.Quantity, Available: k.Available}
		}
	}
	return nil
}

// Quantity is how many units of sku lines ask for in all.
func Quantity(lines []Line, sku string) int64 {
	var n int64
	for _, l := range lines {
		if l.SkuID == sku {
			n += l.Quantity
		}
	}
	return n
}

// mergeLines adds up the quantities of repeated SKUs and sorts by SKU id.
func mergeLines(in []Line) ([]Line, error) {
	var v fault.Violations
	if len(in) == 0 {
		v.Add("lines", "at least one line is required")
	}
	sum := map[string]int64{}
	for i, l := range in {
		if l.Quantity <= 0 || l.Quantity > MaxUnits {
			v.Add(fmt.Sprintf("lines[%d].quantity", i), "must be between 1 and %d, got %d", int64(MaxUnits), l.Quantity)
			continue
		}
		sum[l.SkuID] += l.Quantity
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := make([]Line, 0, len(sum))
	for _, id := range slices.Sorted(maps.Keys(sum)) {
		out = append(out, Line{SkuID: id, Quantity: sum[id]})
	}
	return out, nil
}

func (c ReleaseStock) decide(s Product) ([]proto.Message, error) {
	h := s.HoldFor(c.OrderID)
	if h.Status != HoldHeld {
		return nil, nil // nothing held (any more, or here)
	}
	return []proto.Message{&catalogv1.StockHoldReleased{
		ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(h.Lines), Reason: c.Reason, DecidedOnce: h.Once,
	}}, nil
}

func (c ReleaseLines) decide(s Product) ([]proto.Message, error) {
	h := s.HoldFor(c.OrderID)
	if h.Status != HoldHeld {
		return nil, nil // nothing held (any more, or here)
	}
	want := map[string]int64{}
	for _, l := range c.Lines {
		if s.skuIndex(l.SkuID) >= 0 && l.Quantity > 0 {
			want[l.SkuID] += l.Quantity
		}
	}
	var back []Line
	left, shipped := int64(0), int64(0)
	for _, l := range h.Lines {
		open := l.Quantity - h.Shipped[l.SkuID]
		n := min(want[l.SkuID], max(open, 0))
		if n > 0 {
			back = append(back, Line{SkuID: l.SkuID, Quantity: n})
		}
		left += l.Quantity - n
		shipped += h.Shipped[l.SkuID]
	}
	switch {
	case len(back) == 0:
		return nil, nil
	case left == 0 && shipped == 0:
		return ReleaseStock{OrderID: c.OrderID, Reason: c.Reason}.decide(s)
	}
	return []proto.Message{&catalogv1.StockHoldReleased{
		ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(back), Reason: c.Reason, Partial: true,
	}}, nil
}

func (c FenceOrder) decide(s Product) ([]proto.Message, error) {
	if s.HoldFor(c.OrderID).Status != HoldNone {
		return nil, nil // decided before this product pruned holds: its hold is its fence
	}
	return []proto.Message{&catalogv1.StockHoldReleased{ProductId: s.ID, OrderId: c.OrderID, Reason: c.Reason, DecidedOnce: true}}, nil
}

func (c SellStock) decide(s Product) ([]proto.Message, error) {
	h := s.HoldFor(c.OrderID)
	if slices.Contains(h.Shipments, c.ShipmentID) {
		return nil, nil
	}
	if h.Status != HoldHeld && h.Status != HoldSold {
		return nil, refuse(ErrNoHold, "product %s: no stock held for order %s (%s)", s.ID, c.OrderID, h.Status)
	}
	held := map[string]int64{}
	for _, l := range h.Lines {
		held[l.SkuID] += l.Quantity
	}
	sold, err := s.within(c.OrderID, c.Lines, h.Shipped, held, "holds", "shipped", "ship")
	if err != nil || len(sold) == 0 {
		return nil, err
	}
	return []proto.Message{&catalogv1.StockSold{
		ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(sold), ShipmentId: c.ShipmentID,
	}}, nil
}

func (c RestockReturn) decide(s Product) ([]proto.Message, error) {
	h := s.HoldFor(c.OrderID)
	if slices.Contains(h.Returns, c.ReturnID) {
		return nil, nil
	}
	if h.Status == HoldNone {
		return nil, refuse(ErrNoHold, "product %s: no units sold for order %s here (never sold, or sold more than %s before the newest order and no longer kept for returns): restock by hand",
			s.ID, c.OrderID, SoldHorizon)
	}
	back, err := s.within(c.OrderID, c.Lines, h.Returned, h.Shipped, "shipped", "returned", "restock")
	if err != nil || len(back) == 0 {
		return nil, err
	}
	return []proto.Message{&catalogv1.StockRestocked{
		ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(back), ReturnId: c.ReturnID,
	}}, nil
}

// within returns the lines of this product among lines (those of other
// products of the same shipment or return are left out), refusing unless
// each is positive and keeps what was done so far, by SKU, within limit:
// units shipped within those held (has "holds", did "shipped", do "ship"),
// or returned within those shipped.
func (s Product) within(orderID string, lines []Line, done, limit map[string]int64, has, did, do string) ([]Line, error) {
	var out []Line
	for _, l := range lines {
		if s.skuIndex(l.SkuID) < 0 {
			continue
		}
		if l.Quantity <= 0 || done[l.SkuID]+l.Quantity > limit[l.SkuID] {
			return nil, refuse(ErrNoHold, "product %s: order %s %s %d of %s, %d already %s; cannot %s %d more",
				s.ID, orderID, has, limit[l.SkuID], l.SkuID, done[l.SkuID], did, do, l.Quantity)
		}
		out = append(out, l)
	}
	return out, nil
}

func evolveProduct(s Product, e proto.Message) Product {
	switch e := e.(type) {
	case *catalogv1.ProductCreated:
		s.Created = true
		s.VendorID, s.Title, s.Description, s.Category = e.GetVendorId(), e.GetTitle(), e.GetDescription(), e.GetCategory()
		s.CommissionBps = e.GetAffiliateCommissionBps()
		s.CreatedAt = e.GetCreateTime().AsTime()
		s.SKUs = make([]SKU, 0, len(e.GetSkus()))
		for _, k := range e.GetSkus() {
			s.SKUs = append(s.SKUs, SKU{
				ID: k.GetSkuId(), Code: k.GetCode(), Title: k.GetTitle(),
				Price:     money.Money{Currency: k.GetPrice().GetCurrencyCode(), Minor: k.GetPrice().GetAmountMinor()},
				Available: k.GetInitialStock(),
			})
		}
	case *catalogv1.ProductUpdated:
		s.Title, s.Description, s.Category = e.GetTitle(), e.GetDescription(), e.GetCategory()
		s.CommissionBps = e.GetAffiliateCommissionBps()
	case *catalogv1.SkuPriceChanged:
		if i := s.skuIndex(e.GetSkuId()); i >= 0 {
			s.SKUs[i].Price = money.Money{Currency: e.GetPrice().GetCurrencyCode(), Minor: e.GetPrice().GetAmountMinor()}
		}
	case *catalogv1.SkuAdded:
		k := e.GetSku()
		s.SKUs = append(s.SKUs, SKU{
			ID: k.GetSkuId(), Code: k.GetCode(), Title: k.GetTitle(),
			Price:     money.Money{Currency: k.GetPrice().GetCurrencyCode(), Minor: k.GetPrice().GetAmountMinor()},
			Available: k.GetInitialStock(),
		})
	case *catalogv1.ProductArchived:
		s.Archived, s.ArchivedAt = true, e.GetArchiveTime().AsTime()
	case *catalogv1.StockAdjusted:
		s.moveStock(e.GetSkuId(), e.GetDelta(), func(k *SKU, n int64) { k.Available += n })
	case *catalogv1.StockHeld:
		lines := linesFromProto(e.GetLines())
		for _, l := range lines {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Available -= n; k.Reserved += n })
		}
		h := Hold{Status: HoldHeld, Lines: lines, Once: e.GetDecidedOnce()}
		if e.GetPlaceTime() != nil {
			h.Placed = e.GetPlaceTime().AsTime()
		}
		s.setHold(e.GetOrderId(), h)
		s.sawPlaced(h.Placed)
	case *catalogv1.StockHoldReleased:
		lines := linesFromProto(e.GetLines())
		for _, l := range lines {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Reserved -= n; k.Available += n })
		}
		if e.GetPartial() {
			s.setHold(e.GetOrderId(), s.HoldFor(e.GetOrderId()).without(lines))
			break
		}
		if e.GetDecidedOnce() || s.HoldFor(e.GetOrderId()).Once {
			// The decision id fences the order: nothing to keep.
			s.holds = s.holds.without(e.GetOrderId())
		} else {
			s.setHold(e.GetOrderId(), Hold{Status: HoldReleased, Lines: lines})
		}
	case *catalogv1.StockReservationFailed:
		// ReserveStock refused the order: nothing was held, and nothing
		// will be. Decided once, the decision id is the fence; before
		// holds were pruned, a released hold was.
		if !e.GetDecidedOnce() {
			s.setHold(e.GetOrderId(), Hold{Status: HoldReleased})
		}
		if e.GetPlaceTime() != nil {
			s.sawPlaced(e.GetPlaceTime().AsTime())
		}
	case *catalogv1.StockSold:
		h := s.HoldFor(e.GetOrderId()).clone()
		if h.Shipped == nil {
			h.Shipped = map[string]int64{}
		}
		shipped, held := int64(0), int64(0)
		for _, l := range linesFromProto(e.GetLines()) {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Reserved -= n; k.Sold += n })
			h.Shipped[l.SkuID] += l.Quantity
		}
		for _, l := range h.Lines {
			held += l.Quantity
		}
		for _, n := range h.Shipped {
			shipped += n
		}
		h.Shipments = append(h.Shipments, e.GetShipmentId())
		if shipped >= held {
			h.Status = HoldSold
		}
		s.setHold(e.GetOrderId(), h)
	case *catalogv1.StockRestocked:
		h := s.HoldFor(e.GetOrderId()).clone()
		if h.Returned == nil {
			h.Returned = map[string]int64{}
		}
		for _, l := range linesFromProto(e.GetLines()) {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Sold -= n; k.Available += n })
			h.Returned[l.SkuID] += l.Quantity
		}
		h.Returns = append(h.Returns, e.GetReturnId())
		s.setHold(e.GetOrderId(), h)
	}
	return s
}

func (s *Product) moveStock(skuID string, n int64, move func(*SKU, int64)) {
	if i := s.skuIndex(skuID); i >= 0 {
		move(&s.SKUs[i], n)
	}
}

func (s *Product) setHold(orderID string, h Hold) { s.holds = s.holds.with(orderID, h) }

// sawPlaced notes that the product decided an order placed at t, and once
// the newest place time has moved sweepEvery on since the last sweep,
// drops the holds decided once and sold in full for an order placed more
// than SoldHorizon before it: no return reaches them any more. It depends
// on the events alone, so every load of the product drops the same holds.
func (s *Product) sawPlaced(t time.Time) {
	if t.IsZero() || !t.After(s.placedUpTo) {
		return
	}
	s.placedUpTo = t
	if s.swept.IsZero() {
		s.swept = t
		return
	}
	if t.Sub(s.swept) < sweepEvery {
		return
	}
	s.swept = t
	horizon := t.Add(-SoldHorizon)
	s.holds = s.holds.keep(func(h Hold) bool {
		return !h.Once || h.Status != HoldSold || h.Placed.IsZero() || !h.Placed.Before(horizon)
	})
}

func linesToProto(ls []Line) []*catalogv1.StockLine {
	out := make([]*catalogv1.StockLine, len(ls))
	for i, l := range ls {
		out[i] = &catalogv1.StockLine{SkuId: l.SkuID, Quantity: l.Quantity}
	}
	return out
}

func linesFromProto(ls []*catalogv1.StockLine) []Line {
	out := make([]Line, len(ls))
	for i, l := range ls {
		out[i] = Line{SkuID: l.GetSkuId(), Quantity: l.GetQuantity()}
	}
	return out
}
