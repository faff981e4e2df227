package domain_test

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/money"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/domain"
)

var (
	t0  = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	day = 24 * time.Hour
)

func eur(minor int64) money.Money { return money.MustNew("EUR", minor) }
func ts(d time.Duration) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(d))
}

// The fixture order o1 (EUR, fee 500 bps):
//
//	v1 line 1: 20.00, creator c1 at 1000 bps -> commission 2.00, fee 1.00, vendor 17.00
//	v1 line 2:  9.99, no creator             -> fee 0.49 (0.4995 floored), vendor 9.50
//	v2 line 3: 15.00, no creator             -> fee 0.75, vendor 14.25
//
// v1's part: 29.99 = commission 2.00 + fee 1.49 + vendor 26.50; at the
// standard tier's 500 bps its reserve is 1.32 (1.325 floored), net 25.18.
func capture() domain.Capture {
	return domain.Capture{
		Cause:   domain.Cause{EventID: "ev-confirmed", Type: "custody.order.v1.OrderConfirmed"},
		BuyerID: "b1", Total: eur(4499), PSPReference: "psp-1",
		Lines: []domain.CapturedLine{
			{LineID: "1", VendorID: "v1", CreatorID: "c1", Total: eur(2000), CommissionBps: 1000},
			{LineID: "2", VendorID: "v1", Total: eur(999)},
			{LineID: "3", VendorID: "v2", Total: eur(1500)},
		},
		Parts:       []domain.CapturedPart{{VendorID: "v1", LineIDs: []string{"1", "2"}}, {VendorID: "v2", LineIDs: []string{"3"}}},
		ConfirmTime: t0, FeeBps: 500, Time: t0,
	}
}

// given folds commands (not events) into a ledger: the tests read as the
// story of an order.
func given(t *testing.T, cmds ...domain.Command) domain.Ledger {
	t.Helper()
	l := domain.LedgerDecider.Initial("o1")
	for _, c := range cmds {
		evs, err := domain.DecideLedger(l, c)
		if err != nil {
			t.Fatalf("given %T: %v", c, err)
		}
		for _, e := range evs {
			l = domain.EvolveLedger(l, e)
		}
	}
	return l
}

func deliver(vendor string, d time.Duration) domain.Deliver {
	return domain.Deliver{Cause: domain.Cause{EventID: "ev-delivered-" + vendor}, VendorID: vendor, FulfilmentID: "f-" + vendor,
		DeliverTime: t0.Add(d), Tier: domain.TierStandard, Window: 7 * day, Time: t0.Add(d)}
}

var standard = domain.ReleaseTerms{Tier: domain.TierStandard, ReserveBps: 500, ReserveHold: 30 * day}

func closeWindow(vendor string, d time.Duration) domain.CloseWindow {
	return domain.CloseWindow{Cause: domain.Cause{EventID: "window/o1/" + vendor, Type: domain.CauseReturnWindow}, VendorID: vendor, Release: standard, Time: t0.Add(d)}
}

func openClaim(id, vendor string, d time.Duration) domain.OpenClaim {
	return domain.OpenClaim{Cause: domain.Cause{EventID: "ev-open-" + id}, ClaimID: id, VendorID: vendor, Amount: eur(999), Time: t0.Add(d)}
}

func closeClaim(id, vendor string, d time.Duration) domain.CloseClaim {
	return domain.CloseClaim{Cause: domain.Cause{EventID: "ev-close-" + id}, ClaimID: id, VendorID: vendor, Outcome: "rejected", Release: standard, Time: t0.Add(d)}
}

func refund(id, vendor string, amount int64, d time.Duration, lines ...domain.LineAmount) domain.Refund {
	return domain.Refund{Cause: domain.Cause{EventID: "ev-" + id, Type: "custody.trust.v1.RefundIssued"}, RefundID: id, VendorID: vendor,
		Amount: eur(amount), Lines: lines, Time: t0.Add(d)}
}

func cancelled(line, vendor string, amount int64) domain.CancelledLine {
	return domain.CancelledLine{LineID: line, VendorID: vendor, Amount: eur(amount)}
}

func cancelLines(id string, closed []string, lines ...domain.CancelledLine) domain.CancelLines {
	return domain.CancelLines{Cause: domain.Cause{EventID: id, Type: "custody.order.v1.OrderLinesCancelled"}, CancellationID: id,
		Lines: lines, ClosedVendorIDs: closed, Reason: "buyer", Time: t0.Add(time.Hour)}
}

