package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Ledger is the state of one order's money (aggregate "orderledger").
type Ledger struct {
	OrderID     string
	Captured    bool
	BuyerID     string
	Total       money.Money
	Parts       []Part
	CaptureTime time.Time
	// Refunds are the refund ids applied: a refund books once.
	Refunds map[string]bool
}

// Part is one vendor's part of the order and where its money is.
type Part struct {
	VendorID string
	Lines    []Line

	Delivered    bool
	FulfilmentID string
	DeliverTime  time.Time
	CloseTime    time.Time
	// Tier used for the window (at delivery), then for the reserve (at release).
	Tier string
	// Claims: claim id -> still open.
	Claims       map[string]bool
	WindowClosed bool

	Released           bool
	ReleaseTime        time.Time
	Reserve            money.Money
	ReserveReleaseTime time.Time
	ReserveReleased    bool

	Cancelled bool
}

// Stage is where the part's money is.
func (p Part) Stage() payoutsv1.FundsStage {
	switch {
	case p.Cancelled:
		return payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED
	case p.Released:
		return payoutsv1.FundsStage_FUNDS_STAGE_RELEASED
	case p.Delivered && len(p.OpenClaims()) > 0:
		return payoutsv1.FundsStage_FUNDS_STAGE_HELD
	case p.Delivered:
		return payoutsv1.FundsStage_FUNDS_STAGE_PENDING
	}
	return payoutsv1.FundsStage_FUNDS_STAGE_ESCROW
}

