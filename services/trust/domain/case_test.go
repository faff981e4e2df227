package domain_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/fault"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust/domain"
)

const claimID = "o1_c0000000000000001"

func open(w *world, vendor string, reason trustv1.ClaimReason, at time.Duration, ls []domain.LineRequest, ev *trustv1.Evidence) domain.OpenClaim {
	return domain.OpenClaim{ClaimID: claimID, Reason: reason, Lines: ls, Evidence: ev, Record: w.record(vendor), Policy: policy, Now: t0.Add(at)}
}

// decide folds given into a case of order o1 and decides when on it.
func decide(t *testing.T, given []proto.Message, when domain.Command) ([]proto.Message, error) {
	t.Helper()
	cs := domain.Claims.Initial("o1")
	for _, e := range given {
		cs = domain.EvolveCase(cs, e)
	}
	before := cs.Clone()
	evs, err := domain.Decide(cs, when)
	if diff := cmp.Diff(before, cs, protocmp.Transform()); diff != "" {
		t.Fatalf("Decide changed the state it was given (-before +after):\n%s", diff)
	}
	estest.WantSubjects(t, evs)
	return evs, err
}

// mustDecide is decide that fails the test on an error.
func mustDecide(t *testing.T, given []proto.Message, when domain.Command) []proto.Message {
	t.Helper()
	evs, err := decide(t, given, when)
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	return evs
}

func names(evs []proto.Message) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, string(e.ProtoReflect().Descriptor().Name()))
	}
	return out
}

func find[T proto.Message](t *testing.T, evs []proto.Message) T {
	t.Helper()
	for _, e := range evs {
		if m, ok := e.(T); ok {
			return m
		}
	}
	var zero T
	t.Fatalf("no %T among %v", zero, names(evs))
	return zero
}

func wantNames(t *testing.T, evs []proto.Message, want ...string) {
	t.Helper()
	if got := names(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var inv *fault.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v, want invalid %s", err, field)
	}
	for _, v := range inv.Violations {
		if v.Field == field {
			return
		}
	}
	t.Fatalf("violations %v do not name %s", inv.Violations, field)
}

var (
	notReceived = trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED
	damaged     = trustv1.ClaimReason_CLAIM_REASON_DAMAGED
	counterfeit = trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT
	changedMind = trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND
	photo       = &trustv1.Evidence{Sha256: []string{strings.Repeat("a", 64)}, Text: "broken"}
)