// posted summarises a decision's transactions as "KIND account=amount …",
// one line per transaction, postings sorted.
func posted(events []proto.Message) string {
	var out []string
	for _, e := range events {
		t, ok := e.(*payoutsv1.TransactionPosted)
		if !ok {
			continue
		}
		var ps []string
		for _, p := range t.GetPostings() {
			ps = append(ps, fmt.Sprintf("%s=%d", p.GetAccount(), p.GetAmount().GetAmountMinor()))
		}
		slices.Sort(ps)
		out = append(out, strings.TrimPrefix(t.GetKind().String(), "TRANSACTION_KIND_")+" "+strings.Join(ps, " "))
	}
	return strings.Join(out, "\n")
}

// facts lists the non-transaction events' types.
func facts(events []proto.Message) []string {
	var out []string
	for _, e := range events {
		if _, ok := e.(*payoutsv1.TransactionPosted); !ok {
			out = append(out, string(e.ProtoReflect().Descriptor().Name()))
		}
	}
	return out
}

func TestLedgerDecide(t *testing.T) {
	badTotal := capture()
	badTotal.Total = eur(4498)
	badPart := capture()
	badPart.Parts = []domain.CapturedPart{{VendorID: "v1", LineIDs: []string{"1", "3"}}, {VendorID: "v2", LineIDs: []string{"2"}}}
	noParts := capture()
	noParts.Parts = nil
	unattributed := capture() // the order recorded no creator on line 1
	unattributed.Lines = slices.Clone(unattributed.Lines)
	unattributed.Lines[0].CreatorID = ""
	greedy := capture()
	greedy.Lines = slices.Clone(greedy.Lines)
	greedy.Lines[0].CommissionBps = 9800 // commission + fee would pass 100%: the fee yields

	tests := []struct {
		name  string
		given []domain.Command
		when  domain.Command
		facts []string
		then  string // posted(...)
		err   error
	}{
		{name: "capture books the payment into each vendor's escrow",
			when:  capture(),
			facts: []string{"FundsEscrowed"},
			then:  "CAPTURE buyers:payments=-4499 vendor:v1:escrow=2999 vendor:v2:escrow=1500"},
		{name: "without parts, one part per vendor", when: noParts, facts: []string{"FundsEscrowed"},
			then: "CAPTURE buyers:payments=-4499 vendor:v1:escrow=2999 vendor:v2:escrow=1500"},
		{name: "capture again books nothing", given: []domain.Command{capture()}, when: capture()},
		{name: "lines that do not add up to the total are refused", when: badTotal, err: estest.Invalid("total")},
		{name: "a part naming another vendor's line is refused", when: badPart, err: estest.Invalid("parts[0].line_ids[1]", "parts[1].line_ids[0]")},
		{name: "delivery before capture is retried later", when: deliver("v1", day), err: domain.ErrNotCaptured},
		{name: "a cancellation before capture books nothing", when: domain.Cancel{VendorID: "", Time: t0}},
		{name: "delivery splits the part's escrow into pending shares",
			given: []domain.Command{capture()}, when: deliver("v1", day),
			facts: []string{"ReturnWindowStarted"},
			then:  "DELIVERY creator:c1:pending=200 platform:pending=149 vendor:v1:escrow=-2999 vendor:v1:pending=2650"},
		{name: "delivery for a vendor without a part is an error", given: []domain.Command{capture()}, when: deliver("v9", day),
			err: &domain.UnknownPartError{OrderID: "o1", VendorID: "v9"}},
		{name: "a second delivery books nothing", given: []domain.Command{capture(), deliver("v1", day)}, when: deliver("v1", 2*day)},
		{name: "a claim before delivery holds without moving money",
			given: []domain.Command{capture()}, when: openClaim("cl1", "v1", time.Hour), facts: []string{"ClaimHoldPlaced"}},
		{name: "delivery under an open claim goes to held",
			given: []domain.Command{capture(), openClaim("cl1", "v1", time.Hour)}, when: deliver("v1", day),
			facts: []string{"ReturnWindowStarted"},
			then:  "DELIVERY creator:c1:pending=200 platform:pending=149 vendor:v1:escrow=-2999 vendor:v1:held=2650"},
		{name: "a claim in the window moves the vendor's share to held",
			given: []domain.Command{capture(), deliver("v1", day)}, when: openClaim("cl1", "v1", 2*day),
			facts: []string{"ClaimHoldPlaced"},
			then:  "HOLD vendor:v1:held=2650 vendor:v1:pending=-2650"},
		{name: "a second claim holds what is held already",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day)}, when: openClaim("cl2", "v1", 2*day),
			facts: []string{"ClaimHoldPlaced"}},
		{name: "the same claim again books nothing",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day)}, when: openClaim("cl1", "v1", 3*day)},
		{name: "the window closing early is retried",
			given: []domain.Command{capture(), deliver("v1", day)}, when: closeWindow("v1", 8*day-time.Second), err: domain.ErrTooEarly},
		{name: "the window closing with no claim releases net, reserve, commission and fee",
			given: []domain.Command{capture(), deliver("v1", day)}, when: closeWindow("v1", 8*day),
			facts: []string{"ReturnWindowClosed", "FundsReleased"},
			then: "RELEASE creator:c1:available=200 creator:c1:pending=-200 platform:fees=149 platform:pending=-149 " +
				"vendor:v1:available=2518 vendor:v1:pending=-2650 vendor:v1:reserve=132"},
		{name: "the window closing under an open claim releases nothing",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day)}, when: closeWindow("v1", 8*day),
			facts: []string{"ReturnWindowClosed"}},
		{name: "the last claim closing after the window lifts the hold and releases",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day), closeWindow("v1", 8*day)},
			when:  closeClaim("cl1", "v1", 9*day),
			facts: []string{"ClaimHoldLifted", "FundsReleased"},
			then: "UNHOLD vendor:v1:held=-2650 vendor:v1:pending=2650\n" +
				"RELEASE creator:c1:available=200 creator:c1:pending=-200 platform:fees=149 platform:pending=-149 " +
				"vendor:v1:available=2518 vendor:v1:pending=-2650 vendor:v1:reserve=132"},
		{name: "a claim closing while another is open keeps the hold",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day), openClaim("cl2", "v1", 2*day), closeWindow("v1", 8*day)},
			when:  closeClaim("cl1", "v1", 9*day), facts: []string{"ClaimHoldLifted"}},
		{name: "a claim after release holds nothing",
			given: []domain.Command{capture(), deliver("v1", day), closeWindow("v1", 8*day)}, when: openClaim("cl1", "v1", 9*day)},
		{name: "the window closing twice books nothing",
			given: []domain.Command{capture(), deliver("v1", day), closeWindow("v1", 8*day)}, when: closeWindow("v1", 9*day)},
		{name: "a refund before delivery comes out of escrow",
			given: []domain.Command{capture()}, when: refund("r1", "v1", 999, time.Hour),
			facts: []string{"RefundApplied"},
			then:  "REFUND buyers:refunds=999 vendor:v1:escrow=-999"},
		{name: "a refund in the window comes out of the pending shares, pro rata",
			given: []domain.Command{capture(), deliver("v1", day)}, when: refund("r1", "v1", 1000, 2*day, domain.LineAmount{LineID: "1", Amount: eur(1000)}),
			facts: []string{"RefundApplied"},
			// line 1 keeps 10.00: commission 1.00, fee 0.50, vendor 8.50
			then: "REFUND buyers:refunds=1000 creator:c1:pending=-100 platform:pending=-50 vendor:v1:pending=-850"},
		{name: "a refund while held comes out of held",
			given: []domain.Command{capture(), deliver("v1", day), openClaim("cl1", "v1", 2*day)}, when: refund("r1", "v1", 999, 3*day, domain.LineAmount{LineID: "2", Amount: eur(999)}),
			facts: []string{"RefundApplied"},
			then:  "REFUND buyers:refunds=999 platform:pending=-49 vendor:v1:held=-950"},
		{name: "a refund after release is clawed back from available balances and fees",
			given: []domain.Command{capture(), deliver("v1", day), closeWindow("v1", 8*day)}, when: refund("r1", "v1", 2999, 10*day),
			facts: []string{"RefundApplied"},
			then:  "CLAWBACK buyers:refunds=2999 creator:c1:available=-200 platform:fees=-149 vendor:v1:available=-2650"},
		{name: "a refund beyond what is left books what is left",
			given: []domain.Command{capture(), refund("r1", "v2", 1000, time.Hour)}, when: refund("r2", "v2", 900, 2*time.Hour),
			facts: []string{"RefundApplied"},
			then:  "REFUND buyers:refunds=500 vendor:v2:escrow=-500"},
		{name: "the same refund id again books nothing",
			given: []domain.Command{capture(), refund("r1", "v2", 1000, time.Hour)}, when: refund("r1", "v2", 1000, 2*time.Hour)},
		{name: "a refund of nothing is refused",
			given: []domain.Command{capture()}, when: refund("r1", "v2", 0, time.Hour), err: estest.Invalid("amount")},
		{name: "a cancellation returns every undelivered part's escrow",
			given: []domain.Command{capture(), deliver("v2", day)}, when: domain.Cancel{Cause: domain.Cause{EventID: "ev-cancel"}, Reason: "buyer", Time: t0.Add(day)},
			facts: []string{"EscrowReturned"},
			then:  "CANCELLATION buyers:refunds=2999 vendor:v1:escrow=-2999"},
		{name: "a part's cancellation returns its escrow net of refunds",
			given: []domain.Command{capture(), refund("r1", "v1", 999, time.Hour)}, when: domain.Cancel{Cause: domain.Cause{EventID: "ev-cancel"}, VendorID: "v1", Time: t0.Add(day)},
			facts: []string{"EscrowReturned"},
			then:  "CANCELLATION buyers:refunds=2000 vendor:v1:escrow=-2000"},
		{name: "a refund on a cancelled part moves nothing",
			given: []domain.Command{capture(), domain.Cancel{VendorID: "v1", Time: t0}}, when: refund("r1", "v1", 999, time.Hour),
			facts: []string{"RefundApplied"}},
		{name: "cancelled units of a line return their price from escrow",
			given: []domain.Command{capture()}, when: cancelLines("x1", nil, cancelled("1", "v1", 1000)),
			facts: []string{"RefundApplied"},
			then:  "CANCELLATION buyers:refunds=1000 vendor:v1:escrow=-1000"},
		{name: "the split of the part at delivery follows the units that remain",
			given: []domain.Command{capture(), cancelLines("x1", nil, cancelled("1", "v1", 1000))}, when: deliver("v1", day),
			facts: []string{"ReturnWindowStarted"},
			// line 1: 10.00 left -> commission 1.00, fee 0.50, vendor 8.50; line 2: fee 0.49, vendor 9.50
			then: "DELIVERY creator:c1:pending=100 platform:pending=99 vendor:v1:escrow=-1999 vendor:v1:pending=1800"},
		{name: "the same cancellation again books nothing",
			given: []domain.Command{capture(), cancelLines("x1", nil, cancelled("1", "v1", 1000))}, when: cancelLines("x1", nil, cancelled("1", "v1", 1000))},
		{name: "cancellations of one line never return more than it has left",
			given: []domain.Command{capture(), cancelLines("x1", nil, cancelled("1", "v1", 1500))}, when: cancelLines("x2", nil, cancelled("1", "v1", 1000)),
			facts: []string{"RefundApplied"},
			then:  "CANCELLATION buyers:refunds=500 vendor:v1:escrow=-500"},
		{name: "lines of two vendors: one transaction per part",
			given: []domain.Command{capture()}, when: cancelLines("x1", nil, cancelled("3", "v2", 500), cancelled("2", "v1", 999)),
			facts: []string{"RefundApplied", "RefundApplied"},
			then:  "CANCELLATION buyers:refunds=999 vendor:v1:escrow=-999\nCANCELLATION buyers:refunds=500 vendor:v2:escrow=-500"},
		{name: "a part with every unit cancelled is settled as cancelled",
			given: []domain.Command{capture()}, when: cancelLines("x1", []string{"v2"}, cancelled("3", "v2", 1500)),
			facts: []string{"RefundApplied", "EscrowReturned"},
			then:  "CANCELLATION buyers:refunds=1500 vendor:v2:escrow=-1500"},
		{name: "a part settled as cancelled is never delivered",
			given: []domain.Command{capture(), cancelLines("x1", []string{"v2"}, cancelled("3", "v2", 1500))}, when: deliver("v2", day)},
		{name: "a later cancellation of the order returns only what is left in escrow",
			given: []domain.Command{capture(), cancelLines("x1", nil, cancelled("1", "v1", 1000))},
			when:  domain.Cancel{Cause: domain.Cause{EventID: "ev-cancel"}, Reason: "buyer", Time: t0.Add(day)},
			facts: []string{"EscrowReturned", "EscrowReturned"},
			then:  "CANCELLATION buyers:refunds=1999 vendor:v1:escrow=-1999\nCANCELLATION buyers:refunds=1500 vendor:v2:escrow=-1500"},
		{name: "lines of a part whose fulfilment was cancelled first return nothing more",
			given: []domain.Command{capture(), domain.Cancel{VendorID: "v2", Time: t0}}, when: cancelLines("x1", []string{"v2"}, cancelled("3", "v2", 1500)),
			facts: []string{"RefundApplied"}},
		{name: "lines booked after their part's delivery come out of the pending shares",
			given: []domain.Command{capture(), deliver("v1", day)}, when: cancelLines("x1", nil, cancelled("1", "v1", 1000)),
			facts: []string{"RefundApplied"},
			then:  "CANCELLATION buyers:refunds=1000 creator:c1:pending=-100 platform:pending=-50 vendor:v1:pending=-850"},
		{name: "a cancellation of a line the order does not have is refused",
			given: []domain.Command{capture()}, when: cancelLines("x1", []string{"v9"}, cancelled("3", "v1", 100), cancelled("1", "v1", 0)),
			err: estest.Invalid("lines[0].line_id", "lines[1].amount", "closed_vendor_ids[0]")},
		{name: "a cancellation of lines before capture is retried later",
			when: cancelLines("x1", nil, cancelled("1", "v1", 1000)), err: domain.ErrNotCaptured},
		{name: "the reserve is not released before its hold ends",
			given: []domain.Command{capture(), deliver("v1", day), closeWindow("v1", 8*day)},
			when:  domain.ReleaseReserve{VendorID: "v1", Time: t0.Add(38*day - time.Second)}, err: domain.ErrTooEarly},
		{name: "the reserve is released when its hold ends",
			given: []domain.Command{capture(), deliver("v1", day), closeWindow("v1", 8*day)},
			when:  domain.ReleaseReserve{Cause: domain.Cause{EventID: "reserve/o1/v1"}, VendorID: "v1", Time: t0.Add(38 * day)},
			facts: []string{"ReserveReleased"},
			then:  "RESERVE_RELEASE vendor:v1:available=132 vendor:v1:reserve=-132"},
		{name: "a line the order recorded no creator on earns no commission",
			given: []domain.Command{unattributed}, when: deliver("v1", day), facts: []string{"ReturnWindowStarted"},
			// line 1: fee 1.00, vendor 19.00 (its rate is ignored without a creator); line 2 as before
			then: "DELIVERY platform:pending=149 vendor:v1:escrow=-2999 vendor:v1:pending=2850"},
		{name: "commission near 100% leaves the fee what remains",
			given: []domain.Command{greedy}, when: deliver("v1", day), facts: []string{"ReturnWindowStarted"},
			// line 1: commission 19.60, fee 0.40 (200 bps left), vendor 0; line 2: fee 0.49, vendor 9.50
			then: "DELIVERY creator:c1:pending=1960 platform:pending=89 vendor:v1:escrow=-2999 vendor:v1:pending=950"},
		{name: "a line the order recorded a creator on earns commission",
			given: []domain.Command{capture()}, when: deliver("v1", day), facts: []string{"ReturnWindowStarted"},
			then: "DELIVERY creator:c1:pending=200 platform:pending=149 vendor:v1:escrow=-2999 vendor:v1:pending=2650"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := given(t, tt.given...)
			got, err := domain.DecideLedger(l, tt.when)
			estest.WantErr(t, err, tt.err)
			if err != nil && len(got) > 0 {
				t.Fatalf("refused with events %v", got)
			}
			if f := facts(got); !slices.Equal(f, tt.facts) {
				t.Errorf("facts %v, want %v", f, tt.facts)
			}
			if p := posted(got); p != tt.then {
				t.Errorf("posted\n  %s\nwant\n  %s", strings.ReplaceAll(p, "\n", "\n  "), strings.ReplaceAll(tt.then, "\n", "\n  "))
			}
		})
	}
}