// OpenClaims are the ids of the claims open on the part, sorted.
func (p Part) OpenClaims() []string {
	var out []string
	for id, open := range p.Claims {
		if open {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Shares is what each party holds of the part now.
func (p Part) Shares(currency string) Shares { return SharesOf(currency, p.Lines) }

// Refunded is what was refunded or returned on the part.
func (p Part) Refunded(currency string) money.Money {
	m := money.Money{Currency: currency}
	for _, l := range p.Lines {
		m.Minor += l.Refunded.Minor
	}
	return m
}

// Part returns the index of vendorID's part, or -1.
func (l Ledger) Part(vendorID string) int {
	return slices.IndexFunc(l.Parts, func(p Part) bool { return p.VendorID == vendorID })
}

// Currency is the order's currency.
func (l Ledger) Currency() string { return l.Total.Currency }

// Refunded is what went back to the buyer so far.
func (l Ledger) Refunded() money.Money {
	m := money.Money{Currency: l.Currency()}
	for _, p := range l.Parts {
		m.Minor += p.Refunded(l.Currency()).Minor
	}
	return m
}

// Clone deep-copies the ledger.
func (l Ledger) Clone() Ledger {
	c := l
	c.Refunds = maps.Clone(l.Refunds)
	c.Parts = make([]Part, len(l.Parts))
	for i, p := range l.Parts {
		p.Lines = slices.Clone(p.Lines)
		p.Claims = maps.Clone(p.Claims)
		c.Parts[i] = p
	}
	if l.Parts == nil {
		c.Parts = nil
	}
	return c
}

// Commands of the ledger. Each carries its Cause (recorded on the
// transaction) and the time it was decided at (the clock is the app's).
//
// Each command type carries its own decision (decide), made on a decision
// that evolves a copy of the ledger as it emits; the compiler checks that
// every command has one.
type Command interface {
	decide(d *decision)
}

// CapturedLine is a line of OrderConfirmed.
type CapturedLine struct {
	LineID, VendorID, CreatorID string
	Total                       money.Money
	CommissionBps               int64
}

// CapturedPart is a vendor part of OrderConfirmed.
type CapturedPart struct {
	VendorID string
	LineIDs  []string
}

// Capture books an order's captured payment into escrow (OrderConfirmed)
// and fixes its split. Its lines name the creator the order attributed
// each to ("" for none) and the rate: the commission booked is what the
// order recorded.
type Capture struct {
	Cause        Cause
	BuyerID      string
	Total        money.Money
	Lines        []CapturedLine
	Parts        []CapturedPart // empty: one part per vendor, in line order
	PSPReference string
	ConfirmTime  time.Time // when the order was confirmed
	FeeBps       int64
	Time         time.Time
}

// Deliver starts a part's return window (FulfilmentDelivered).
type Deliver struct {
	Cause        Cause
	VendorID     string
	FulfilmentID string
	DeliverTime  time.Time // zero: Time
	Tier         string
	// Window is the return window including the tier's extension.
	Window time.Duration
	Time   time.Time
}

// OpenClaim holds a part while the claim is open (ClaimOpened).
type OpenClaim struct {
	Cause    Cause
	ClaimID  string
	VendorID string
	Amount   money.Money
	Time     time.Time
}

// ReleaseTerms are the trust terms of a release, resolved by the app from
// the vendor's tier at that moment.
type ReleaseTerms struct {
	Tier        string
	ReserveBps  int64
	ReserveHold time.Duration
}

// CloseClaim lifts a claim's hold (ClaimClosed); if it was the last open
// claim and the window has closed, the part is released on Release terms.
type CloseClaim struct {
	Cause    Cause
	ClaimID  string
	VendorID string
	Outcome  string
	Release  ReleaseTerms
	Time     time.Time
}

// CloseWindow closes a part's return window (its deadline fired) and
// releases it unless a claim is open.
type CloseWindow struct {
	Cause    Cause
	VendorID string
	Release  ReleaseTerms
	Time     time.Time
}

// ReleaseReserve releases a part's reserve (its deadline fired).
type ReleaseReserve struct {
	Cause    Cause
	VendorID string
	Time     time.Time
}

// LineAmount is an amount on one order line.
type LineAmount struct {
	LineID string
	Amount money.Money
}

// Refund books a refund to the buyer (RefundIssued): out of custody before
// release, clawed back after.
type Refund struct {
	Cause    Cause
	RefundID string
	ClaimID  string
	VendorID string
	Amount   money.Money
	// Lines, if given and consistent (known lines of the part, summing to
	// Amount, none beyond its unrefunded amount), say which lines bear it;
	// otherwise it is allocated over the part's lines in proportion to
	// their unrefunded amounts (largest remainder).
	Lines []LineAmount
	Time  time.Time
}

// Cancel returns the escrow of undelivered parts to the buyer
// (OrderCancelled: every part; FulfilmentCancelled: VendorID's).
type Cancel struct {
	Cause    Cause
	VendorID string // empty: every part
	Reason   string
	Time     time.Time
}

// decision applies its own events as it goes, so a command that does two
// things (lift a hold, then release) decides the second on the first's
// outcome.
type decision struct {
	l   Ledger
	out []proto.Message
	err error
}

func (d *decision) emit(events ...proto.Message) {
	for _, e := range events {
		d.out = append(d.out, e)
		d.l = EvolveLedger(d.l, e)
	}
}

// post emits a transaction unless nothing moves.
func (d *decision) post(b *txnBuilder) {
	t, err := b.build()
	if err != nil && d.err == nil {
		d.err = err
	}
	if t != nil {
		d.out = append(d.out, t)
	}
}

func (d *decision) result() ([]proto.Message, error) {
	if d.err != nil {
		return nil, d.err
	}
	return d.out, nil
}

// DecideLedger returns the events a command produces. A command that finds
// its cause already booked (captured, delivered, claim known, refund id
// applied, window closed, released) decides nothing, so replaying any event
// or deadline changes nothing whatever its command id.
func DecideLedger(l Ledger, c Command) ([]proto.Message, error) {
	if _, capture := c.(Capture); !capture && !l.Captured {
		if _, ok := c.(Cancel); ok {
			return nil, nil // cancelled before confirmation: nothing was captured
		}
		return nil, ErrNotCaptured
	}
	d := &decision{l: l.Clone()}
	c.decide(d)
	return d.result()
}

func (c Capture) decide(d *decision) {
	if d.l.Captured {
		return
	}
	parts, err := splitOrder(d.l.OrderID, c)
	if err != nil {
		d.err = err
		return
	}
	cur := c.Total.Currency
	ev := &payoutsv1.FundsEscrowed{
		OrderId: d.l.OrderID, BuyerId: c.BuyerID, Total: c.Total.ToProto(), Parts: parts,
		PspReference: c.PSPReference, EscrowTime: timestamppb.New(c.Time),
	}
	if !c.ConfirmTime.IsZero() {
		ev.CaptureTime = timestamppb.New(c.ConfirmTime)
	}
	b := newTxn(payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE, TransactionID(payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE, d.l.OrderID),
		d.l.OrderID, "", c.Cause, c.PSPReference, c.Time, "payment %s of order %s captured into escrow", c.Total, d.l.OrderID)
	b.add(BuyerPayments, cur, -c.Total.Minor)
	for _, p := range parts {
		b.add(VendorAccount(p.GetVendorId(), Escrow), cur, p.GetSubtotal().GetAmountMinor())
	}
	d.emit(ev)
	d.post(b)
}

// splitOrder validates an OrderConfirmed and fixes its split.
//
// The total is at most money.MaxAmount (the largest order total the order
// service accepts) and is the checked sum of the lines, so every amount
// this order's ledger computes later — the parts' subtotals and shares,
// refunds, what is left — is at most the total and cannot overflow; an
// order from before the bound, above it, is refused (the reaction parks
// it) rather than booked.
func splitOrder(orderID string, c Capture) ([]*payoutsv1.PartSplit, error) {
	var v Violations
	cur := c.Total.Currency
	if err := money.ValidateCurrency(cur); err != nil {
		v.Add("total.currency_code", "%v", err)
	} else if c.Total.Minor < 0 || c.Total.Minor > money.MaxAmount {
		v.Add("total.amount_minor", "must be 0..%d minor units (the largest order total), got %d", int64(money.MaxAmount), c.Total.Minor)
	}
	if c.FeeBps < 0 || c.FeeBps > money.BasisPointsPerUnit {
		v.Add("fee_bps", "must be 0..10000, got %d", c.FeeBps)
	}
	if len(c.Lines) == 0 {
		v.Add("lines", "an order has at least one line")
	}
	lines := map[string]CapturedLine{}
	var sum int64
	for i, l := range c.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		switch {
		case l.LineID == "":
			v.Add(f+".line_id", "required")
		case lines[l.LineID].LineID != "":
			v.Add(f+".line_id", "line %q appears twice", l.LineID)
		}
		if !idPattern.MatchString(l.VendorID) {
			v.Add(f+".vendor_id", "want 1-128 letters, digits, '.', '_' or '-', got %q", l.VendorID)
		}
		if l.CreatorID != "" && !idPattern.MatchString(l.CreatorID) {
			v.Add(f+".creator_id", "want 1-128 letters, digits, '.', '_' or '-', got %q", l.CreatorID)
		}
		if l.Total.Currency != cur || l.Total.Minor < 0 {
			v.Add(f+".line_total", "want a non-negative amount in %s, got %s", cur, l.Total)
		}
		if l.CommissionBps < 0 || l.CommissionBps > money.BasisPointsPerUnit {
			v.Add(f+".commission_bps", "must be 0..10000, got %d", l.CommissionBps)
		}
		lines[l.LineID] = l
		var ok bool
		if sum, ok = money.AddMinor(sum, l.Total.Minor); !ok {
			v.Add(f+".line_total", "the lines add up to more than int64 minor units")
		}
	}
	if len(v) == 0 && sum != c.Total.Minor {
		v.Add("total", "the lines add up to %s, not %s", money.Money{Currency: cur, Minor: sum}, c.Total)
	}
	parts := c.Parts
	if len(parts) == 0 { // one part per vendor, in line order
		for _, l := range c.Lines {
			i := slices.IndexFunc(parts, func(p CapturedPart) bool { return p.VendorID == l.VendorID })
			if i < 0 {
				parts = append(parts, CapturedPart{VendorID: l.VendorID})
				i = len(parts) - 1
			}
			parts[i].LineIDs = append(parts[i].LineIDs, l.LineID)
		}
	}
	seenVendor, seenLine := map[string]bool{}, map[string]bool{}
	for i, p := range parts {
		f := fmt.Sprintf("parts[%d]", i)
		if seenVendor[p.VendorID] {
			v.Add(f+".vendor_id", "vendor %q has two parts", p.VendorID)
		}
		seenVendor[p.VendorID] = true
		for j, id := range p.LineIDs {
			l, ok := lines[id]
			switch {
			case !ok:
				v.Add(fmt.Sprintf("%s.line_ids[%d]", f, j), "no line %q", id)
			case l.VendorID != p.VendorID:
				v.Add(fmt.Sprintf("%s.line_ids[%d]", f, j), "line %q is vendor %s's", id, l.VendorID)
			case seenLine[id]:
				v.Add(fmt.Sprintf("%s.line_ids[%d]", f, j), "line %q is in two parts", id)
			}
			seenLine[id] = true
		}
	}
	for i, l := range c.Lines {
		if l.LineID != "" && !seenLine[l.LineID] {
			v.Add(fmt.Sprintf("lines[%d]", i), "line %q is in no part", l.LineID)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}

	// Commission is due on exactly the lines the order recorded a creator
	// on: the order service decided attribution (its window, its clock),
	// and a second window here could only disagree with it.
	out := make([]*payoutsv1.PartSplit, 0, len(parts))
	for _, p := range parts {
		ps := &payoutsv1.PartSplit{VendorId: p.VendorID}
		var sub, comm, fee, vend int64
		for _, id := range p.LineIDs {
			cl := lines[id]
			l := Line{ID: id, CreatorID: cl.CreatorID, Total: cl.Total, CommissionBps: cl.CommissionBps}
			if l.CreatorID == "" {
				l.CommissionBps = 0
			}
			l.FeeBps = min(c.FeeBps, money.BasisPointsPerUnit-l.CommissionBps) // the fee yields: the vendor's share is never negative
			s := l.Original()
			ps.Lines = append(ps.Lines, &payoutsv1.LineSplit{
				LineId: id, CreatorId: l.CreatorID, LineTotal: l.Total.ToProto(),
				CommissionBps: int32(l.CommissionBps), Commission: s.Commission.ToProto(),
				FeeBps: int32(l.FeeBps), Fee: s.Fee.ToProto(), VendorShare: s.Vendor.ToProto(),
			})
			sub += l.Total.Minor
			comm += s.Commission.Minor
			fee += s.Fee.Minor
			vend += s.Vendor.Minor
		}
		ps.Subtotal = money.Money{Currency: cur, Minor: sub}.ToProto()
		ps.Commission = money.Money{Currency: cur, Minor: comm}.ToProto()
		ps.Fee = money.Money{Currency: cur, Minor: fee}.ToProto()
		ps.VendorShare = money.Money{Currency: cur, Minor: vend}.ToProto()
		out = append(out, ps)
	}
	return out, nil
}

// part finds vendorID's part (its index and a copy), or records an
// *UnknownPartError (and returns a zero Part: a command checks ok first).
func (d *decision) part(vendorID string) (int, Part, bool) {
	i := d.l.Part(vendorID)
	if i < 0 {
		d.err = &UnknownPartError{OrderID: d.l.OrderID, VendorID: vendorID}
		return -1, Part{}, false
	}
	return i, d.l.Parts[i], true
}

func (c Deliver) decide(d *decision) {
	_, p, ok := d.part(c.VendorID)
	if !ok || p.Delivered || p.Cancelled {
		return
	}
	at := c.DeliverTime
	if at.IsZero() {
		at = c.Time
	}
	held := len(p.OpenClaims()) > 0
	d.emit(&payoutsv1.ReturnWindowStarted{
		OrderId: d.l.OrderID, VendorId: c.VendorID, FulfilmentId: c.FulfilmentID, DeliverTime: timestamppb.New(at),
		CloseTime: timestamppb.New(at.Add(c.Window)), Tier: c.Tier, Held: held,
	})
	cur := d.l.Currency()
	sh := p.Shares(cur)
	dest := Pending
	if held {
		dest = Held
	}
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, c.VendorID), d.l.OrderID, c.VendorID, c.Cause, c.FulfilmentID, c.Time,
		"vendor %s's part delivered: split into pending shares until the return window closes at %s", c.VendorID, at.Add(c.Window).UTC().Format(time.RFC3339))
	b.add(VendorAccount(c.VendorID, Escrow), cur, -sh.Gross)
	b.add(VendorAccount(c.VendorID, dest), cur, sh.Vendor)
	for _, cr := range sh.Creators() {
		b.add(CreatorAccount(cr, Pending), cur, sh.Commissions[cr])
	}
	b.add(PlatformPending, cur, sh.Fee)
	d.post(b)
}

func (c OpenClaim) decide(d *decision) {
	_, p, ok := d.part(c.VendorID)
	if _, known := p.Claims[c.ClaimID]; !ok || known || p.Released || p.Cancelled {
		return // a claim after release holds nothing: a refund will claw back
	}
	cur := d.l.Currency()
	moved := int64(0)
	if p.Delivered && len(p.OpenClaims()) == 0 {
		moved = p.Shares(cur).Vendor
	}
	amount := c.Amount
	if amount.Currency == "" {
		amount.Currency = cur
	}
	d.emit(&payoutsv1.ClaimHoldPlaced{
		OrderId: d.l.OrderID, VendorId: c.VendorID, ClaimId: c.ClaimID, ClaimedAmount: amount.ToProto(),
		HeldAmount: money.Money{Currency: cur, Minor: moved}.ToProto(), HoldTime: timestamppb.New(c.Time),
	})
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_HOLD
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, c.VendorID, c.ClaimID), d.l.OrderID, c.VendorID, c.Cause, c.ClaimID, c.Time,
		"claim %s opened on vendor %s's part: its share is held", c.ClaimID, c.VendorID)
	b.add(VendorAccount(c.VendorID, Pending), cur, -moved)
	b.add(VendorAccount(c.VendorID, Held), cur, moved)
	d.post(b)
}

