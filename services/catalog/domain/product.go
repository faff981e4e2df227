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
	// holds are the orders this product has seen, by order id (HoldFor). An
	// entry is never removed: it is what makes holding for an order
	// idempotent.
	holds holdTable
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
	// Shipped and Returned are the units sold and restocked so far, by
	// SKU, with the shipment and return ids already applied.
	Shipped   map[string]int64
	Returned  map[string]int64
	Shipments []string
	Returns   []string
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

// HoldFor returns the hold for orderID (Status HoldNone if there is none).
// Its maps and slices are shared: read them, do not change them.
func (p Product) HoldFor(orderID string) Hold { return p.holds.get(orderID) }

// HoldCount is the number of orders the product has seen.
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
// caller reads the existing status from the state.
type HoldStock struct {
	OrderID string
	Lines   []Line
}

// ReserveStock reserves an order whose every line is this product's: it
// holds the lines and answers the order in the same decision, StockHeld
// with StockReserved, or StockReservationFailed naming the SKU that is
// short or unknown (and leaving a released hold, so the order is decided
// once). The order's reservation is then one durable step, where an order
// across products takes a reservation saga. An order that already has a
// hold here, in any status, decides nothing.
type ReserveStock struct {
	OrderID string
	Lines   []Line
	Now     time.Time
}

// ReleaseStock gives back what is held for an order. With no hold at all
// it records an empty release (a tombstone), so that a hold arriving later
// for that order is refused as already released.
type ReleaseStock struct {
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
	if err := s.shortfall(lines); err != nil {
		return nil, err
	}
	return []proto.Message{&catalogv1.StockHeld{ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(lines)}}, nil
}

func (c ReserveStock) decide(s Product) ([]proto.Message, error) {
	lines, first, err := s.firstHold(c.OrderID, c.Lines)
	if !first {
		return nil, err
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
	wire := linesToProto(lines)
	return []proto.Message{
		&catalogv1.StockHeld{ProductId: s.ID, OrderId: c.OrderID, Lines: wire},
		&catalogv1.StockReserved{OrderId: c.OrderID, Lines: wire, ReserveTime: timestamppb.New(c.Now)},
	}, nil
}

func (c ReserveStock) refusal(sku string, requested, available int64, reason string) *catalogv1.StockReservationFailed {
	return &catalogv1.StockReservationFailed{OrderId: c.OrderID, SkuId: sku, Requested: requested, Available: available,
		Reason: reason, FailTime: timestamppb.New(c.Now)}
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
	switch h.Status {
	case HoldReleased, HoldSold:
		return nil, nil // nothing held any more
	}
	// A held order gives its units back; an unseen one gets a tombstone.
	return []proto.Message{&catalogv1.StockHoldReleased{
		ProductId: s.ID, OrderId: c.OrderID, Lines: linesToProto(h.Lines), Reason: c.Reason,
	}}, nil
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
	case *catalogv1.StockAdjusted:
		s.moveStock(e.GetSkuId(), e.GetDelta(), func(k *SKU, n int64) { k.Available += n })
	case *catalogv1.StockHeld:
		lines := linesFromProto(e.GetLines())
		for _, l := range lines {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Available -= n; k.Reserved += n })
		}
		s.setHold(e.GetOrderId(), Hold{Status: HoldHeld, Lines: lines})
	case *catalogv1.StockHoldReleased:
		lines := linesFromProto(e.GetLines())
		for _, l := range lines {
			s.moveStock(l.SkuID, l.Quantity, func(k *SKU, n int64) { k.Reserved -= n; k.Available += n })
		}
		s.setHold(e.GetOrderId(), Hold{Status: HoldReleased, Lines: lines})
	case *catalogv1.StockReservationFailed:
		// ReserveStock refused the order: nothing was held, and nothing
		// will be.
		s.setHold(e.GetOrderId(), Hold{Status: HoldReleased})
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