// The facts carry what was decided, exactly.
func TestLedgerFacts(t *testing.T) {
	got, err := domain.DecideLedger(given(t), capture())
	if err != nil {
		t.Fatal(err)
	}
	want := &payoutsv1.FundsEscrowed{OrderId: "o1", BuyerId: "b1", Total: eur(4499).ToProto(), PspReference: "psp-1",
		CaptureTime: ts(0), EscrowTime: ts(0),
		Parts: []*payoutsv1.PartSplit{
			{VendorId: "v1", Subtotal: eur(2999).ToProto(), Commission: eur(200).ToProto(), Fee: eur(149).ToProto(), VendorShare: eur(2650).ToProto(),
				Lines: []*payoutsv1.LineSplit{
					{LineId: "1", CreatorId: "c1", LineTotal: eur(2000).ToProto(), CommissionBps: 1000, Commission: eur(200).ToProto(), FeeBps: 500, Fee: eur(100).ToProto(), VendorShare: eur(1700).ToProto()},
					{LineId: "2", LineTotal: eur(999).ToProto(), Commission: eur(0).ToProto(), FeeBps: 500, Fee: eur(49).ToProto(), VendorShare: eur(950).ToProto()},
				}},
			{VendorId: "v2", Subtotal: eur(1500).ToProto(), Commission: eur(0).ToProto(), Fee: eur(75).ToProto(), VendorShare: eur(1425).ToProto(),
				Lines: []*payoutsv1.LineSplit{
					{LineId: "3", LineTotal: eur(1500).ToProto(), Commission: eur(0).ToProto(), FeeBps: 500, Fee: eur(75).ToProto(), VendorShare: eur(1425).ToProto()},
				}},
		}}
	if !proto.Equal(got[0], want) {
		t.Errorf("FundsEscrowed\n got %s\nwant %s", prototext.Format(got[0]), prototext.Format(want))
	}
	tx := got[1].(*payoutsv1.TransactionPosted)
	if tx.GetTransactionId() != domain.TransactionID(payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE, "o1") ||
		tx.GetCauseEventId() != "ev-confirmed" || tx.GetCauseType() != "custody.order.v1.OrderConfirmed" || tx.GetOrderId() != "o1" {
		t.Errorf("capture transaction %v", tx)
	}

	released := given(t, capture(), deliver("v1", day))
	got, err = domain.DecideLedger(released, closeWindow("v1", 8*day))
	if err != nil {
		t.Fatal(err)
	}
	wantRel := &payoutsv1.FundsReleased{OrderId: "o1", VendorId: "v1", VendorNet: eur(2518).ToProto(), Reserve: eur(132).ToProto(),
		ReserveBps: 500, Tier: domain.TierStandard, PlatformFee: eur(149).ToProto(),
		Commissions:        []*payoutsv1.CreatorAmount{{CreatorId: "c1", Amount: eur(200).ToProto()}},
		ReserveReleaseTime: ts(38 * day), ReleaseTime: ts(8 * day)}
	if !proto.Equal(got[1], wantRel) {
		t.Errorf("FundsReleased\n got %s\nwant %s", prototext.Format(got[1]), prototext.Format(wantRel))
	}

	// The split follows what the order recorded, and needs no note.
	unattributed := capture()
	unattributed.Lines = slices.Clone(unattributed.Lines)
	unattributed.Lines[0].CreatorID = ""
	for _, tt := range []struct {
		c       domain.Capture
		creator string
		comm    int64
	}{{capture(), "c1", 200}, {unattributed, "", 0}} {
		got, _ = domain.DecideLedger(given(t), tt.c)
		fe := got[0].(*payoutsv1.FundsEscrowed)
		if fe.GetCommissionNote() != "" || fe.GetParts()[0].GetCommission().GetAmountMinor() != tt.comm || fe.GetParts()[0].GetLines()[0].GetCreatorId() != tt.creator {
			t.Errorf("creator %q: %v", tt.creator, fe)
		}
	}
}