func (c CloseClaim) decide(d *decision) {
	i, p, ok := d.part(c.VendorID)
	open, known := p.Claims[c.ClaimID]
	if !ok || (known && !open) || p.Released || p.Cancelled {
		return
	}
	// An unknown claim is recorded closed, so that its ClaimOpened, if it
	// comes late, holds nothing.
	cur := d.l.Currency()
	moved := int64(0)
	if open && p.Delivered && len(p.OpenClaims()) == 1 {
		moved = p.Shares(cur).Vendor
	}
	d.emit(&payoutsv1.ClaimHoldLifted{
		OrderId: d.l.OrderID, VendorId: c.VendorID, ClaimId: c.ClaimID, Outcome: c.Outcome,
		Amount: money.Money{Currency: cur, Minor: moved}.ToProto(), LiftTime: timestamppb.New(c.Time),
	})
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_UNHOLD
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, c.VendorID, c.ClaimID), d.l.OrderID, c.VendorID, c.Cause, c.ClaimID, c.Time,
		"claim %s on vendor %s's part closed (%s): its share is no longer held", c.ClaimID, c.VendorID, c.Outcome)
	b.add(VendorAccount(c.VendorID, Held), cur, -moved)
	b.add(VendorAccount(c.VendorID, Pending), cur, moved)
	d.post(b)
	if p = d.l.Parts[i]; p.WindowClosed && len(p.OpenClaims()) == 0 {
		d.release(i, c.Release, c.Cause, c.Time)
	}
}