func TestNotReceived(t *testing.T) {
	t.Run("before the expected delivery it is too early", func(t *testing.T) {
		_, err := decide(t, nil, open(shippedWorld(), "v1", notReceived, 2*day, lines(line("1", 2)), nil))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonTooEarly))
	})
	t.Run("no DELIVERED scan after the expected delivery refunds at once", func(t *testing.T) {
		evs := mustDecide(t, nil, open(shippedWorld(), "v1", notReceived, 3*day+time.Hour, lines(line("1", 2), line("2", 1)), nil))
		wantNames(t, evs, "ClaimOpened", "ClaimAssessed", "ClaimResolved", "RefundIssued", "ClaimClosed")
		a := find[*trustv1.ClaimAssessed](t, evs)
		if a.GetOutcome() != domain.OutcomeAutoRefund || !slices.Equal(a.GetReliedOnEventIds(), []string{"e-shipped", "e-scan1", "e-scan2"}) {
			t.Fatalf("assessed %v", a)
		}
		if !strings.Contains(a.GetFinding(), "last scan IN_TRANSIT") {
			t.Errorf("finding %q", a.GetFinding())
		}
		if r := find[*trustv1.ClaimResolved](t, evs); r.GetDecidedBy() != domain.DecidedByRules || r.GetDecision() != "refund_full" {
			t.Errorf("resolved %v", r)
		}
		want := &trustv1.RefundIssued{RefundId: "o1_f1", ClaimId: claimID, OrderId: "o1", VendorId: "v1", BuyerId: "b1",
			Amount: pm(eur(2500)), Lines: []*trustv1.ClaimLine{
				{LineId: "1", SkuId: "p1-a", Quantity: 2, Amount: pm(eur(2000))}, {LineId: "2", SkuId: "p2-b", Quantity: 1, Amount: pm(eur(500))}},
			OrderRefundedTotal: pm(eur(2500)), OrderCaptured: pm(eur(3200)), RefundTime: ts(3*day + time.Hour)}
		got := find[*trustv1.RefundIssued](t, evs)
		got.Reason = ""
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("refund (-want +got):\n%s", diff)
		}
		if c := find[*trustv1.ClaimClosed](t, evs); c.GetOutcome() != domain.ClosedRefunded || c.GetRefundedAmount().GetAmountMinor() != 2500 {
			t.Errorf("closed %v", c)
		}
	})
	t.Run("a lost parcel refunds before the expected delivery", func(t *testing.T) {
		w := shippedWorld().add("e-lost", lost())
		evs := mustDecide(t, nil, open(w, "v1", notReceived, 2*day, lines(line("1", 1)), nil))
		a := find[*trustv1.ClaimAssessed](t, evs)
		if a.GetOutcome() != domain.OutcomeAutoRefund || !slices.Contains(a.GetReliedOnEventIds(), "e-lost") {
			t.Fatalf("assessed %v", a)
		}
		if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 1000 {
			t.Fatalf("refund %v", r)
		}
	})
	t.Run("against a delivery with proof it goes to support with the proof", func(t *testing.T) {
		evs := mustDecide(t, nil, open(deliveredWorld(true), "v1", notReceived, 4*day, lines(line("1", 2)), nil))
		wantNames(t, evs, "ClaimOpened", "ClaimAssessed", "ClaimEscalated")
		a := find[*trustv1.ClaimAssessed](t, evs)
		if a.GetOutcome() != domain.OutcomeToSupport || !slices.Equal(a.GetReliedOnEventIds(), []string{"e-delivered", "e-scan3"}) {
			t.Fatalf("assessed %v", a)
		}
		if e := find[*trustv1.ClaimEscalated](t, evs); !slices.Equal(e.GetReliedOnEventIds(), a.GetReliedOnEventIds()) {
			t.Fatalf("escalated %v", e)
		}
		if o := find[*trustv1.ClaimOpened](t, evs); o.GetRespondByTime() != nil {
			t.Errorf("a claim for support has a vendor deadline: %v", o)
		}
	})
	t.Run("against a delivery without proof it waits for the vendor", func(t *testing.T) {
		evs := mustDecide(t, nil, open(deliveredWorld(false), "v1", notReceived, 4*day, lines(line("1", 2)), nil))
		wantNames(t, evs, "ClaimOpened", "ClaimAssessed")
		if a := find[*trustv1.ClaimAssessed](t, evs); a.GetOutcome() != domain.OutcomeAwaitVendor {
			t.Fatalf("assessed %v", a)
		}
		if o := find[*trustv1.ClaimOpened](t, evs); !o.GetRespondByTime().AsTime().Equal(t0.Add(6 * day)) {
			t.Fatalf("respond by %v", o.GetRespondByTime().AsTime())
		}
	})
	t.Run("against the buyer's own receipt confirmation it goes to support", func(t *testing.T) {
		w := shippedWorld().add("e-receipt", &fulfilmentv1.ReceiptConfirmed{FulfilmentId: "f1", OrderId: "o1", BuyerId: "b1", ConfirmTime: ts(2 * day)})
		evs := mustDecide(t, nil, open(w, "v1", notReceived, 4*day, lines(line("1", 2)), nil))
		a := find[*trustv1.ClaimAssessed](t, evs)
		if a.GetOutcome() != domain.OutcomeToSupport || !slices.Equal(a.GetReliedOnEventIds(), []string{"e-receipt"}) ||
			!strings.Contains(a.GetFinding(), "buyer confirmed receipt") {
			t.Fatalf("assessed %v", a)
		}
	})
	t.Run("a scan's proof counts when the fulfilment's delivery says none", func(t *testing.T) {
		w := shippedWorld()
		w.add("e-scan3", scan("c3", fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, 3*day, &fulfilmentv1.ProofOfDelivery{SignatureSha256: "cc"}))
		w.add("e-delivered", &fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", DeliverTime: ts(3 * day)})
		evs := mustDecide(t, nil, open(w, "v1", notReceived, 4*day, lines(line("1", 2)), nil))
		if a := find[*trustv1.ClaimAssessed](t, evs); a.GetOutcome() != domain.OutcomeToSupport {
			t.Fatalf("assessed %v", a)
		}
	})
	t.Run("the window closes", func(t *testing.T) {
		_, err := decide(t, nil, open(shippedWorld(), "v1", notReceived, 34*day, lines(line("1", 2)), nil))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonWindowClosed))
	})
}