// Validation names the offending fields of OrderConfirmed.
func TestCaptureValidation(t *testing.T) {
	mutate := func(f func(*domain.Capture)) domain.Capture {
		c := capture()
		c.Lines = slices.Clone(c.Lines)
		c.Parts = slices.Clone(c.Parts)
		f(&c)
		return c
	}
	tests := []struct {
		c     domain.Capture
		field string
	}{
		{mutate(func(c *domain.Capture) { c.Total = money.Money{Currency: "XYZ", Minor: 4499} }), "total.currency_code"},
		{mutate(func(c *domain.Capture) { c.Lines = nil; c.Parts = nil; c.Total = eur(0) }), "lines"},
		{mutate(func(c *domain.Capture) { c.Lines[1].LineID = "1" }), "lines[1].line_id"},
		{mutate(func(c *domain.Capture) { c.Lines[0].VendorID = "v:1" }), "lines[0].vendor_id"},
		{mutate(func(c *domain.Capture) { c.Lines[0].CreatorID = "c 1" }), "lines[0].creator_id"},
		{mutate(func(c *domain.Capture) { c.Lines[2].Total = money.MustNew("USD", 1500) }), "lines[2].line_total"},
		{mutate(func(c *domain.Capture) { c.Lines[2].Total = eur(-1); c.Total = eur(2998) }), "lines[2].line_total"},
		{mutate(func(c *domain.Capture) { c.Lines[0].CommissionBps = 10001 }), "lines[0].commission_bps"},
		{mutate(func(c *domain.Capture) { c.FeeBps = -1 }), "fee_bps"},
		{mutate(func(c *domain.Capture) { c.Total = eur(1) }), "total"},
		// Beyond the largest order total (money.MaxAmount): an order from
		// before prices were bounded, such as the reported one at 2^63-1.
		{mutate(func(c *domain.Capture) {
			c.Lines[0].Total = eur(money.MaxAmount - 2498)
			c.Total = eur(money.MaxAmount + 1)
		}), "total.amount_minor"},
		{mutate(func(c *domain.Capture) { c.Lines[0].Total = eur(math.MaxInt64 - 2499); c.Total = eur(math.MaxInt64) }), "total.amount_minor"},
		// Lines whose sum wraps around to the total are refused, not booked.
		{mutate(func(c *domain.Capture) {
			c.Lines[0].Total, c.Lines[1].Total, c.Lines[2].Total, c.Total = eur(math.MaxInt64), eur(math.MaxInt64), eur(2), eur(0)
		}), "lines[1].line_total"},
		{mutate(func(c *domain.Capture) { c.Parts[1].VendorID = "v1" }), "parts[1].vendor_id"},
		{mutate(func(c *domain.Capture) { c.Parts[1].LineIDs = []string{"9"} }), "parts[1].line_ids[0]"},
		{mutate(func(c *domain.Capture) { c.Parts[1].LineIDs = nil }), "lines[2]"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := domain.DecideLedger(given(t), tt.c)
			var ie *domain.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want invalid", err)
			}
			var fields []string
			for _, v := range ie.Violations {
				fields = append(fields, v.Field)
			}
			if !slices.Contains(fields, tt.field) {
				t.Fatalf("violations %v (%v) do not name %s", fields, err, tt.field)
			}
		})
	}
}

