package domain

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// MaxClaimLines bounds the lines of one claim.
const MaxClaimLines = 100

// Command is a command to the claims aggregate of one order. Each command
// type carries its own decision (decide), so the compiler checks that every
// one has one.
type Command interface {
	decide(cs Case) ([]proto.Message, error)
}

// LineRequest is a quantity of one order line to claim for.
type LineRequest struct {
	LineID   string
	Quantity int64
}

// OpenClaim opens a claim. Record is the custody record of the vendor's
// part the lines belong to (the app picks it by the first line's vendor);
// the decision is taken from it alone.
type OpenClaim struct {
	ClaimID  string
	Reason   trustv1.ClaimReason
	Lines    []LineRequest
	Evidence *trustv1.Evidence
	Record   Record
	Policy   Policy
	Now      time.Time
}

// Response is a vendor's answer to a claim.
type Response int

// Responses.
const (
	ResponseNone Response = iota
	ResponseAccept
	ResponseOffer
	ResponseReturn
	ResponseContest
)

func (r Response) String() string {
	return [...]string{"", "accept_refund", "offer_partial_refund", "request_return", "contest"}[r]
}

// Respond is the vendor's response.
type Respond struct {
	ClaimID  string
	Response Response
	// Offer is the partial refund offered (ResponseOffer).
	Offer    money.Money
	Evidence *trustv1.Evidence
	Policy   Policy
	Now      time.Time
}

// AnswerOffer is the buyer's answer to a partial offer.
type AnswerOffer struct {
	ClaimID string
	Accept  bool
	// By is who answered: "buyer:b1", "service:…".
	By  string
	Now time.Time
}

// Decision is support's decision on a claim.
type Decision int

// Decisions.
const (
	DecisionNone Decision = iota
	DecisionRefundFull
	DecisionRefundPartial
	DecisionReturnThenRefund
	DecisionReject
)

func (d Decision) String() string {
	return [...]string{"", "refund_full", "refund_partial", "return_then_refund", "reject"}[d]
}

// Resolve is support's decision.
type Resolve struct {
	ClaimID  string
	Decision Decision
	// Amount is the refund for DecisionRefundPartial.
	Amount               money.Money
	Rationale            string
	CounterfeitConfirmed bool
	// By is who decided: "support:<subject>".
	By     string
	Policy Policy
	Now    time.Time
}

// Withdraw is the buyer withdrawing a claim.
type Withdraw struct {
	ClaimID string
	Reason  string
	Now     time.Time
}

// RecordReturnShipment records the buyer's return parcel.
type RecordReturnShipment struct {
	ClaimID        string
	Carrier        string
	TrackingNumber string
	Policy         Policy
	Now            time.Time
}

// ReceiveReturn records the returned parcel's condition.
type ReceiveReturn struct {
	ClaimID   string
	Condition trustv1.ReturnCondition
	Note      string
	Policy    Policy
	Now       time.Time
}

// Expire is a claim's deadline passing: State and DueAt name the deadline
// (a deadline that moved or whose step is over decides nothing).
type Expire struct {
	ClaimID string
	State   State
	DueAt   time.Time
	Now     time.Time
}

// Decide returns the events a command produces on an order's claims.
// It never changes cs.
func Decide(cs Case, c Command) ([]proto.Message, error) { return c.decide(cs) }

// builder collects a command's events and evolves a scratch copy of the
// case with each, so later events see the earlier ones (a refund after a
// decision, a closing after a refund).
type builder struct {
	cs  Case
	evs []proto.Message
}

func newBuilder(cs Case) *builder { return &builder{cs: cs.Clone()} }

func (b *builder) add(evs ...proto.Message) {
	for _, e := range evs {
		b.evs = append(b.evs, e)
		b.cs = EvolveCase(b.cs, e)
	}
}

// reasonKnown reports whether r is a reason a buyer may claim for.
func reasonKnown(r trustv1.ClaimReason) bool {
	return r >= trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED && r <= trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND
}

// needsEvidence: claims about the item itself come with a photo or a serial.
func needsEvidence(r trustv1.ClaimReason) bool {
	return r != trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED && r != trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND
}