func TestCounterfeit(t *testing.T) {
	t.Run("a serial that was not packed goes to support with the comparison", func(t *testing.T) {
		ev := &trustv1.Evidence{SerialNumbers: []string{"SN-FAKE"}, Sha256: []string{strings.Repeat("b", 64)}}
		evs := mustDecide(t, nil, open(deliveredWorld(true), "v1", counterfeit, 5*day, lines(line("1", 1)), ev))
		wantNames(t, evs, "ClaimOpened", "ClaimAssessed", "ClaimEscalated")
		a := find[*trustv1.ClaimAssessed](t, evs)
		if a.GetOutcome() != domain.OutcomeToSupport || !slices.Equal(a.GetUnmatchedSerials(), []string{"SN-FAKE"}) || len(a.GetMatchedSerials()) != 0 ||
			!slices.Contains(a.GetReliedOnEventIds(), "e-shipped") {
			t.Fatalf("assessed %v", a)
		}
		if !strings.Contains(a.GetFinding(), "not among the 2 serial(s)") {
			t.Errorf("finding %q", a.GetFinding())
		}
	})
	t.Run("a packed serial matches, compared per line", func(t *testing.T) {
		ev := &trustv1.Evidence{SerialNumbers: []string{" sn-2 ", "SN-3"}}
		evs := mustDecide(t, nil, open(deliveredWorld(true), "v1", counterfeit, 5*day, lines(line("1", 1)), ev))
		a := find[*trustv1.ClaimAssessed](t, evs)
		// SN-3 was packed, but for line 2, which is not claimed.
		if !slices.Equal(a.GetMatchedSerials(), []string{" sn-2 "}) || !slices.Equal(a.GetUnmatchedSerials(), []string{"SN-3"}) {
			t.Fatalf("assessed %v", a)
		}
	})
	t.Run("needs evidence", func(t *testing.T) {
		_, err := decide(t, nil, open(deliveredWorld(true), "v1", counterfeit, 5*day, lines(line("1", 1)), &trustv1.Evidence{Text: "fake"}))
		wantInvalid(t, err, "evidence")
	})
}

func TestOpenClaimChecks(t *testing.T) {
	opened := mustDecide(t, nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 1)), photo))
	tests := []struct {
		name   string
		given  []proto.Message
		when   domain.OpenClaim
		reason string // precondition
		field  string // or invalid field
	}{
		{"unknown line", nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("9", 1)), photo), "", "lines[0].line_id"},
		{"too many units", nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 3)), photo), "", "lines[0].quantity"},
		{"no units", nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 0)), photo), "", "lines[0].quantity"},
		{"line twice", nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 1), line("1", 1)), photo), "", "lines[1].line_id"},
		{"two vendors", nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 1), line("3", 1)), photo), "", "lines[1].line_id"},
		{"no lines", nil, open(deliveredWorld(true), "v1", damaged, 4*day, nil, photo), "", "lines"},
		{"no reason", nil, open(deliveredWorld(true), "v1", 0, 4*day, lines(line("1", 1)), photo), "", "reason"},
		{"not shipped", nil, open(deliveredWorld(true), "v2", damaged, 4*day, lines(line("3", 1)), photo), domain.ReasonNotShipped, ""},
		{"not delivered", nil, open(shippedWorld(), "v1", damaged, 4*day, lines(line("1", 1)), photo), domain.ReasonNotDelivered, ""},
		{"after the window", nil, open(deliveredWorld(true), "v1", damaged, 34*day, lines(line("1", 1)), photo), domain.ReasonWindowClosed, ""},
		{"change of mind after its window", nil, open(deliveredWorld(true), "v1", changedMind, 18*day, lines(line("1", 1)), nil), domain.ReasonWindowClosed, ""},
		{"a line with an open claim on 1 of its 2 units, claimed for 2", opened, func() domain.OpenClaim {
			c := open(deliveredWorld(true), "v1", changedMind, 4*day, lines(line("2", 1), line("1", 2)), nil)
			c.ClaimID = "o1_c0000000000000002"
			return c
		}(), domain.ReasonClaimAlreadyOpen, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decide(t, tt.given, tt.when)
			if tt.reason != "" {
				estest.WantErr(t, err, estest.Precondition(tt.reason))
			} else {
				wantInvalid(t, err, tt.field)
			}
		})
	}
	t.Run("an unknown order is not found", func(t *testing.T) {
		c := open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 1)), photo)
		c.Record = domain.Record{}
		_, err := decide(t, nil, c)
		estest.WantErr(t, err, &domain.NotFoundError{Resource: "order", ID: "o1"})
	})
	t.Run("the same claim again decides nothing", func(t *testing.T) {
		if evs := mustDecide(t, opened, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 1)), photo)); len(evs) != 0 {
			t.Fatalf("decided %v", names(evs))
		}
	})
}