// Refunds of a line in any steps reverse exactly what was split, and the
// named lines are used when they are consistent, else the refund is spread
// over the part's lines in proportion to what they have left.
func TestRefundAllocation(t *testing.T) {
	l := given(t, capture(), deliver("v1", day), closeWindow("v1", 8*day))
	// 29.99 in three steps, unnamed: 10.00, 10.00, 9.99.
	sum := map[string]int64{}
	for i, amount := range []int64{1000, 1000, 999} {
		evs, err := domain.DecideLedger(l, refund(fmt.Sprint("r", i), "v1", amount, 10*day))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			l = domain.EvolveLedger(l, e)
			if tx, ok := e.(*payoutsv1.TransactionPosted); ok {
				for _, p := range tx.GetPostings() {
					sum[p.GetAccount()] += p.GetAmount().GetAmountMinor()
				}
			}
		}
	}
	want := map[string]int64{domain.BuyerRefunds: 2999, "creator:c1:available": -200, domain.PlatformFees: -149, "vendor:v1:available": -2650}
	if !maps.Equal(sum, want) {
		t.Errorf("three refunds clawed back %v, want exactly the split %v", sum, want)
	}
	for _, ln := range l.Parts[0].Lines {
		if ln.Refunded != ln.Total {
			t.Errorf("line %s refunded %s of %s", ln.ID, ln.Refunded, ln.Total)
		}
	}

	// Proportional: 15.00 over lines of 20.00 and 9.99 left: 10.0033… and
	// 4.9966… floor to 10.00 and 4.99; the cent left over goes to the larger
	// remainder: 10.00 and 5.00.
	l = given(t, capture())
	evs, _ := domain.DecideLedger(l, refund("r1", "v1", 1500, time.Hour))
	ra := evs[0].(*payoutsv1.RefundApplied)
	if len(ra.GetLines()) != 2 || ra.GetLines()[0].GetAmount().GetAmountMinor() != 1000 || ra.GetLines()[1].GetAmount().GetAmountMinor() != 500 {
		t.Errorf("proportional allocation %v", ra.GetLines())
	}
	// Named lines that do not add up to the amount are not trusted.
	evs, _ = domain.DecideLedger(l, refund("r1", "v1", 1500, time.Hour, domain.LineAmount{LineID: "2", Amount: eur(999)}))
	if ra := evs[0].(*payoutsv1.RefundApplied); len(ra.GetLines()) != 2 {
		t.Errorf("inconsistent lines were used: %v", ra.GetLines())
	}
	// Named lines beyond a line's amount are not trusted either.
	evs, _ = domain.DecideLedger(l, refund("r1", "v1", 1500, time.Hour, domain.LineAmount{LineID: "2", Amount: eur(1500)}))
	if ra := evs[0].(*payoutsv1.RefundApplied); len(ra.GetLines()) != 2 {
		t.Errorf("a line was refunded beyond its amount: %v", ra.GetLines())
	}
	// Named amounts that would wrap around int64 to add up (line 2 taking
	// -10.00 in the end, line 1 20.00, for a refund of 10.00) are not
	// trusted: the refund is spread over the lines, none negative.
	evs, _ = domain.DecideLedger(l, refund("r1", "v1", 1000, time.Hour,
		domain.LineAmount{LineID: "2", Amount: eur(999)}, domain.LineAmount{LineID: "2", Amount: eur(math.MaxInt64)},
		domain.LineAmount{LineID: "2", Amount: eur(math.MaxInt64 - 1997)}, domain.LineAmount{LineID: "1", Amount: eur(2000)}))
	for _, lr := range evs[0].(*payoutsv1.RefundApplied).GetLines() {
		if a := lr.GetAmount().GetAmountMinor(); a <= 0 || a > 1000 {
			t.Errorf("wrapped named lines were used: %v", evs[0].(*payoutsv1.RefundApplied).GetLines())
		}
	}
}