func (c CloseWindow) decide(d *decision) {
	i, p, ok := d.part(c.VendorID)
	if !ok || !p.Delivered || p.WindowClosed || p.Released || p.Cancelled {
		return
	}
	if c.Time.Before(p.CloseTime) {
		d.err = fmt.Errorf("%w: the return window of order %s, vendor %s closes at %s", ErrTooEarly, d.l.OrderID, c.VendorID, p.CloseTime)
		return
	}
	open := p.OpenClaims()
	d.emit(&payoutsv1.ReturnWindowClosed{OrderId: d.l.OrderID, VendorId: c.VendorID, CloseTime: timestamppb.New(p.CloseTime), OpenClaimIds: open})
	if len(open) == 0 {
		d.release(i, c.Release, c.Cause, c.Time)
	}
}

// release pays a part's pending shares out to available, reserve and fees.
func (d *decision) release(i int, t ReleaseTerms, cause Cause, at time.Time) {
	p := d.l.Parts[i]
	cur := d.l.Currency()
	sh := p.Shares(cur)
	net, reserve := ReserveOf(money.Money{Currency: cur, Minor: sh.Vendor}, t.ReserveBps)
	ev := &payoutsv1.FundsReleased{
		OrderId: d.l.OrderID, VendorId: p.VendorID, VendorNet: net.ToProto(), Reserve: reserve.ToProto(),
		ReserveBps: int32(t.ReserveBps), Tier: t.Tier, PlatformFee: money.Money{Currency: cur, Minor: sh.Fee}.ToProto(),
		ReleaseTime: timestamppb.New(at),
	}
	for _, cr := range sh.Creators() {
		ev.Commissions = append(ev.Commissions, &payoutsv1.CreatorAmount{CreatorId: cr, Amount: money.Money{Currency: cur, Minor: sh.Commissions[cr]}.ToProto()})
	}
	if reserve.Minor > 0 {
		ev.ReserveReleaseTime = timestamppb.New(at.Add(t.ReserveHold))
	}
	d.emit(ev)
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, p.VendorID), d.l.OrderID, p.VendorID, cause, p.FulfilmentID, at,
		"return window of vendor %s's part closed with no open claim: released (tier %s, reserve %d bps)", p.VendorID, t.Tier, t.ReserveBps)
	b.add(VendorAccount(p.VendorID, Pending), cur, -sh.Vendor)
	b.add(VendorAccount(p.VendorID, Available), cur, net.Minor)
	b.add(VendorAccount(p.VendorID, Reserve), cur, reserve.Minor)
	for _, cr := range sh.Creators() {
		b.add(CreatorAccount(cr, Pending), cur, -sh.Commissions[cr])
		b.add(CreatorAccount(cr, Available), cur, sh.Commissions[cr])
	}
	b.add(PlatformPending, cur, -sh.Fee)
	b.add(PlatformFees, cur, sh.Fee)
	d.post(b)
}

