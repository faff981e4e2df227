package domain

import (
	"time"

	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// Policy holds the rules' numbers: windows, deadlines and refund rates.
// It travels in the commands that need it, so deciding stays pure.
type Policy struct {
	// ClaimWindow: how long after delivery (or, for a parcel never
	// delivered, after its expected delivery) a claim may be opened.
	ClaimWindow time.Duration
	// ChangedMindWindow: how long after delivery a change of mind may be
	// claimed (and the return is authorised at once).
	ChangedMindWindow time.Duration
	// NotReceivedGrace: how long after the expected delivery a
	// not-received claim is first accepted.
	NotReceivedGrace time.Duration
	// ResponseWindow: how long the vendor has to respond; silence refunds
	// the buyer in full.
	ResponseWindow time.Duration
	// OfferWindow: how long the buyer has to answer a partial offer;
	// silence sends the claim to support.
	OfferWindow time.Duration
	// ReturnShipWindow: how long the buyer has to send an authorised
	// return; silence rejects the claim.
	ReturnShipWindow time.Duration
	// ReturnReceiveWindow: how long after the return was sent the vendor
	// has to record its receipt; silence refunds the buyer in full.
	ReturnReceiveWindow time.Duration
	// ChangedMindDamagedBps: share of the claimed amount refunded when a
	// changed-mind return comes back damaged (the buyer's doing). Zero
	// takes the default; NoRefund refunds nothing.
	ChangedMindDamagedBps int64
	// FaultDamagedBps: share refunded when the return of a claim about the
	// item itself (damaged, not as described, counterfeit, wrong item)
	// comes back damaged (the damage is what was claimed). Zero takes the
	// default; NoRefund refunds nothing.
	FaultDamagedBps int64
}

// NoRefund, as a refund rate of Policy, refunds nothing (zero means the
// default rate).
const NoRefund = -1

// DefaultPolicy is the marketplace's standard policy.
func DefaultPolicy() Policy {
	return Policy{
		ClaimWindow:           30 * 24 * time.Hour,
		ChangedMindWindow:     14 * 24 * time.Hour,
		NotReceivedGrace:      0,
		ResponseWindow:        48 * time.Hour,
		OfferWindow:           48 * time.Hour,
		ReturnShipWindow:      14 * 24 * time.Hour,
		ReturnReceiveWindow:   21 * 24 * time.Hour,
		ChangedMindDamagedBps: 5000,
		FaultDamagedBps:       10000,
	}
}

// WithDefaults fills zero fields with the defaults (and turns NoRefund
// into a zero rate).
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy()
	for _, f := range []struct{ v, def *time.Duration }{
		{&p.ClaimWindow, &d.ClaimWindow}, {&p.ChangedMindWindow, &d.ChangedMindWindow},
		{&p.ResponseWindow, &d.ResponseWindow}, {&p.OfferWindow, &d.OfferWindow},
		{&p.ReturnShipWindow, &d.ReturnShipWindow}, {&p.ReturnReceiveWindow, &d.ReturnReceiveWindow},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if p.NotReceivedGrace < 0 {
		p.NotReceivedGrace = 0
	}
	for _, r := range []struct{ v, def *int64 }{
		{&p.ChangedMindDamagedBps, &d.ChangedMindDamagedBps}, {&p.FaultDamagedBps, &d.FaultDamagedBps},
	} {
		switch {
		case *r.v == NoRefund:
			*r.v = 0
		case *r.v <= 0 || *r.v > 10000:
			*r.v = *r.def
		}
	}
	return p
}

// ReturnOutcome is what a received return leads to.
type ReturnOutcome struct {
	// RefundBps is the share of what remains claimed that is refunded.
	RefundBps int64
	// Restock: the units go back into the vendor's stock.
	Restock bool
	// Escalate, when not empty, sends the claim to support for this
	// reason instead of refunding.
	Escalate string
}

// ReturnPolicy decides the refund that follows a return's condition:
//
//	condition     refund                                          restock
//	AS_EXPECTED   100%                                            yes, unless counterfeit confirmed
//	DAMAGED       ChangedMindDamagedBps for a change of mind,     no
//	              FaultDamagedBps for a claim about the item
//	WRONG_ITEM    none: support decides                           no
//	NOT_RECEIVED  none: support decides                           no
func (p Policy) ReturnPolicy(reason trustv1.ClaimReason, cond trustv1.ReturnCondition, counterfeitConfirmed bool) ReturnOutcome {
	switch cond {
	case trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED:
		return ReturnOutcome{RefundBps: 10000, Restock: !counterfeitConfirmed && reason != trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT}
	case trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED:
		if reason == trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND {
			return ReturnOutcome{RefundBps: p.ChangedMindDamagedBps}
		}
		return ReturnOutcome{RefundBps: p.FaultDamagedBps}
	case trustv1.ReturnCondition_RETURN_CONDITION_WRONG_ITEM:
		return ReturnOutcome{Escalate: "the returned parcel held an item other than the one sold"}
	default:
		return ReturnOutcome{Escalate: "the return parcel did not arrive"}
	}
}