func TestVendorResponses(t *testing.T) {
	given := mustDecide(t, nil, open(deliveredWorld(true), "v1", damaged, 4*day, lines(line("1", 2)), photo))
	respond := func(r domain.Response, offer int64) domain.Respond {
		c := domain.Respond{ClaimID: claimID, Response: r, Evidence: &trustv1.Evidence{Text: "not my fault"}, Policy: policy, Now: t0.Add(5 * day)}
		if offer > 0 {
			c.Offer = eur(offer)
		}
		return c
	}
	t.Run("accept refunds in full", func(t *testing.T) {
		evs := mustDecide(t, given, respond(domain.ResponseAccept, 0))
		wantNames(t, evs, "ClaimResponded", "ClaimResolved", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.ClaimResponded](t, evs); !r.GetFirstResponse() || r.GetSecondsSinceOpen() != int64(day/time.Second) || r.GetVendorId() != "v1" {
			t.Errorf("responded %v", r)
		}
		if r := find[*trustv1.ClaimResolved](t, evs); r.GetDecidedBy() != "vendor:v1" {
			t.Errorf("resolved %v", r)
		}
	})
	t.Run("offer, accepted", func(t *testing.T) {
		offered := append(slices.Clone(given), mustDecide(t, given, respond(domain.ResponseOffer, 800))...)
		evs := mustDecide(t, offered, domain.AnswerOffer{ClaimID: claimID, Accept: true, By: "buyer:b1", Now: t0.Add(6 * day)})
		wantNames(t, evs, "ClaimResolved", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 800 || r.GetLines()[0].GetAmount().GetAmountMinor() != 800 {
			t.Fatalf("refund %v", r)
		}
		if r := find[*trustv1.ClaimResolved](t, evs); r.GetDecision() != "refund_partial" || r.GetDecidedBy() != "buyer:b1" {
			t.Fatalf("resolved %v", r)
		}
	})
	t.Run("offer, declined", func(t *testing.T) {
		offered := append(slices.Clone(given), mustDecide(t, given, respond(domain.ResponseOffer, 800))...)
		evs := mustDecide(t, offered, domain.AnswerOffer{ClaimID: claimID, Accept: false, By: "buyer:b1", Now: t0.Add(6 * day)})
		wantNames(t, evs, "ClaimEscalated")
	})
	t.Run("an offer is less than the claim", func(t *testing.T) {
		_, err := decide(t, given, respond(domain.ResponseOffer, 2000))
		wantInvalid(t, err, "offered_amount.amount_minor")
		_, err = decide(t, given, respond(domain.ResponseOffer, 2001))
		wantInvalid(t, err, "offered_amount.amount_minor")
	})
	t.Run("return", func(t *testing.T) {
		evs := mustDecide(t, given, respond(domain.ResponseReturn, 0))
		wantNames(t, evs, "ClaimResponded", "ReturnAuthorised")
		if r := find[*trustv1.ReturnAuthorised](t, evs); r.GetReturnId() != claimID+"_r" || !r.GetShipByTime().AsTime().Equal(t0.Add(19*day)) {
			t.Fatalf("return %v", r)
		}
	})
	t.Run("contest goes to support", func(t *testing.T) {
		evs := mustDecide(t, given, respond(domain.ResponseContest, 0))
		wantNames(t, evs, "ClaimResponded", "ClaimEscalated")
		// The vendor's words are personal data, sealed in ClaimResponded
		// only: the escalation's reason does not repeat them.
		if r := find[*trustv1.ClaimEscalated](t, evs); strings.Contains(r.GetReason(), "not my fault") {
			t.Fatalf("escalation reason %q repeats the vendor's evidence", r.GetReason())
		}
	})
	t.Run("every response names the claim's buyer", func(t *testing.T) {
		for _, r := range []domain.Respond{respond(domain.ResponseAccept, 0), respond(domain.ResponseOffer, 800), respond(domain.ResponseReturn, 0), respond(domain.ResponseContest, 0)} {
			if got := find[*trustv1.ClaimResponded](t, mustDecide(t, given, r)).GetBuyerId(); got != "b1" {
				t.Errorf("%v: ClaimResponded.buyer_id = %q, want b1", r.Response, got)
			}
		}
	})
	t.Run("silence decides for the buyer", func(t *testing.T) {
		due := t0.Add(6 * day)
		if evs := mustDecide(t, given, domain.Expire{ClaimID: claimID, State: domain.StateAwaitingVendor, DueAt: due, Now: due.Add(-time.Second)}); len(evs) != 0 {
			t.Fatalf("expired early: %v", names(evs))
		}
		if evs := mustDecide(t, given, domain.Expire{ClaimID: claimID, State: domain.StateAwaitingVendor, DueAt: due.Add(time.Hour), Now: due.Add(time.Hour)}); len(evs) != 0 {
			t.Fatalf("a deadline that is not the claim's fired: %v", names(evs))
		}
		evs := mustDecide(t, given, domain.Expire{ClaimID: claimID, State: domain.StateAwaitingVendor, DueAt: due, Now: due})
		wantNames(t, evs, "ClaimResolved", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.ClaimResolved](t, evs); r.GetDecidedBy() != domain.DecidedByRules || !strings.Contains(r.GetRationale(), "did not respond") {
			t.Fatalf("resolved %v", r)
		}
		responded := append(slices.Clone(given), mustDecide(t, given, respond(domain.ResponseContest, 0))...)
		if evs := mustDecide(t, responded, domain.Expire{ClaimID: claimID, State: domain.StateAwaitingVendor, DueAt: due, Now: due}); len(evs) != 0 {
			t.Fatalf("expired after a response: %v", names(evs))
		}
	})
	t.Run("a closed claim takes no response", func(t *testing.T) {
		closed := append(slices.Clone(given), mustDecide(t, given, respond(domain.ResponseAccept, 0))...)
		_, err := decide(t, closed, respond(domain.ResponseContest, 0))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonClaimClosed))
	})
}