func (c ReleaseReserve) decide(d *decision) {
	_, p, ok := d.part(c.VendorID)
	if !ok || !p.Released || p.ReserveReleased || p.Reserve.Minor == 0 {
		return
	}
	if c.Time.Before(p.ReserveReleaseTime) {
		d.err = fmt.Errorf("%w: the reserve of order %s, vendor %s is held until %s", ErrTooEarly, d.l.OrderID, c.VendorID, p.ReserveReleaseTime)
		return
	}
	d.emit(&payoutsv1.ReserveReleased{OrderId: d.l.OrderID, VendorId: c.VendorID, Amount: p.Reserve.ToProto(), ReleaseTime: timestamppb.New(c.Time)})
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_RESERVE_RELEASE
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, c.VendorID), d.l.OrderID, c.VendorID, c.Cause, p.FulfilmentID, c.Time,
		"reserve of vendor %s's part released after the hold", c.VendorID)
	b.add(VendorAccount(c.VendorID, Reserve), p.Reserve.Currency, -p.Reserve.Minor)
	b.add(VendorAccount(c.VendorID, Available), p.Reserve.Currency, p.Reserve.Minor)
	d.post(b)
}

func (c Refund) decide(d *decision) {
	cur := d.l.Currency()
	var v Violations
	if c.RefundID == "" {
		v.Add("refund_id", "required")
	}
	if c.Amount.Currency != cur || c.Amount.Minor <= 0 {
		v.Add("amount", "want a positive amount in %s, got %s", cur, c.Amount)
	}
	if d.err = v.Err(); d.err != nil {
		return
	}
	_, p, ok := d.part(c.VendorID)
	if !ok || d.l.Refunds[c.RefundID] {
		return
	}
	stage := p.Stage()
	rv := reverseLines(p, cur, allocateRefund(p, c.Amount, c.Lines))
	d.emit(&payoutsv1.RefundApplied{
		RefundId: c.RefundID, OrderId: d.l.OrderID, VendorId: c.VendorID, ClaimId: c.ClaimID, Stage: stage,
		Requested: c.Amount.ToProto(), RefundTime: timestamppb.New(c.Time), Lines: rv.lines,
		Amount:    money.Money{Currency: cur, Minor: rv.applied}.ToProto(),
		Uncovered: money.Money{Currency: cur, Minor: c.Amount.Minor - rv.applied}.ToProto(),
	})
	kind, memo := payoutsv1.TransactionKind_TRANSACTION_KIND_REFUND, "refund %s to the buyer, before release, out of %s"
	if stage == payoutsv1.FundsStage_FUNDS_STAGE_RELEASED {
		kind, memo = payoutsv1.TransactionKind_TRANSACTION_KIND_CLAWBACK, "refund %s to the buyer after release: clawed back from %s"
	}
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, c.RefundID), d.l.OrderID, c.VendorID, c.Cause, c.RefundID, c.Time,
		memo, c.RefundID, stageWords[stage])
	rv.post(b, c.VendorID, cur, stage)
	d.post(b)
}

