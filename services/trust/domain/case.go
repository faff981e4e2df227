package domain

import (
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/money"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// State is where a claim is in its life.
type State int

// States. The open ones wait for someone: the vendor, the buyer, support.
const (
	StateNone State = iota
	StateAwaitingVendor
	StateOfferPending
	StateEscalated
	StateReturnAuthorised
	StateReturnInTransit
	StateRefunded
	StateRejected
	StateWithdrawn
)

var stateNames = map[State]string{
	StateNone: "none", StateAwaitingVendor: "awaiting_vendor", StateOfferPending: "offer_pending",
	StateEscalated: "escalated", StateReturnAuthorised: "return_authorised", StateReturnInTransit: "return_in_transit",
	StateRefunded: "refunded", StateRejected: "rejected", StateWithdrawn: "withdrawn",
}

func (s State) String() string { return stateNames[s] }

// Open reports whether the claim still waits for someone.
func (s State) Open() bool { return s >= StateAwaitingVendor && s <= StateReturnInTransit }

// Assessment outcomes (ClaimAssessed.outcome).
const (
	OutcomeAutoRefund  = "auto_refund"
	OutcomeToSupport   = "to_support"
	OutcomeAwaitVendor = "await_vendor"
	OutcomeReturn      = "return_authorised"
)

// Closing outcomes (ClaimClosed.outcome).
const (
	ClosedRefunded  = "refunded"
	ClosedRejected  = "rejected"
	ClosedWithdrawn = "withdrawn"
)

// DecidedByRules is ClaimResolved.decided_by for automatic decisions.
const DecidedByRules = "service:trust"

// ClaimLine is a quantity of one order line under claim, with the amount
// claimed for it.
type ClaimLine struct {
	LineID   string
	SKUID    string
	Quantity int64
	Amount   money.Money
}

// Claim is one claim with its history. The event messages it keeps are
// never changed after Evolve stored them, so clones share them.
type Claim struct {
	ID           string
	OrderID      string
	FulfilmentID string
	VendorID     string
	BuyerID      string
	Reason       trustv1.ClaimReason
	Lines        []ClaimLine
	Evidence     *trustv1.Evidence
	Claimed      money.Money
	State        State
	OpenTime     time.Time
	// DueAt is when the current step times out (zero: nothing waits on
	// time); what happens then depends on State (see Expire).
	DueAt       time.Time
	Assessments []*trustv1.ClaimAssessed
	Responses   []*trustv1.ClaimResponded
	Escalations []*trustv1.ClaimEscalated
	// Offer is the vendor's pending partial offer (OfferPending).
	Offer                money.Money
	Resolution           *trustv1.ClaimResolved
	CounterfeitConfirmed bool
	ReturnAuthorised     *trustv1.ReturnAuthorised
	ReturnShipped        *trustv1.ReturnShipped
	ReturnReceived       *trustv1.ReturnReceived
	Refunds              []*trustv1.RefundIssued
	Refunded             money.Money
	Closed               *trustv1.ClaimClosed
	UpdateTime           time.Time
	// Revision is the claims stream's revision after the claim's last
	// event (set by folds that know revisions; zero in Decide).
	Revision uint64
}

// Remaining is what is still claimed and not refunded.
func (c *Claim) Remaining() money.Money {
	r, err := c.Claimed.Sub(c.Refunded)
	if err != nil || r.Minor < 0 {
		return money.Money{Currency: c.Claimed.Currency}
	}
	return r
}

func (c *Claim) hasLine(lineID string) bool {
	return slices.ContainsFunc(c.Lines, func(l ClaimLine) bool { return l.LineID == lineID })
}

func (c *Claim) clone() *Claim {
	cc := *c
	cc.Lines = slices.Clone(c.Lines)
	cc.Assessments = slices.Clone(c.Assessments)
	cc.Responses = slices.Clone(c.Responses)
	cc.Escalations = slices.Clone(c.Escalations)
	cc.Refunds = slices.Clone(c.Refunds)
	return &cc
}

// Case is the state of the claims aggregate of one order: every claim on
// it and the order's refund ledger.
type Case struct {
	OrderID string
	// Captured is what was captured for the order (from the first claim).
	Captured money.Money
	// Refunded is the sum of every refund issued on the order.
	Refunded money.Money
	// LineRefunded is the amount refunded per order line (minor units).
	LineRefunded map[string]int64
	// RefundCount numbers refunds (RefundID).
	RefundCount int
	// Claims in the order they were opened.
	Claims []*Claim
	// Revision is the stream revision of the last event (folds that know
	// revisions set it).
	Revision uint64
}

// Claim returns the claim with id, or nil.
func (cs Case) Claim(id string) *Claim {
	for _, c := range cs.Claims {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// OpenClaimOn returns the open claim on lineID, or nil.
func (cs Case) OpenClaimOn(lineID string) *Claim {
	for _, c := range cs.Claims {
		if c.State.Open() && c.hasLine(lineID) {
			return c
		}
	}
	return nil
}

// Clone deep-copies a case.
func (cs Case) Clone() Case {
	c := cs
	c.LineRefunded = maps.Clone(cs.LineRefunded)
	c.Claims = make([]*Claim, len(cs.Claims))
	for i, cl := range cs.Claims {
		c.Claims[i] = cl.clone()
	}
	if cs.Claims == nil {
		c.Claims = nil
	}
	return c
}

// EvolveCase applies one event of a claims stream. Unknown events (and
// events of unknown claims) leave the case unchanged.
func EvolveCase(cs Case, e proto.Message) Case {
	if cs.LineRefunded == nil {
		cs.LineRefunded = map[string]int64{}
	}
	if o, ok := e.(*trustv1.ClaimOpened); ok {
		if cs.Claim(o.GetClaimId()) != nil {
			return cs
		}
		if cs.Captured.Currency == "" {
			cs.Captured = moneyFrom(o.GetOrderCaptured())
			cs.Refunded = money.Money{Currency: cs.Captured.Currency}
		}
		c := &Claim{ID: o.GetClaimId(), OrderID: o.GetOrderId(), FulfilmentID: o.GetFulfilmentId(), VendorID: o.GetVendorId(),
			BuyerID: o.GetBuyerId(), Reason: o.GetReason(), Evidence: o.GetEvidence(), Claimed: moneyFrom(o.GetClaimedAmount()),
			State: StateAwaitingVendor, OpenTime: timeOf(o.GetOpenTime()), UpdateTime: timeOf(o.GetOpenTime())}
		c.Refunded = money.Money{Currency: c.Claimed.Currency}
		if o.GetRespondByTime() != nil {
			c.DueAt = timeOf(o.GetRespondByTime())
		}
		for _, l := range o.GetLines() {
			c.Lines = append(c.Lines, ClaimLine{LineID: l.GetLineId(), SKUID: l.GetSkuId(), Quantity: l.GetQuantity(), Amount: moneyFrom(l.GetAmount())})
		}
		cs.Claims = append(cs.Claims, c)
		return cs
	}
	c := cs.Claim(claimIDOf(e))
	if c == nil {
		return cs
	}
	switch e := e.(type) {
	case *trustv1.ClaimAssessed:
		c.Assessments = append(c.Assessments, e)
		c.UpdateTime = timeOf(e.GetAssessTime())
	case *trustv1.ClaimEscalated:
		c.Escalations = append(c.Escalations, e)
		c.State, c.DueAt, c.Offer = StateEscalated, time.Time{}, money.Money{}
		c.UpdateTime = timeOf(e.GetEscalateTime())
	case *trustv1.ClaimResponded:
		c.Responses = append(c.Responses, e)
		if e.GetResponse() == ResponseOffer.String() {
			c.State, c.Offer = StateOfferPending, moneyFrom(e.GetOfferedAmount())
			c.DueAt = timeOf(e.GetAnswerByTime())
		}
		c.UpdateTime = timeOf(e.GetRespondTime())
	case *trustv1.ClaimResolved:
		c.Resolution = e
		c.CounterfeitConfirmed = c.CounterfeitConfirmed || e.GetCounterfeitConfirmed()
		c.DueAt, c.Offer = time.Time{}, money.Money{}
		c.UpdateTime = timeOf(e.GetResolveTime())
	case *trustv1.ReturnAuthorised:
		c.ReturnAuthorised = e
		c.State, c.DueAt = StateReturnAuthorised, timeOf(e.GetShipByTime())
		c.UpdateTime = timeOf(e.GetAuthoriseTime())
	case *trustv1.ReturnShipped:
		c.ReturnShipped = e
		c.State, c.DueAt = StateReturnInTransit, timeOf(e.GetReceiveByTime())
		c.UpdateTime = timeOf(e.GetShipTime())
	case *trustv1.ReturnReceived:
		c.ReturnReceived = e
		c.DueAt = time.Time{}
		c.UpdateTime = timeOf(e.GetReceiveTime())
	case *trustv1.RefundIssued:
		amount := moneyFrom(e.GetAmount())
		c.Refunds = append(c.Refunds, e)
		c.Refunded.Minor += amount.Minor
		cs.Refunded = moneyFrom(e.GetOrderRefundedTotal())
		for _, l := range e.GetLines() {
			cs.LineRefunded[l.GetLineId()] += l.GetAmount().GetAmountMinor()
		}
		cs.RefundCount++
		c.UpdateTime = timeOf(e.GetRefundTime())
	case *trustv1.ClaimRejected:
		c.UpdateTime = timeOf(e.GetRejectTime())
	case *trustv1.ClaimClosed:
		c.Closed = e
		switch e.GetOutcome() {
		case ClosedRefunded:
			c.State = StateRefunded
		case ClosedWithdrawn:
			c.State = StateWithdrawn
		default:
			c.State = StateRejected
		}
		c.DueAt, c.Offer = time.Time{}, money.Money{}
		c.UpdateTime = timeOf(e.GetCloseTime())
	}
	return cs
}

// claimIDOf returns the claim an event is about.
func claimIDOf(e proto.Message) string {
	if m, ok := e.(interface{ GetClaimId() string }); ok {
		return m.GetClaimId()
	}
	return ""
}

// Claims is the claims aggregate: one stream per order,
// "claims-<order_id>".
var Claims = es.Decider[Case, Command]{
	Aggregate: "claims",
	Initial:   func(id string) Case { return Case{OrderID: id, LineRefunded: map[string]int64{}} },
	Decide:    Decide,
	Evolve:    EvolveCase,
	Clone:     Case.Clone,
}