func TestSupportDecisions(t *testing.T) {
	ev := &trustv1.Evidence{SerialNumbers: []string{"SN-FAKE"}}
	given := mustDecide(t, nil, open(deliveredWorld(true), "v1", counterfeit, 4*day, lines(line("1", 1)), ev))
	resolve := func(d domain.Decision, amount int64, counterfeit bool) domain.Resolve {
		r := domain.Resolve{ClaimID: claimID, Decision: d, Rationale: "photos and serial", CounterfeitConfirmed: counterfeit,
			By: "support:s1", Policy: policy, Now: t0.Add(5 * day)}
		if amount > 0 {
			r.Amount = eur(amount)
		}
		return r
	}
	t.Run("counterfeit confirmed, refunded", func(t *testing.T) {
		evs := mustDecide(t, given, resolve(domain.DecisionRefundFull, 0, true))
		wantNames(t, evs, "ClaimResolved", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.ClaimResolved](t, evs); !r.GetCounterfeitConfirmed() || r.GetRefundAmount().GetAmountMinor() != 1000 || r.GetDecidedBy() != "support:s1" {
			t.Fatalf("resolved %v", r)
		}
	})
	t.Run("partial", func(t *testing.T) {
		evs := mustDecide(t, given, resolve(domain.DecisionRefundPartial, 300, false))
		if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 300 {
			t.Fatalf("refund %v", r)
		}
		_, err := decide(t, given, resolve(domain.DecisionRefundPartial, 1001, false))
		wantInvalid(t, err, "refund_amount.amount_minor")
	})
	t.Run("reject", func(t *testing.T) {
		evs := mustDecide(t, given, resolve(domain.DecisionReject, 0, false))
		wantNames(t, evs, "ClaimResolved", "ClaimRejected", "ClaimClosed")
		_, err := decide(t, given, resolve(domain.DecisionReject, 0, true))
		wantInvalid(t, err, "counterfeit_confirmed")
	})
	t.Run("rationale is required", func(t *testing.T) {
		r := resolve(domain.DecisionReject, 0, false)
		r.Rationale = ""
		_, err := decide(t, given, r)
		wantInvalid(t, err, "rationale")
	})
	t.Run("return then refund, received as expected: no restock of a counterfeit", func(t *testing.T) {
		s := append(slices.Clone(given), mustDecide(t, given, resolve(domain.DecisionReturnThenRefund, 0, true))...)
		evs := mustDecide(t, s, domain.ReceiveReturn{ClaimID: claimID, Condition: trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED, Policy: policy, Now: t0.Add(9 * day)})
		wantNames(t, evs, "ReturnReceived", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.ReturnReceived](t, evs); r.GetRestock() {
			t.Fatalf("a confirmed counterfeit is restocked: %v", r)
		}
	})
}