// reversal is what returning given amounts of a part's lines to the buyer
// takes from each party: per line, the split of the line's unrefunded
// amount before minus the split after (so it adds up exactly, and a line
// returned in full in any number of steps reverses exactly its split).
// Refunds and line cancellations both book through it.
type reversal struct {
	lines                []*payoutsv1.LineRefund
	applied, vendor, fee int64
	comm                 map[string]int64
}

// reverseLines reverses per[i] of each line i of p (never more than the
// line has unrefunded: the callers allocate within it).
func reverseLines(p Part, cur string, per []int64) reversal {
	rv := reversal{comm: map[string]int64{}}
	for li, r := range per {
		if r == 0 {
			continue
		}
		l := p.Lines[li]
		before := l.Current()
		l.Refunded.Minor += r
		after := l.Current()
		lr := &payoutsv1.LineRefund{
			LineId: l.ID, CreatorId: l.CreatorID, Amount: money.Money{Currency: cur, Minor: r}.ToProto(),
			Commission:  money.Money{Currency: cur, Minor: before.Commission.Minor - after.Commission.Minor}.ToProto(),
			Fee:         money.Money{Currency: cur, Minor: before.Fee.Minor - after.Fee.Minor}.ToProto(),
			VendorShare: money.Money{Currency: cur, Minor: before.Vendor.Minor - after.Vendor.Minor}.ToProto(),
		}
		rv.lines = append(rv.lines, lr)
		rv.applied += r
		rv.vendor += lr.GetVendorShare().GetAmountMinor()
		rv.fee += lr.GetFee().GetAmountMinor()
		if l.CreatorID != "" {
			rv.comm[l.CreatorID] += lr.GetCommission().GetAmountMinor()
		}
	}
	return rv
}

// post adds the reversal's postings to b: the buyer gets what was
// applied, taken from where the part's money is at stage.
func (rv reversal) post(b *txnBuilder, vendorID, cur string, stage payoutsv1.FundsStage) {
	b.add(BuyerRefunds, cur, rv.applied)
	creators := slices.Sorted(maps.Keys(rv.comm))
	switch stage {
	case payoutsv1.FundsStage_FUNDS_STAGE_ESCROW:
		b.add(VendorAccount(vendorID, Escrow), cur, -rv.applied)
	case payoutsv1.FundsStage_FUNDS_STAGE_PENDING, payoutsv1.FundsStage_FUNDS_STAGE_HELD:
		src := Pending
		if stage == payoutsv1.FundsStage_FUNDS_STAGE_HELD {
			src = Held
		}
		b.add(VendorAccount(vendorID, src), cur, -rv.vendor)
		for _, cr := range creators {
			b.add(CreatorAccount(cr, Pending), cur, -rv.comm[cr])
		}
		b.add(PlatformPending, cur, -rv.fee)
	case payoutsv1.FundsStage_FUNDS_STAGE_RELEASED:
		b.add(VendorAccount(vendorID, Available), cur, -rv.vendor)
		for _, cr := range creators {
			b.add(CreatorAccount(cr, Available), cur, -rv.comm[cr])
		}
		b.add(PlatformFees, cur, -rv.fee)
	}
}

var stageWords = map[payoutsv1.FundsStage]string{
	payoutsv1.FundsStage_FUNDS_STAGE_ESCROW:    "escrow",
	payoutsv1.FundsStage_FUNDS_STAGE_PENDING:   "the pending shares",
	payoutsv1.FundsStage_FUNDS_STAGE_HELD:      "the held and pending shares",
	payoutsv1.FundsStage_FUNDS_STAGE_RELEASED:  "the available balances and fees",
	payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED: "nothing (the part was cancelled)",
}

// allocateRefund says how much each line of p bears of amount: the given
// lines if consistent, else in proportion to the lines' unrefunded amounts
// (largest remainder). Never more than a line has unrefunded, so never more
// in total than the part has.
func allocateRefund(p Part, amount money.Money, given []LineAmount) []int64 {
	per := make([]int64, len(p.Lines))
	var left int64
	weights := make([]int64, len(p.Lines))
	for i, l := range p.Lines {
		if !p.Cancelled {
			weights[i] = l.Unrefunded().Minor
		}
		left += weights[i]
	}
	if ok := len(given) > 0; ok {
		var sum int64
		for _, g := range given {
			i := slices.IndexFunc(p.Lines, func(l Line) bool { return l.ID == g.LineID })
			// Compared as what the line has left, so that a huge amount
			// cannot wrap past the check; what is taken then never
			// exceeds the weights, so neither sum overflows.
			if i < 0 || g.Amount.Currency != amount.Currency || g.Amount.Minor <= 0 || g.Amount.Minor > weights[i]-per[i] {
				ok = false
				break
			}
			per[i] += g.Amount.Minor
			sum += g.Amount.Minor
		}
		if ok && sum == amount.Minor {
			return per
		}
		clear(per)
	}
	total := min(amount.Minor, left)
	if total <= 0 {
		return per
	}
	parts, err := money.Allocate(money.Money{Currency: amount.Currency, Minor: total}, weights)
	if err != nil { // cannot happen: left > 0 means a positive weight
		return per
	}
	for i, m := range parts {
		per[i] = m.Minor
	}
	return per
}