// A line cancellation reverses exactly the cancelled units' split, and the
// release pays the creator the commission of the lines that remain.
func TestLinesCancelledFacts(t *testing.T) {
	l := given(t, capture())
	got, err := domain.DecideLedger(l, cancelLines("x1", nil, cancelled("1", "v1", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	want := &payoutsv1.RefundApplied{RefundId: domain.LinesCancelledRefundID("x1"), OrderId: "o1", VendorId: "v1",
		Stage: payoutsv1.FundsStage_FUNDS_STAGE_ESCROW, Requested: eur(1000).ToProto(), Amount: eur(1000).ToProto(), Uncovered: eur(0).ToProto(),
		Lines: []*payoutsv1.LineRefund{{LineId: "1", CreatorId: "c1", Amount: eur(1000).ToProto(), Commission: eur(100).ToProto(),
			Fee: eur(50).ToProto(), VendorShare: eur(850).ToProto()}},
		RefundTime: ts(time.Hour)}
	if !proto.Equal(got[0], want) {
		t.Errorf("RefundApplied\n got %s\nwant %s", prototext.Format(got[0]), prototext.Format(want))
	}
	released := given(t, capture(), cancelLines("x1", nil, cancelled("1", "v1", 1000)), deliver("v1", day))
	got, err = domain.DecideLedger(released, closeWindow("v1", 8*day))
	if err != nil {
		t.Fatal(err)
	}
	// vendor share 18.00: reserve 0.90, net 17.10; fee 0.99; commission 1.00
	wantRel := &payoutsv1.FundsReleased{OrderId: "o1", VendorId: "v1", VendorNet: eur(1710).ToProto(), Reserve: eur(90).ToProto(),
		ReserveBps: 500, Tier: domain.TierStandard, PlatformFee: eur(99).ToProto(),
		Commissions:        []*payoutsv1.CreatorAmount{{CreatorId: "c1", Amount: eur(100).ToProto()}},
		ReserveReleaseTime: ts(38 * day), ReleaseTime: ts(8 * day)}
	if !proto.Equal(got[1], wantRel) {
		t.Errorf("FundsReleased\n got %s\nwant %s", prototext.Format(got[1]), prototext.Format(wantRel))
	}
	if r := released.Refunded(); r.Minor != 1000 {
		t.Errorf("refunded %s, want 10.00", r)
	}
}