func TestReturns(t *testing.T) {
	given := mustDecide(t, nil, open(deliveredWorld(true), "v1", changedMind, 4*day, lines(line("1", 2)), nil))
	wantNames(t, given, "ClaimOpened", "ClaimAssessed", "ReturnAuthorised")
	shipped := append(slices.Clone(given), mustDecide(t, given, domain.RecordReturnShipment{ClaimID: claimID, Carrier: "dhl", TrackingNumber: "R1", Policy: policy, Now: t0.Add(5 * day)})...)
	wantNames(t, shipped[3:], "ReturnShipped")
	receive := func(cond trustv1.ReturnCondition) []proto.Message {
		return mustDecide(t, shipped, domain.ReceiveReturn{ClaimID: claimID, Condition: cond, Policy: policy, Now: t0.Add(8 * day)})
	}
	t.Run("as expected: full refund, restock", func(t *testing.T) {
		evs := receive(trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED)
		wantNames(t, evs, "ReturnReceived", "RefundIssued", "ClaimClosed")
		if r := find[*trustv1.ReturnReceived](t, evs); !r.GetRestock() || r.GetLines()[0].GetQuantity() != 2 || r.GetLines()[0].GetSkuId() != "p1-a" {
			t.Fatalf("received %v", r)
		}
		if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 2000 {
			t.Fatalf("refund %v", r)
		}
	})
	t.Run("damaged after a change of mind: half, no restock", func(t *testing.T) {
		evs := receive(trustv1.ReturnCondition_RETURN_CONDITION_DAMAGED)
		if r := find[*trustv1.ReturnReceived](t, evs); r.GetRestock() {
			t.Fatalf("received %v", r)
		}
		if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 1000 || !strings.Contains(r.GetReason(), "50%") {
			t.Fatalf("refund %v", r)
		}
	})
	t.Run("wrong item: support decides", func(t *testing.T) {
		wantNames(t, receive(trustv1.ReturnCondition_RETURN_CONDITION_WRONG_ITEM), "ReturnReceived", "ClaimEscalated")
	})
	t.Run("never arrived: support decides", func(t *testing.T) {
		wantNames(t, receive(trustv1.ReturnCondition_RETURN_CONDITION_NOT_RECEIVED), "ReturnReceived", "ClaimEscalated")
	})
	t.Run("the same shipment again decides nothing", func(t *testing.T) {
		if evs := mustDecide(t, shipped, domain.RecordReturnShipment{ClaimID: claimID, Carrier: "dhl", TrackingNumber: "R1", Policy: policy, Now: t0.Add(6 * day)}); len(evs) != 0 {
			t.Fatalf("decided %v", names(evs))
		}
	})
	t.Run("not sent in time: rejected", func(t *testing.T) {
		due := t0.Add(18 * day)
		evs := mustDecide(t, given, domain.Expire{ClaimID: claimID, State: domain.StateReturnAuthorised, DueAt: due, Now: due})
		wantNames(t, evs, "ClaimRejected", "ClaimClosed")
	})
	t.Run("not received by the vendor in time: refunded", func(t *testing.T) {
		due := t0.Add(26 * day)
		evs := mustDecide(t, shipped, domain.Expire{ClaimID: claimID, State: domain.StateReturnInTransit, DueAt: due, Now: due})
		wantNames(t, evs, "ClaimResolved", "RefundIssued", "ClaimClosed")
	})
	t.Run("no withdrawing with the parcel on its way", func(t *testing.T) {
		_, err := decide(t, shipped, domain.Withdraw{ClaimID: claimID, Now: t0.Add(6 * day)})
		estest.WantErr(t, err, estest.Precondition(domain.ReasonReturnInTransit))
		wantNames(t, mustDecide(t, given, domain.Withdraw{ClaimID: claimID, Now: t0.Add(6 * day)}), "ClaimClosed")
	})
	t.Run("no return for a parcel never received", func(t *testing.T) {
		nr := mustDecide(t, nil, open(deliveredWorld(false), "v1", notReceived, 4*day, lines(line("1", 2)), nil))
		_, err := decide(t, nr, domain.Respond{ClaimID: claimID, Response: domain.ResponseReturn, Policy: policy, Now: t0.Add(5 * day)})
		estest.WantErr(t, err, estest.Precondition(domain.ReasonReturnNotPossible))
	})
}