func (c Cancel) decide(d *decision) {
	for i, p := range d.l.Parts {
		if c.VendorID == "" || p.VendorID == c.VendorID {
			d.returnEscrow(i, c.Cause, c.Reason, c.Time)
		}
	}
	if c.VendorID != "" && d.l.Part(c.VendorID) < 0 {
		d.err = &UnknownPartError{OrderID: d.l.OrderID, VendorID: c.VendorID}
	}
}

// returnEscrow settles part i as cancelled, if it is neither delivered nor
// cancelled: what is left of its escrow goes back to the buyer
// (EscrowReturned, even of nothing: the part is never released).
func (d *decision) returnEscrow(i int, cause Cause, reason string, at time.Time) {
	p := d.l.Parts[i]
	if p.Delivered || p.Cancelled {
		return
	}
	cur := d.l.Currency()
	amount := p.Shares(cur).Gross
	d.emit(&payoutsv1.EscrowReturned{OrderId: d.l.OrderID, VendorId: p.VendorID,
		Amount: money.Money{Currency: cur, Minor: amount}.ToProto(), Reason: reason, ReturnTime: timestamppb.New(at)})
	kind := payoutsv1.TransactionKind_TRANSACTION_KIND_CANCELLATION
	b := newTxn(kind, TransactionID(kind, d.l.OrderID, p.VendorID), d.l.OrderID, p.VendorID, cause, "", at,
		"vendor %s's part cancelled before delivery (%s): escrow back to the buyer", p.VendorID, reason)
	b.add(VendorAccount(p.VendorID, Escrow), cur, -amount)
	b.add(BuyerRefunds, cur, amount)
	d.post(b)
}

// CancelledLine is units of one line cancelled before they shipped: their
// price.
type CancelledLine struct {
	LineID   string
	VendorID string
	Amount   money.Money
}

// CancelLines returns cancelled units of unshipped lines to the buyer
// (OrderLinesCancelled): per vendor part, a RefundApplied whose lines are
// exactly the cancelled amounts, reversing those amounts' split as a
// refund does (so the commission and fee follow the lines that remain);
// then every part in ClosedVendorIDs (no unit left) is settled as
// cancelled, never released.
type CancelLines struct {
	Cause Cause
	// CancellationID names the cancellation (the order's refunded total
	// after it, which no other cancellation of the order shares; else the
	// event id): it books once.
	CancellationID  string
	Lines           []CancelledLine
	ClosedVendorIDs []string
	Reason          string
	Time            time.Time
}

// LinesCancelledRefundID is the refund id RefundApplied carries for a
// line cancellation: it cannot be one of trust's (which start with the
// order id).
func LinesCancelledRefundID(cancellationID string) string { return "lines-cancelled/" + cancellationID }

func (c CancelLines) decide(d *decision) {
	cur := d.l.Currency()
	refundID := LinesCancelledRefundID(c.CancellationID)
	var v Violations
	if c.CancellationID == "" {
		v.Add("cancellation_id", "required")
	}
	if len(c.Lines) == 0 {
		v.Add("lines", "a cancellation names at least one line")
	}
	var vendors []int // parts with lines cancelled
	for i, cl := range c.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		pi := d.l.Part(cl.VendorID)
		if pi < 0 || !slices.ContainsFunc(d.l.Parts[pi].Lines, func(l Line) bool { return l.ID == cl.LineID }) {
			v.Add(f+".line_id", "order %s has no line %q of vendor %q", d.l.OrderID, cl.LineID, cl.VendorID)
			continue
		}
		if cl.Amount.Currency != cur || cl.Amount.Minor <= 0 || cl.Amount.Minor > money.MaxAmount {
			v.Add(f+".amount", "want a positive amount in %s, got %s", cur, cl.Amount)
		}
		if !slices.Contains(vendors, pi) {
			vendors = append(vendors, pi)
		}
	}
	for i, id := range c.ClosedVendorIDs {
		if d.l.Part(id) < 0 {
			v.Add(fmt.Sprintf("closed_vendor_ids[%d]", i), "order %s has no part of vendor %q", d.l.OrderID, id)
		}
	}
	if d.err = v.Err(); d.err != nil || d.l.Refunds[refundID] {
		return
	}
	slices.Sort(vendors) // the order's part order
	for _, pi := range vendors {
		p := d.l.Parts[pi]
		stage := p.Stage()
		// Each line bears exactly what was cancelled of it, never more
		// than it has left: units already returned (a cancellation of the
		// part booked first) are not returned twice.
		per := make([]int64, len(p.Lines))
		var requested int64
		for _, cl := range c.Lines {
			if cl.VendorID != p.VendorID {
				continue
			}
			li := slices.IndexFunc(p.Lines, func(l Line) bool { return l.ID == cl.LineID })
			requested += cl.Amount.Minor
			if !p.Cancelled {
				per[li] = min(per[li]+cl.Amount.Minor, p.Lines[li].Unrefunded().Minor)
			}
		}
		rv := reverseLines(p, cur, per)
		d.emit(&payoutsv1.RefundApplied{
			RefundId: refundID, OrderId: d.l.OrderID, VendorId: p.VendorID, Stage: stage,
			Requested: money.Money{Currency: cur, Minor: requested}.ToProto(), RefundTime: timestamppb.New(c.Time), Lines: rv.lines,
			Amount:    money.Money{Currency: cur, Minor: rv.applied}.ToProto(),
			Uncovered: money.Money{Currency: cur, Minor: requested - rv.applied}.ToProto(),
		})
		kind := payoutsv1.TransactionKind_TRANSACTION_KIND_CANCELLATION
		b := newTxn(kind, TransactionID(kind, d.l.OrderID, p.VendorID, refundID), d.l.OrderID, p.VendorID, c.Cause, refundID, c.Time,
			"units of vendor %s's lines cancelled before shipping (%s): back to the buyer out of %s", p.VendorID, c.Reason, stageWords[stage])
		rv.post(b, p.VendorID, cur, stage)
		d.post(b)
	}
	for _, id := range c.ClosedVendorIDs {
		d.returnEscrow(d.l.Part(id), c.Cause, c.Reason, c.Time)
	}
}