func (c OpenClaim) decide(cs Case) ([]proto.Message, error) {
	if cs.Claim(c.ClaimID) != nil {
		return nil, nil // the same request again: its claim stands
	}
	o := c.Record.Order
	if o.OrderID == "" || o.OrderID != cs.OrderID || o.ConfirmedEventID == "" {
		return nil, &NotFoundError{Resource: "order", ID: cs.OrderID}
	}
	var v Violations
	if !reasonKnown(c.Reason) {
		v.Add("reason", "required: one of NOT_RECEIVED, DAMAGED, NOT_AS_DESCRIBED, COUNTERFEIT, WRONG_ITEM, CHANGED_MIND")
	}
	if len(c.Lines) == 0 || len(c.Lines) > MaxClaimLines {
		v.Add("lines", "a claim names 1..%d lines, got %d", MaxClaimLines, len(c.Lines))
	}
	vendor := ""
	seen := map[string]bool{}
	for i, l := range c.Lines {
		ol, ok := o.Line(l.LineID)
		switch {
		case !ok:
			v.Add(fmt.Sprintf("lines[%d].line_id", i), "order %s has no line %q", o.OrderID, l.LineID)
			continue
		case seen[l.LineID]:
			v.Add(fmt.Sprintf("lines[%d].line_id", i), "line %s is named twice", l.LineID)
		case vendor != "" && ol.VendorID != vendor:
			v.Add(fmt.Sprintf("lines[%d].line_id", i), "line %s is sold by vendor %s, the claim's other lines by %s: claim each vendor's lines separately", l.LineID, ol.VendorID, vendor)
		}
		seen[l.LineID] = true
		if vendor == "" {
			vendor = ol.VendorID
		}
		if l.Quantity < 1 || l.Quantity > ol.Quantity {
			v.Add(fmt.Sprintf("lines[%d].quantity", i), "must be 1..%d (the line's quantity), got %d", ol.Quantity, l.Quantity)
		}
	}
	if needsEvidence(c.Reason) && len(c.Evidence.GetSha256()) == 0 && len(c.Evidence.GetSerialNumbers()) == 0 {
		v.Add("evidence", "a %s claim needs evidence: at least one photo hash (sha256) or serial number", reasonName(c.Reason))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	f := c.Record.Fulfilment
	if f == nil || f.VendorID != vendor || len(f.Shipments) == 0 {
		if o.CancelledEventID != "" || (f != nil && f.CancelledEventID != "") {
			return nil, fault.Precondition(ReasonOrderCancelled, "vendor %s's part of order %s was cancelled before it shipped; there is nothing to claim", vendor, o.OrderID)
		}
		return nil, fault.Precondition(ReasonNotShipped, "vendor %s has not shipped its part of order %s yet", vendor, o.OrderID)
	}
	lines := make([]ClaimLine, 0, len(c.Lines))
	claimed := money.Money{Currency: o.Captured.Currency}
	for _, l := range c.Lines {
		ol, _ := o.Line(l.LineID)
		amount, err := ol.UnitPrice.Mul(l.Quantity)
		if err != nil {
			return nil, err
		}
		if left := ol.LineTotal.Minor - cs.LineRefunded[l.LineID]; amount.Minor > left {
			amount.Minor = left
		}
		if amount.Minor <= 0 {
			return nil, fault.Precondition(ReasonLineRefunded, "line %s has been refunded in full already", l.LineID)
		}
		if err := UnitsOf(cs, c.Record, l.LineID).admit(l.LineID, l.Quantity, cs); err != nil {
			return nil, err
		}
		lines = append(lines, ClaimLine{LineID: l.LineID, SKUID: ol.SKUID, Quantity: l.Quantity, Amount: amount})
		var ok bool
		if claimed.Minor, ok = money.AddMinor(claimed.Minor, amount.Minor); !ok {
			return nil, fmt.Errorf("%w: the claimed lines of order %s add up to more than int64 minor units", money.ErrOverflow, o.OrderID)
		}
	}
	a, err := assess(c.Reason, lines, c.Evidence, c.Record, c.Now, c.Policy)
	if err != nil {
		return nil, err
	}
	captured := cs.Captured
	if captured.Currency == "" {
		captured = o.Captured
	}
	now := timestamppb.New(c.Now)
	opened := &trustv1.ClaimOpened{ClaimId: c.ClaimID, OrderId: o.OrderID, FulfilmentId: f.FulfilmentID, VendorId: vendor,
		BuyerId: o.BuyerID, Reason: c.Reason, Lines: claimLinesProto(lines), Evidence: c.Evidence,
		ClaimedAmount: claimed.ToProto(), OpenTime: now, OrderCaptured: captured.ToProto()}
	if a.Outcome == OutcomeAwaitVendor {
		opened.RespondByTime = timestamppb.New(c.Now.Add(c.Policy.ResponseWindow))
	}
	b := newBuilder(cs)
	b.add(opened, &trustv1.ClaimAssessed{ClaimId: c.ClaimID, Outcome: a.Outcome, Finding: a.Finding, ReliedOnEventIds: a.ReliedOn,
		UnmatchedSerials: a.Unmatched, MatchedSerials: a.Matched, AssessTime: now, OrderId: o.OrderID, VendorId: vendor})
	cl := b.cs.Claim(c.ClaimID)
	switch a.Outcome {
	case OutcomeAutoRefund:
		b.refundInFull(cl, DecidedByRules, "buyer protection: "+a.Finding, c.Now, a.ReliedOn)
	case OutcomeToSupport:
		b.add(escalated(cl, a.Escalation, a.ReliedOn, c.Now))
	case OutcomeReturn:
		b.add(returnAuthorised(cl, c.Policy, c.Now))
	}
	return b.evs, nil
}

// refundInFull resolves the claim for the buyer, refunds what remains
// claimed and closes it; should the refund be refused (it never is: claim
// amounts are capped by what the lines have left) it goes to support.
func (b *builder) refundInFull(cl *Claim, by, rationale string, now time.Time, reliedOn []string) {
	amount := cl.Remaining()
	evs, err := refundAndClose(b.cs, cl, amount, rationale, now)
	if err != nil {
		b.add(escalated(cl, "automatic refund refused: "+err.Error(), reliedOn, now))
		return
	}
	b.add(resolved(cl, DecisionRefundFull, amount, rationale, by, false, now))
	b.add(evs...)
}

// refundAndClose returns RefundIssued and ClaimClosed for amount on cl,
// after checking the cap: never more than the claim has left, never more
// than the order's captured amount minus earlier refunds.
func refundAndClose(cs Case, cl *Claim, amount money.Money, reason string, now time.Time) ([]proto.Message, error) {
	if amount.Currency != cl.Claimed.Currency {
		return nil, fault.Precondition(ReasonRefundExceeds, "refund in %s on a claim in %s", amount.Currency, cl.Claimed.Currency)
	}
	if amount.Minor <= 0 {
		return nil, fault.Precondition(ReasonRefundExceeds, "nothing left to refund on claim %s", cl.ID)
	}
	if left := cl.Remaining(); amount.Minor > left.Minor {
		return nil, fault.Precondition(ReasonRefundExceeds, "refund of %s exceeds what claim %s has left (%s)", amount, cl.ID, left)
	}
	total, err := cs.Refunded.Add(amount)
	if err != nil || cs.Captured.Currency != amount.Currency || total.Minor > cs.Captured.Minor {
		return nil, fault.Precondition(ReasonRefundExceeds, "refund of %s would bring order %s's refunds to more than the %s captured (%s refunded so far)",
			amount, cs.OrderID, cs.Captured, cs.Refunded)
	}
	weights := make([]int64, len(cl.Lines))
	for i, l := range cl.Lines {
		weights[i] = l.Amount.Minor
	}
	parts, err := money.Allocate(amount, weights)
	if err != nil {
		return nil, err
	}
	lines := make([]*trustv1.ClaimLine, len(cl.Lines))
	for i, l := range cl.Lines {
		lines[i] = &trustv1.ClaimLine{LineId: l.LineID, SkuId: l.SKUID, Quantity: l.Quantity, Amount: parts[i].ToProto()}
	}
	refunded, _ := cl.Refunded.Add(amount)
	return []proto.Message{
		&trustv1.RefundIssued{RefundId: RefundID(cs.OrderID, cs.RefundCount+1), ClaimId: cl.ID, OrderId: cs.OrderID,
			VendorId: cl.VendorID, BuyerId: cl.BuyerID, Amount: amount.ToProto(), Lines: lines, Reason: reason,
			OrderRefundedTotal: total.ToProto(), OrderCaptured: cs.Captured.ToProto(), RefundTime: timestamppb.New(now)},
		closed(cl, ClosedRefunded, refunded, "", now),
	}, nil
}

func resolved(cl *Claim, d Decision, amount money.Money, rationale, by string, counterfeit bool, now time.Time) *trustv1.ClaimResolved {
	r := &trustv1.ClaimResolved{ClaimId: cl.ID, Decision: d.String(), Rationale: rationale, DecidedBy: by,
		CounterfeitConfirmed: counterfeit, ResolveTime: timestamppb.New(now), OrderId: cl.OrderID, VendorId: cl.VendorID, BuyerId: cl.BuyerID}
	if amount.Currency != "" && amount.Minor > 0 {
		r.RefundAmount = amount.ToProto()
	}
	return r
}

func escalated(cl *Claim, reason string, reliedOn []string, now time.Time) *trustv1.ClaimEscalated {
	return &trustv1.ClaimEscalated{ClaimId: cl.ID, Reason: reason, EscalateTime: timestamppb.New(now), OrderId: cl.OrderID,
		VendorId: cl.VendorID, ReliedOnEventIds: reliedOn}
}

func returnAuthorised(cl *Claim, p Policy, now time.Time) *trustv1.ReturnAuthorised {
	return &trustv1.ReturnAuthorised{ClaimId: cl.ID, ReturnId: ReturnID(cl.ID), OrderId: cl.OrderID, VendorId: cl.VendorID,
		Lines: claimLinesProto(cl.Lines), AuthoriseTime: timestamppb.New(now), ShipByTime: timestamppb.New(now.Add(p.ReturnShipWindow))}
}

func closed(cl *Claim, outcome string, refunded money.Money, note string, now time.Time) *trustv1.ClaimClosed {
	c := &trustv1.ClaimClosed{ClaimId: cl.ID, OrderId: cl.OrderID, VendorId: cl.VendorID, Outcome: outcome,
		CloseTime: timestamppb.New(now), ClaimReason: cl.Reason, Note: note, BuyerId: cl.BuyerID}
	if refunded.Currency != "" {
		c.RefundedAmount = refunded.ToProto()
	}
	return c
}

func rejected(cl *Claim, rationale string, now time.Time) []proto.Message {
	return []proto.Message{
		&trustv1.ClaimRejected{ClaimId: cl.ID, Rationale: rationale, RejectTime: timestamppb.New(now), OrderId: cl.OrderID, VendorId: cl.VendorID,
			BuyerId: cl.BuyerID},
		closed(cl, ClosedRejected, cl.Refunded, rationale, now),
	}
}

// openClaim finds a claim that is still open.
func openClaim(cs Case, id string) (*Claim, error) {
	cl := cs.Claim(id)
	if cl == nil {
		return nil, &NotFoundError{Resource: "claim", ID: id}
	}
	if !cl.State.Open() {
		return nil, fault.Precondition(ReasonClaimClosed, "claim %s is closed (%s)", id, cl.State)
	}
	return cl, nil
}

func wrongState(cl *Claim, what string) error {
	return fault.Precondition(ReasonWrongState, "claim %s is %s; %s", cl.ID, cl.State, what)
}

// checkAmount validates a partial amount against what the claim has left.
func checkAmount(v *Violations, field string, amount money.Money, cl *Claim) {
	left := cl.Remaining()
	switch {
	case amount.Currency != left.Currency:
		v.Add(field+".currency_code", "must be %s, the claim's currency", left.Currency)
	case amount.Minor <= 0 || amount.Minor > left.Minor:
		v.Add(field+".amount_minor", "must be 1..%d (what the claim has left, %s), got %d", left.Minor, left, amount.Minor)
	}
}

// invalid is a *fault.InvalidError naming one field.
func invalid(field, format string, args ...any) error {
	var v Violations
	v.Add(field, format, args...)
	return v.Err()
}

func (c Respond) decide(cs Case) ([]proto.Message, error) {
	cl, err := openClaim(cs, c.ClaimID)
	if err != nil {
		return nil, err
	}
	resp := &trustv1.ClaimResponded{ClaimId: cl.ID, Response: c.Response.String(), Evidence: c.Evidence,
		RespondTime: timestamppb.New(c.Now), OrderId: cl.OrderID, VendorId: cl.VendorID, BuyerId: cl.BuyerID,
		SecondsSinceOpen: int64(max(c.Now.Sub(cl.OpenTime), 0) / time.Second), FirstResponse: len(cl.Responses) == 0}
	b := newBuilder(cs)
	switch c.Response {
	case ResponseAccept:
		if cl.State != StateAwaitingVendor && cl.State != StateEscalated && cl.State != StateOfferPending {
			return nil, wrongState(cl, "the vendor can accept a claim only while it waits for the vendor, the buyer's answer or support")
		}
		b.add(resp)
		b.refundInFull(b.cs.Claim(cl.ID), "vendor:"+cl.VendorID, "the vendor accepted the claim", c.Now, nil)
	case ResponseOffer:
		if cl.State != StateAwaitingVendor {
			return nil, wrongState(cl, "a partial refund can be offered only while the claim waits for the vendor")
		}
		var v Violations
		checkAmount(&v, "offered_amount", c.Offer, cl)
		if len(v) == 0 && c.Offer.Minor == cl.Remaining().Minor {
			v.Add("offered_amount.amount_minor", "an offer of the whole claimed amount is ACCEPT_REFUND")
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		resp.OfferedAmount = c.Offer.ToProto()
		resp.AnswerByTime = timestamppb.New(c.Now.Add(c.Policy.OfferWindow))
		b.add(resp)
	case ResponseReturn:
		if cl.State != StateAwaitingVendor {
			return nil, wrongState(cl, "a return can be requested only while the claim waits for the vendor")
		}
		if cl.Reason == trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED {
			return nil, fault.Precondition(ReasonReturnNotPossible, "claim %s says the parcel never arrived: there is nothing to return", cl.ID)
		}
		b.add(resp, returnAuthorised(cl, c.Policy, c.Now))
	case ResponseContest:
		if cl.State != StateAwaitingVendor && cl.State != StateEscalated {
			return nil, wrongState(cl, "a claim can be contested only while it waits for the vendor or support")
		}
		b.add(resp)
		if cl.State == StateAwaitingVendor {
			// Not the vendor's words: they are personal data, sealed under
			// the buyer's key in ClaimResponded, and a reason is not sealed.
			b.add(escalated(cl, "the vendor contests the claim (its evidence is in its response)", nil, c.Now))
		}
	default:
		return nil, invalid("response", "required: ACCEPT_REFUND, OFFER_PARTIAL_REFUND, REQUEST_RETURN or CONTEST")
	}
	return b.evs, nil
}

func (c AnswerOffer) decide(cs Case) ([]proto.Message, error) {
	cl, err := openClaim(cs, c.ClaimID)
	if err != nil {
		return nil, err
	}
	if cl.State != StateOfferPending {
		return nil, wrongState(cl, "there is no partial refund offer to answer")
	}
	b := newBuilder(cs)
	if !c.Accept {
		b.add(escalated(cl, fmt.Sprintf("the buyer declined the vendor's partial refund offer of %s", cl.Offer), nil, c.Now))
		return b.evs, nil
	}
	rationale := fmt.Sprintf("the buyer accepted the vendor's partial refund offer of %s", cl.Offer)
	evs, err := refundAndClose(b.cs, cl, cl.Offer, rationale, c.Now)
	if err != nil {
		return nil, err
	}
	b.add(resolved(cl, DecisionRefundPartial, cl.Offer, rationale, c.By, false, c.Now))
	b.add(evs...)
	return b.evs, nil
}

func (c Resolve) decide(cs Case) ([]proto.Message, error) {
	cl, err := openClaim(cs, c.ClaimID)
	if err != nil {
		return nil, err
	}
	var v Violations
	if c.Rationale == "" {
		v.Add("rationale", "required: say why")
	}
	if c.CounterfeitConfirmed {
		switch {
		case c.Decision == DecisionReject:
			v.Add("counterfeit_confirmed", "a rejected claim cannot confirm a counterfeit")
		case cl.Reason == trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED || cl.Reason == trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND:
			v.Add("counterfeit_confirmed", "a %s claim is not about the item's authenticity", reasonName(cl.Reason))
		}
	}
	if c.Decision == DecisionRefundPartial {
		checkAmount(&v, "refund_amount", c.Amount, cl)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	b := newBuilder(cs)
	switch c.Decision {
	case DecisionRefundFull, DecisionRefundPartial:
		amount := cl.Remaining()
		if c.Decision == DecisionRefundPartial {
			amount = c.Amount
		}
		evs, err := refundAndClose(b.cs, cl, amount, c.Rationale, c.Now)
		if err != nil {
			return nil, err
		}
		b.add(resolved(cl, c.Decision, amount, c.Rationale, c.By, c.CounterfeitConfirmed, c.Now))
		b.add(evs...)
	case DecisionReturnThenRefund:
		switch {
		case cl.Reason == trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED:
			return nil, fault.Precondition(ReasonReturnNotPossible, "claim %s says the parcel never arrived: there is nothing to return", cl.ID)
		case cl.ReturnAuthorised != nil:
			return nil, fault.Precondition(ReasonReturnNotPossible, "claim %s already had its return (%s)", cl.ID, cl.ReturnAuthorised.GetReturnId())
		}
		b.add(resolved(cl, c.Decision, money.Money{}, c.Rationale, c.By, c.CounterfeitConfirmed, c.Now))
		b.add(returnAuthorised(cl, c.Policy, c.Now))
	case DecisionReject:
		b.add(resolved(cl, c.Decision, money.Money{}, c.Rationale, c.By, false, c.Now))
		b.add(rejected(cl, c.Rationale, c.Now)...)
	default:
		return nil, invalid("decision", "required: REFUND_FULL, REFUND_PARTIAL, RETURN_THEN_REFUND or REJECT")
	}
	return b.evs, nil
}

func (c Withdraw) decide(cs Case) ([]proto.Message, error) {
	cl, err := openClaim(cs, c.ClaimID)
	if err != nil {
		return nil, err
	}
	if cl.State == StateReturnInTransit {
		return nil, fault.Precondition(ReasonReturnInTransit, "claim %s has a return on its way back; it closes when the vendor receives it", cl.ID)
	}
	return []proto.Message{closed(cl, ClosedWithdrawn, cl.Refunded, c.Reason, c.Now)}, nil
}

func (c RecordReturnShipment) decide(cs Case) ([]proto.Message, error) {
	cl := cs.Claim(c.ClaimID)
	if cl == nil {
		return nil, &NotFoundError{Resource: "claim", ID: c.ClaimID}
	}
	if s := cl.ReturnShipped; s != nil && s.GetCarrier() == c.Carrier && s.GetTrackingNumber() == c.TrackingNumber {
		return nil, nil // recorded already
	}
	if _, err := openClaim(cs, c.ClaimID); err != nil {
		return nil, err
	}
	if cl.State != StateReturnAuthorised {
		return nil, fault.Precondition(ReasonReturnNotExpected, "claim %s is %s; a return shipment is recorded only for an authorised return", cl.ID, cl.State)
	}
	return []proto.Message{&trustv1.ReturnShipped{ClaimId: cl.ID, ReturnId: cl.ReturnAuthorised.GetReturnId(), Carrier: c.Carrier,
		TrackingNumber: c.TrackingNumber, ShipTime: timestamppb.New(c.Now), OrderId: cl.OrderID, VendorId: cl.VendorID,
		ReceiveByTime: timestamppb.New(c.Now.Add(c.Policy.ReturnReceiveWindow))}}, nil
}

func (c ReceiveReturn) decide(cs Case) ([]proto.Message, error) {
	cl, err := openClaim(cs, c.ClaimID)
	if err != nil {
		return nil, err
	}
	if cl.State != StateReturnAuthorised && cl.State != StateReturnInTransit {
		return nil, fault.Precondition(ReasonReturnNotExpected, "claim %s is %s; no return is expected", cl.ID, cl.State)
	}
	if c.Condition < trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED || c.Condition > trustv1.ReturnCondition_RETURN_CONDITION_NOT_RECEIVED {
		return nil, invalid("condition", "required: AS_EXPECTED, DAMAGED, WRONG_ITEM or NOT_RECEIVED")
	}
	out := c.Policy.ReturnPolicy(cl.Reason, c.Condition, cl.CounterfeitConfirmed)
	b := newBuilder(cs)
	b.add(&trustv1.ReturnReceived{ClaimId: cl.ID, ReturnId: cl.ReturnAuthorised.GetReturnId(), OrderId: cl.OrderID, VendorId: cl.VendorID,
		Lines: claimLinesProto(cl.Lines), Condition: c.Condition, Restock: out.Restock, ReceiveTime: timestamppb.New(c.Now), Note: c.Note,
		BuyerId: cl.BuyerID})
	cond := conditionName(c.Condition)
	if out.Escalate != "" {
		b.add(escalated(cl, "return received "+cond+": "+out.Escalate, nil, c.Now))
		return b.evs, nil
	}
	amount, err := money.BasisPoints(cl.Remaining(), out.RefundBps)
	if err != nil {
		return nil, err
	}
	if amount.Minor <= 0 {
		b.add(rejected(cl, fmt.Sprintf("return received %s: the policy refunds nothing", cond), c.Now)...)
		return b.evs, nil
	}
	reason := fmt.Sprintf("return received %s: %s refunded per the return policy", cond, percent(out.RefundBps))
	evs, err := refundAndClose(b.cs, b.cs.Claim(cl.ID), amount, reason, c.Now)
	if err != nil {
		return nil, err
	}
	b.add(evs...)
	return b.evs, nil
}

func (c Expire) decide(cs Case) ([]proto.Message, error) {
	cl := cs.Claim(c.ClaimID)
	if cl == nil || cl.State != c.State || cl.DueAt.IsZero() || !cl.DueAt.Equal(c.DueAt) || c.Now.Before(cl.DueAt) {
		return nil, nil // moved on, or not due yet
	}
	due := stamp(cl.DueAt)
	b := newBuilder(cs)
	switch cl.State {
	case StateAwaitingVendor:
		b.refundInFull(cl, DecidedByRules, "the vendor did not respond by "+due+"; silence decides for the buyer", c.Now, nil)
	case StateOfferPending:
		b.add(escalated(cl, "the buyer did not answer the vendor's partial refund offer by "+due, nil, c.Now))
	case StateReturnAuthorised:
		b.add(rejected(cl, "the return was not sent by "+due, c.Now)...)
	case StateReturnInTransit:
		b.refundInFull(cl, DecidedByRules, "the vendor did not record receipt of the return by "+due+"; silence decides for the buyer", c.Now, nil)
	default:
		return nil, nil
	}
	return b.evs, nil
}

// DueAction says what happens when a claim in state s reaches its due time.
func DueAction(s State) string {
	switch s {
	case StateAwaitingVendor:
		return "refund in full: the vendor's silence decides for the buyer"
	case StateOfferPending:
		return "escalate to support: the buyer did not answer the offer"
	case StateReturnAuthorised:
		return "reject: the return was not sent"
	case StateReturnInTransit:
		return "refund in full: the vendor did not record receipt of the return"
	}
	return ""
}

func claimLinesProto(lines []ClaimLine) []*trustv1.ClaimLine {
	out := make([]*trustv1.ClaimLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, &trustv1.ClaimLine{LineId: l.LineID, SkuId: l.SKUID, Quantity: l.Quantity, Amount: l.Amount.ToProto()})
	}
	return out
}

func reasonName(r trustv1.ClaimReason) string {
	return trimEnum(r.String(), "CLAIM_REASON_")
}

func conditionName(c trustv1.ReturnCondition) string {
	return trimEnum(c.String(), "RETURN_CONDITION_")
}

func trimEnum(s, prefix string) string {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

func percent(bps int64) string {
	if bps%100 == 0 {
		return fmt.Sprintf("%d%%", bps/100)
	}
	return fmt.Sprintf("%d.%02d%%", bps/100, bps%100)
}

// LineUnits is what became of one order line's units, per the custody
// record and the order's claims.
type LineUnits struct {
	// Ordered units; Cancelled of them before shipping (OrderLinesCancelled,
	// or all not shipped when the order or the vendor's part was
	// cancelled).
	Ordered, Cancelled int64
	// Shipped to the buyer, and of those Delivered (a delivered shipment,
	// or the part delivered).
	Shipped, Delivered int64
	// InClaim are the units of open claims (a return on its way included);
	// Settled those of claims closed with a refund in full or after their
	// return came back (a partial refund leaves the units with the buyer,
	// claimable for what their line has left).
	InClaim, Settled int64
}

// Claimable is how many units the buyer may still claim for: those sent
// to it and not cancelled, less those in open claims and those settled.
func (u LineUnits) Claimable() int64 {
	return max(min(u.Shipped, u.Ordered-u.Cancelled)-u.InClaim-u.Settled, 0)
}

// UnitsOf counts lineID's units from the record of its vendor's part and
// the order's claims.
func UnitsOf(cs Case, r Record, lineID string) LineUnits {
	ol, _ := r.Order.Line(lineID)
	u := LineUnits{Ordered: ol.Quantity, Cancelled: ol.Cancelled}
	if f := r.Fulfilment; f != nil {
		for _, s := range f.Shipments {
			for _, sl := range s.Lines {
				if sl.LineID != lineID {
					continue
				}
				u.Shipped += sl.Quantity
				if f.Delivery != nil || len(s.deliveredScans()) > 0 {
					u.Delivered += sl.Quantity
				}
			}
		}
		if f.CancelledEventID != "" {
			u.Cancelled = max(u.Cancelled, u.Ordered-u.Shipped)
		}
	}
	if r.Order.CancelledEventID != "" {
		u.Cancelled = max(u.Cancelled, u.Ordered-u.Shipped)
	}
	for _, c := range cs.Claims {
		for _, l := range c.Lines {
			if l.LineID != lineID {
				continue
			}
			switch {
			case c.State.Open():
				u.InClaim += l.Quantity
			case c.State == StateRefunded && (c.ReturnReceived != nil || c.Refunded.Minor >= c.Claimed.Minor):
				u.Settled += l.Quantity
			}
		}
	}
	return u
}

// admit refuses a claim for quantity units of the line that the buyer
// does not hold: cancelled units, units already in an open claim, units
// settled or never sent.
func (u LineUnits) admit(lineID string, quantity int64, cs Case) error {
	if left := u.Ordered - u.Cancelled; quantity > left {
		return fault.Precondition(ReasonUnitsCancelled, "line %s: %d of its %d units were cancelled before shipping; a claim may name at most %d, not %d",
			lineID, u.Cancelled, u.Ordered, max(min(left, u.Claimable()), 0), quantity)
	}
	if quantity <= u.Claimable() {
		return nil
	}
	if u.InClaim > 0 {
		var open []string
		for _, c := range cs.Claims {
			if c.State.Open() && c.hasLine(lineID) {
				open = append(open, c.ID)
			}
		}
		return fault.Precondition(ReasonClaimAlreadyOpen, "line %s: %d of its units are in open claims (%v); %d more may be claimed, not %d",
			lineID, u.InClaim, open, u.Claimable(), quantity)
	}
	return fault.Precondition(ReasonUnitsNotHeld, "line %s: the buyer holds %d claimable units (%d shipped, %d cancelled, %d settled by refunds), not %d",
		lineID, u.Claimable(), u.Shipped, u.Cancelled, u.Settled, quantity)
}