// TestRefundCap: what a line can still refund caps later claims on it, and
// the order's refunds never exceed what was captured.
func TestRefundCap(t *testing.T) {
	w := deliveredWorld(true)
	first := mustDecide(t, nil, open(w, "v1", damaged, 4*day, lines(line("1", 2)), photo))
	hist := append(slices.Clone(first), mustDecide(t, first, domain.Resolve{ClaimID: claimID, Decision: domain.DecisionRefundPartial,
		Amount: eur(1500), Rationale: "scratches", By: "support:s1", Policy: policy, Now: t0.Add(5 * day)})...)
	second := open(w, "v1", counterfeit, 5*day, lines(line("1", 2)), &trustv1.Evidence{SerialNumbers: []string{"SN-9"}})
	second.ClaimID = "o1_c0000000000000002"
	evs := mustDecide(t, hist, second)
	if o := find[*trustv1.ClaimOpened](t, evs); o.GetClaimedAmount().GetAmountMinor() != 500 {
		t.Fatalf("second claim claims %v; 500 of line 1 is left", o.GetClaimedAmount())
	}
	hist = append(hist, evs...)
	evs = mustDecide(t, hist, domain.Resolve{ClaimID: second.ClaimID, Decision: domain.DecisionRefundFull, Rationale: "fake",
		CounterfeitConfirmed: true, By: "support:s1", Policy: policy, Now: t0.Add(6 * day)})
	if r := find[*trustv1.RefundIssued](t, evs); r.GetAmount().GetAmountMinor() != 500 || r.GetOrderRefundedTotal().GetAmountMinor() != 2000 || r.GetRefundId() != "o1_f2" {
		t.Fatalf("refund %v", r)
	}
	hist = append(hist, evs...)
	third := open(w, "v1", damaged, 6*day, lines(line("1", 1)), photo)
	third.ClaimID = "o1_c0000000000000003"
	_, err := decide(t, hist, third)
	estest.WantErr(t, err, estest.Precondition(domain.ReasonLineRefunded))

	// Whatever sequence of decisions, the ledger never passes the capture.
	cs := domain.Claims.Initial("o1")
	for _, e := range hist {
		cs = domain.EvolveCase(cs, e)
	}
	if cs.Refunded != eur(2000) || cs.LineRefunded["1"] != 2000 || cs.Captured != eur(3200) {
		t.Fatalf("ledger %v %v %v", cs.Refunded, cs.LineRefunded, cs.Captured)
	}
}

func TestIDs(t *testing.T) {
	id := domain.ClaimID("b1", "o-7_x", "r1")
	if id != domain.ClaimID("b1", "o-7_x", "r1") || id == domain.ClaimID("b2", "o-7_x", "r1") {
		t.Fatal("claim ids are not derived from buyer, order and request")
	}
	if o, ok := domain.OrderOfClaim(id); !ok || o != "o-7_x" {
		t.Fatalf("OrderOfClaim(%s) = %s, %v", id, o, ok)
	}
	for _, bad := range []string{"", "o1", "_c0123456789abcdef", "o1_c0123", "o1_c0123456789ABCDEF"} {
		if _, ok := domain.OrderOfClaim(bad); ok {
			t.Errorf("OrderOfClaim(%q) accepted", bad)
		}
	}
	seen := map[string]string{}
	for _, v := range []string{"v1", "acme.eu", "acme_eu", "acme__eu", "a.b_c", strings.Repeat("x.", 64)} {
		id := domain.TrustAggregateID(v)
		if prev, ok := seen[id]; ok {
			t.Errorf("vendors %q and %q share trust stream %q", prev, v, id)
		}
		seen[id] = v
		if !regexpStreamID.MatchString(id) {
			t.Errorf("TrustAggregateID(%q) = %q is not a stream id", v, id)
		}
	}
}