// EvolveLedger applies one event. Unknown events (and TransactionPosted,
// which only the balance projection folds) leave the ledger unchanged.
func EvolveLedger(l Ledger, e proto.Message) Ledger {
	part := func(vendorID string) *Part {
		if i := l.Part(vendorID); i >= 0 {
			return &l.Parts[i]
		}
		return &Part{} // unreachable for events this aggregate decided
	}
	switch e := e.(type) {
	case *payoutsv1.FundsEscrowed:
		l.Captured = true
		l.BuyerID = e.GetBuyerId()
		l.Total = moneyOf(e.GetTotal())
		l.CaptureTime = e.GetCaptureTime().AsTime()
		l.Parts = nil
		for _, ps := range e.GetParts() {
			p := Part{VendorID: ps.GetVendorId()}
			for _, ls := range ps.GetLines() {
				p.Lines = append(p.Lines, Line{ID: ls.GetLineId(), CreatorID: ls.GetCreatorId(), Total: moneyOf(ls.GetLineTotal()),
					CommissionBps: int64(ls.GetCommissionBps()), FeeBps: int64(ls.GetFeeBps()),
					Refunded: money.Money{Currency: l.Total.Currency}})
			}
			l.Parts = append(l.Parts, p)
		}
	case *payoutsv1.ReturnWindowStarted:
		p := part(e.GetVendorId())
		p.Delivered, p.FulfilmentID, p.Tier = true, e.GetFulfilmentId(), e.GetTier()
		p.DeliverTime, p.CloseTime = e.GetDeliverTime().AsTime(), e.GetCloseTime().AsTime()
	case *payoutsv1.ClaimHoldPlaced:
		p := part(e.GetVendorId())
		if p.Claims == nil {
			p.Claims = map[string]bool{}
		}
		p.Claims[e.GetClaimId()] = true
	case *payoutsv1.ClaimHoldLifted:
		p := part(e.GetVendorId())
		if p.Claims == nil {
			p.Claims = map[string]bool{}
		}
		p.Claims[e.GetClaimId()] = false
	case *payoutsv1.ReturnWindowClosed:
		part(e.GetVendorId()).WindowClosed = true
	case *payoutsv1.FundsReleased:
		p := part(e.GetVendorId())
		p.Released, p.ReleaseTime, p.Reserve, p.Tier = true, e.GetReleaseTime().AsTime(), moneyOf(e.GetReserve()), e.GetTier()
		if e.GetReserveReleaseTime() != nil {
			p.ReserveReleaseTime = e.GetReserveReleaseTime().AsTime()
		}
	case *payoutsv1.ReserveReleased:
		part(e.GetVendorId()).ReserveReleased = true
	case *payoutsv1.RefundApplied:
		if l.Refunds == nil {
			l.Refunds = map[string]bool{}
		}
		l.Refunds[e.GetRefundId()] = true
		p := part(e.GetVendorId())
		for _, lr := range e.GetLines() {
			if i := slices.IndexFunc(p.Lines, func(x Line) bool { return x.ID == lr.GetLineId() }); i >= 0 {
				p.Lines[i].Refunded.Minor += lr.GetAmount().GetAmountMinor()
			}
		}
	case *payoutsv1.EscrowReturned:
		p := part(e.GetVendorId())
		p.Cancelled = true
		for i := range p.Lines {
			p.Lines[i].Refunded = p.Lines[i].Total
		}
	}
	return l
}

// moneyOf reads stored money without validating it again: Evolve must be
// total, and what was stored was valid when decided.
func moneyOf(m *typev1.Money) money.Money {
	return money.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}

// LedgerAggregate is the aggregate type's name: streams "orderledger-<order_id>".
const LedgerAggregate = "orderledger"

// LedgerDecider is the order-ledger aggregate.
var LedgerDecider = es.Decider[Ledger, Command]{
	Aggregate: LedgerAggregate,
	Initial:   func(id string) Ledger { return Ledger{OrderID: id} },
	Decide:    DecideLedger,
	Evolve:    EvolveLedger,
	Clone:     Ledger.Clone,
}
