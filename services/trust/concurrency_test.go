package trust_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	"github.com/custody/custody/services/trust"
)

// Refund totals never exceed the captured amount, under concurrent claims
// on the same order sent to two trust processes at once: inside a process
// the order's claims aggregate serialises them, across processes
// optimistic concurrency does.
func TestConcurrentClaimsNeverRefundMoreThanCaptured(t *testing.T) {
	// A second trust process on the same NATS, as a second replica runs.
	peer := shared.Peer(t, trust.NewModule(trust.Options{}))
	second := func(roles ...string) trustv1.TrustServiceClient {
		return platformtest.Client(t, peer, trustv1.NewTrustServiceClient, roles...)
	}
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	procs := []trustv1.TrustServiceClient{as(t, "buyer:"+buyer), second("buyer:" + buyer)}
	s := confirm(t, buyer, vendor, orderLine{6, 1000}, orderLine{6, 1999}, orderLine{6, 333}, orderLine{6, 7})
	sh := ship(t, s, nil)
	scan(t, s, sh, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, nil)
	clk.Advance(3*day + time.Hour)
	captured := s.captured()

	const claims = 40
	type outcome struct {
		claim *trustv1.Claim
		err   error
	}
	results := make([]outcome, claims)
	r := rand.New(rand.NewPCG(7, 7))
	reqs := make([]*trustv1.OpenClaimRequest, claims)
	for i := range reqs {
		req := &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED}
		for _, l := range r.Perm(4)[:1+r.IntN(3)] {
			req.Lines = append(req.Lines, &trustv1.ClaimLineRequest{LineId: fmt.Sprint(l + 1), Quantity: 1 + r.Int64N(2)})
		}
		reqs[i] = req
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range claims {
		wg.Go(func() {
			<-start
			resp, err := procs[i%2].OpenClaim(t.Context(), reqs[i])
			results[i] = outcome{resp.GetClaim(), err}
		})
	}
	close(start)
	wg.Wait()

	var ok int
	var fromResponses int64
	for i, res := range results {
		switch {
		case res.err == nil:
			ok++
			if res.claim.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || res.claim.GetRefundedAmount().GetAmountMinor() != res.claim.GetClaimedAmount().GetAmountMinor() {
				t.Errorf("claim %d: %v", i, res.claim)
			}
			fromResponses += res.claim.GetRefundedAmount().GetAmountMinor()
		case status.Code(res.err) == codes.FailedPrecondition &&
			(apierr.Reason(res.err) == "LINE_FULLY_REFUNDED" || apierr.Reason(res.err) == "CLAIM_ALREADY_OPEN" || apierr.Reason(res.err) == "UNITS_NOT_HELD"):
		default:
			t.Errorf("claim %d: %v", i, res.err)
		}
	}
	if ok == 0 {
		t.Fatal("no claim succeeded")
	}

	// The stored refunds: never over the capture, never over a line, the
	// running total exact, every refund numbered once.
	lineTotal := map[string]int64{}
	for _, l := range s.lines {
		lineTotal[l.GetLineId()] = l.GetLineTotal().GetAmountMinor()
	}
	perLine := map[string]int64{}
	var sum int64
	n := 0
	for _, ev := range claimEvents(t, s.orderID) {
		ri, isRefund := ev.(*trustv1.RefundIssued)
		if !isRefund {
			continue
		}
		n++
		sum += ri.GetAmount().GetAmountMinor()
		if ri.GetRefundId() != fmt.Sprintf("%s_f%d", s.orderID, n) || ri.GetOrderRefundedTotal().GetAmountMinor() != sum ||
			ri.GetOrderCaptured().GetAmountMinor() != captured {
			t.Fatalf("refund %d: %v (running total %d)", n, ri, sum)
		}
		var lines int64
		for _, l := range ri.GetLines() {
			perLine[l.GetLineId()] += l.GetAmount().GetAmountMinor()
			lines += l.GetAmount().GetAmountMinor()
		}
		if lines != ri.GetAmount().GetAmountMinor() {
			t.Fatalf("refund %v: lines add up to %d", ri, lines)
		}
	}
	if sum > captured || sum != fromResponses || n != ok {
		t.Fatalf("refunded %d in %d refunds of %d captured; %d answered in %d claims", sum, n, captured, fromResponses, ok)
	}
	for id, v := range perLine {
		if v > lineTotal[id] {
			t.Fatalf("line %s refunded %d of %d", id, v, lineTotal[id])
		}
	}
	t.Logf("%d of %d claims refunded %d of %d captured", ok, claims, sum, captured)

	// Whatever is left is still refundable, and only that: the units not
	// refunded yet (each claim refunded its units' price in full).
	if sum < captured {
		var req = &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED}
		for id, total := range lineTotal {
			if perLine[id] < total {
				req.Lines = append(req.Lines, &trustv1.ClaimLineRequest{LineId: id, Quantity: (total - perLine[id]) / (total / 6)})
			}
		}
		resp, err := as(t, "buyer:"+buyer).OpenClaim(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetClaim().GetRefundedAmount().GetAmountMinor(); got != captured-sum {
			t.Fatalf("the last claim refunded %d, %d was left", got, captured-sum)
		}
	}
}