var regexpStreamID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// TestUnitsPerLine: a claim names units the buyer still holds — sent, not
// cancelled, not in an open claim, not settled — and nothing else.
func TestUnitsPerLine(t *testing.T) {
	w := deliveredWorld(true) // line 1: 2 units, both delivered
	first := mustDecide(t, nil, open(w, "v1", damaged, 4*day, lines(line("1", 1)), photo))
	second := func(q int64) domain.OpenClaim {
		c := open(w, "v1", changedMind, 4*day, lines(line("1", q)), nil)
		c.ClaimID = "o1_c0000000000000002"
		return c
	}
	t.Run("another claim for the unit left is admitted", func(t *testing.T) {
		evs := mustDecide(t, first, second(1))
		if o := find[*trustv1.ClaimOpened](t, evs); o.GetClaimedAmount().GetAmountMinor() != 1000 {
			t.Fatalf("claimed %v, want one unit's 10.00", o.GetClaimedAmount())
		}
	})
	t.Run("another claim for 2 units while 1 is in a claim is refused", func(t *testing.T) {
		_, err := decide(t, first, second(2))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonClaimAlreadyOpen))
	})
	t.Run("units refunded in full are not claimable again", func(t *testing.T) {
		hist := append(slices.Clone(first), mustDecide(t, first, domain.Respond{ClaimID: claimID, Response: domain.ResponseAccept,
			Policy: policy, Now: t0.Add(5 * day)})...)
		_, err := decide(t, hist, second(2))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonUnitsNotHeld))
		mustDecide(t, hist, second(1))
	})

	// Line 1: one of its 2 units cancelled before shipping, the other
	// shipped and delivered.
	cw := &world{}
	cw.add("e-confirmed", confirmed())
	cw.add("e-lines-cancelled", &orderv1.OrderLinesCancelled{OrderId: "o1", Lines: []*orderv1.CancelledLine{
		{LineId: "1", SkuId: "p1-a", VendorId: "v1", Quantity: 1, Amount: pm(eur(1000))}}, Refund: pm(eur(1000)), RefundedTotal: pm(eur(1000))})
	cw.add("e-lines-cancelled", &orderv1.OrderLinesCancelled{OrderId: "o1", Lines: []*orderv1.CancelledLine{ // redelivered: counted once
		{LineId: "1", SkuId: "p1-a", VendorId: "v1", Quantity: 1, Amount: pm(eur(1000))}}, Refund: pm(eur(1000)), RefundedTotal: pm(eur(1000))})
	cw.add("e-shipped", &fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1",
		Carrier: "dhl", TrackingNumber: "DHL123", FullyShipped: true, ShipTime: ts(day), ExpectedDeliveryTime: ts(3 * day),
		Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 1}, {LineId: "2", Quantity: 1}}})
	cw.add("e-delivered", &fulfilmentv1.FulfilmentDelivered{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", BuyerId: "b1", DeliverTime: ts(3 * day)})
	u := domain.UnitsOf(domain.Case{}, cw.record("v1"), "1")
	if u != (domain.LineUnits{Ordered: 2, Cancelled: 1, Shipped: 1, Delivered: 1}) || u.Claimable() != 1 {
		t.Fatalf("units of line 1: %+v, claimable %d", u, u.Claimable())
	}
	t.Run("cancelled units are not claimable", func(t *testing.T) {
		_, err := decide(t, nil, open(cw, "v1", damaged, 4*day, lines(line("1", 2)), photo))
		estest.WantErr(t, err, estest.Precondition(domain.ReasonUnitsCancelled))
		mustDecide(t, nil, open(cw, "v1", damaged, 4*day, lines(line("1", 1)), photo))
	})
	t.Run("the units of a part cancelled before shipping are cancelled", func(t *testing.T) {
		pw := &world{}
		pw.add("e-confirmed", confirmed())
		pw.add("e-requested", &fulfilmentv1.FulfilmentRequested{FulfilmentId: "f2", OrderId: "o1", VendorId: "v2", BuyerId: "b1",
			Lines: []*fulfilmentv1.ShippedLine{{LineId: "3", Quantity: 1}}, ShipByTime: ts(2 * day), RequestTime: ts(0)})
		pw.add("e-cancelled", &fulfilmentv1.FulfilmentCancelled{FulfilmentId: "f2", OrderId: "o1", VendorId: "v2", Reason: "ship-by missed"})
		if u := domain.UnitsOf(domain.Case{}, pw.record("v2"), "3"); u.Cancelled != 1 || u.Claimable() != 0 {
			t.Fatalf("units of line 3: %+v", u)
		}
	})
}
