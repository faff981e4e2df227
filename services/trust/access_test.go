package trust_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/money"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server/servertest"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Buyers claim only their own orders, vendors respond only on their own
// claims, only support resolves; nobody else reads a claim.
func TestAccess(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := delivered(t, buyer, vendor, nil, orderLine{1, 1000})
	open := func() *trustv1.OpenClaimRequest {
		return &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
			Lines: claimLines("1", 1), Evidence: &trustv1.Evidence{Sha256: []string{photo}}}
	}
	resp, err := as(t, "service").OpenClaim(t.Context(), open()) // checkout acting for the buyer
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetClaim().GetClaimId()
	if resp.GetClaim().GetBuyerId() != buyer {
		t.Fatalf("claim %v", resp.GetClaim())
	}
	other, otherVendor := "buyer:"+platformtest.ID("b"), "vendor:"+platformtest.ID("v")
	type call func(c trustv1.TrustServiceClient) error
	get := platformtest.Method(trustv1.TrustServiceClient.GetClaim, t.Context(), &trustv1.GetClaimRequest{ClaimId: id})
	respond := func(c trustv1.TrustServiceClient) error {
		_, err := c.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
			Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST, Evidence: &trustv1.Evidence{Text: "no"}})
		return err
	}
	resolve := func(c trustv1.TrustServiceClient) error {
		_, err := c.ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
			Decision: trustv1.ClaimDecision_CLAIM_DECISION_REJECT, Rationale: "no"})
		return err
	}
	withdraw := func(c trustv1.TrustServiceClient) error {
		_, err := c.WithdrawClaim(t.Context(), &trustv1.WithdrawClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id})
		return err
	}
	openClaim := func(c trustv1.TrustServiceClient) error { _, err := c.OpenClaim(t.Context(), open()); return err }
	list := func(q *trustv1.ListClaimsRequest) call {
		return platformtest.Method(trustv1.TrustServiceClient.ListClaims, t.Context(), q)
	}
	trust := func(v string) call {
		return platformtest.Method(trustv1.TrustServiceClient.GetVendorTrust, t.Context(), &trustv1.GetVendorTrustRequest{VendorId: v})
	}
	listTrust := platformtest.Method(trustv1.TrustServiceClient.ListVendorTrust, t.Context(), &trustv1.ListVendorTrustRequest{})
	denied := []struct {
		name string
		role string
		call call
	}{
		{"another buyer opens a claim on the order", other, openClaim},
		{"the vendor opens a claim", "vendor:" + vendor, openClaim},
		{"support opens a claim", "support", openClaim},
		{"a creator reads the claim", "creator:c1", get},
		{"another buyer reads the claim", other, get},
		{"another vendor reads the claim", otherVendor, get},
		{"the buyer responds as the vendor", "buyer:" + buyer, respond},
		{"another vendor responds", otherVendor, respond},
		{"service responds", "service", respond},
		{"the buyer resolves", "buyer:" + buyer, resolve},
		{"the vendor resolves", "vendor:" + vendor, resolve},
		{"platform resolves", "platform", resolve},
		{"service resolves", "service", resolve},
		{"the vendor withdraws", "vendor:" + vendor, withdraw},
		{"another buyer withdraws", other, withdraw},
		{"a buyer lists a vendor's claims", "buyer:" + buyer, list(&trustv1.ListClaimsRequest{VendorId: vendor})},
		{"a buyer lists another buyer's claims", other, list(&trustv1.ListClaimsRequest{BuyerId: buyer})},
		{"a buyer lists another's order", other, list(&trustv1.ListClaimsRequest{OrderId: s.orderID})},
		{"a vendor lists every claim", "vendor:" + vendor, list(&trustv1.ListClaimsRequest{})},
		{"a vendor lists another vendor's claims", otherVendor, list(&trustv1.ListClaimsRequest{VendorId: vendor})},
		{"a buyer reads a vendor's trust", "buyer:" + buyer, trust(vendor)},
		{"service reads a vendor's trust", "service", trust(vendor)},
		{"a vendor reads another's trust", otherVendor, trust(vendor)},
		{"a vendor lists trust", "vendor:" + vendor, listTrust},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			platformtest.WantCode(t, tt.call(as(t, tt.role)), codes.PermissionDenied)
		})
	}
	allowed := []struct {
		name string
		role string
		call call
	}{
		{"the buyer reads its claim", "buyer:" + buyer, get},
		{"the vendor reads the claim", "vendor:" + vendor, get},
		{"support reads the claim", "support", get},
		{"platform reads the claim", "platform", get},
		{"the buyer lists its order's claims", "buyer:" + buyer, list(&trustv1.ListClaimsRequest{OrderId: s.orderID})},
		{"the buyer lists its claims", "buyer:" + buyer, list(&trustv1.ListClaimsRequest{BuyerId: buyer})},
		{"the vendor lists its claims", "vendor:" + vendor, list(&trustv1.ListClaimsRequest{VendorId: vendor})},
		{"support lists every claim", "support", list(&trustv1.ListClaimsRequest{})},
		{"platform reads a vendor's trust", "platform", trust(vendor)},
		{"support lists trust", "support", listTrust},
		{"the vendor contests", "vendor:" + vendor, respond},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(as(t, tt.role)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("without a token", func(t *testing.T) {
		platformtest.WantCode(t, get(as(t)), codes.Unauthenticated)
	})
	t.Run("unknown claim and order", func(t *testing.T) {
		_, err := as(t, "support").GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: s.orderID + "_c0123456789abcdef"})
		platformtest.WantCode(t, err, codes.NotFound)
		req := open()
		req.OrderId = "o-nope"
		_, err = as(t, "buyer:"+buyer).OpenClaim(t.Context(), req)
		platformtest.WantCode(t, err, codes.NotFound)
	})
}

func TestValidation(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	s := delivered(t, buyer, vendor, nil, orderLine{2, 1000}, orderLine{1, 500})
	valid := func() *trustv1.OpenClaimRequest {
		return &trustv1.OpenClaimRequest{RequestId: platformtest.ID("r"), OrderId: s.orderID, Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
			Lines: claimLines("1", 1), Evidence: &trustv1.Evidence{Sha256: []string{photo}}}
	}
	tests := []platformtest.BadRequest[*trustv1.OpenClaimRequest]{
		{Name: "missing request_id", Change: func(r *trustv1.OpenClaimRequest) { r.RequestId = "" }, Field: "request_id"},
		{Name: "missing order_id", Change: func(r *trustv1.OpenClaimRequest) { r.OrderId = "" }, Field: "order_id"},
		{Name: "missing reason", Change: func(r *trustv1.OpenClaimRequest) { r.Reason = 0 }, Field: "reason"},
		{Name: "unknown reason", Change: func(r *trustv1.OpenClaimRequest) { r.Reason = 99 }, Field: "reason"},
		{Name: "no lines", Change: func(r *trustv1.OpenClaimRequest) { r.Lines = nil }, Field: "lines"},
		{Name: "zero quantity", Change: func(r *trustv1.OpenClaimRequest) { r.Lines[0].Quantity = 0 }, Field: "lines[0].quantity"},
		{Name: "more than the line", Change: func(r *trustv1.OpenClaimRequest) { r.Lines[0].Quantity = 3 }, Field: "lines[0].quantity"},
		{Name: "quantity of int64's limit", Change: func(r *trustv1.OpenClaimRequest) { r.Lines[0].Quantity = math.MaxInt64 }, Field: "lines[0].quantity"},
		// Refused at the edge, before the order is looked up (else NotFound).
		{Name: "quantity beyond the bound on an unknown order", Change: func(r *trustv1.OpenClaimRequest) {
			r.OrderId, r.Lines[0].Quantity = platformtest.ID("o"), money.MaxLineQuantity+1
		}, Field: "lines[0].quantity"},
		{Name: "unknown line", Change: func(r *trustv1.OpenClaimRequest) { r.Lines[0].LineId = "7" }, Field: "lines[0].line_id"},
		{Name: "line twice", Change: func(r *trustv1.OpenClaimRequest) { r.Lines = claimLines("1", 1, "1", 1) }, Field: "lines[1].line_id"},
		{Name: "no evidence", Change: func(r *trustv1.OpenClaimRequest) { r.Evidence = nil }, Field: "evidence"},
		{Name: "bad hash", Change: func(r *trustv1.OpenClaimRequest) { r.Evidence.Sha256 = []string{"abc"} }, Field: "evidence.sha256[0]"},
		{Name: "blank serial", Change: func(r *trustv1.OpenClaimRequest) { r.Evidence.SerialNumbers = []string{" "} }, Field: "evidence.serial_numbers[0]"},
	}
	client := as(t, "buyer:"+buyer)
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			_, err := client.OpenClaim(t.Context(), tt.Of(valid))
			platformtest.WantField(t, err, tt.Field)
		})
	}
	// Bytes no Go client can send: refused as bad input, not Internal.
	t.Run("order_id not UTF-8", func(t *testing.T) {
		platformtest.WantField(t, servertest.CallInvalidUTF8(client.OpenClaim, t.Context(), valid(), "order_id")(), "order_id")
	})
	if evs := claimEvents(t, s.orderID); len(evs) != 0 {
		t.Fatalf("refused claims wrote %v", eventNames(evs))
	}
	opened := valid()
	resp, err := client.OpenClaim(t.Context(), opened)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetClaim().GetClaimId()
	vc := as(t, "vendor:"+vendor)
	sc := as(t, "support")
	// Amounts beyond any order total are refused at the edge — on an
	// unknown claim too, which would otherwise be NotFound — and change
	// nothing.
	before := len(claimEvents(t, s.orderID))
	for _, claimID := range []string{id, s.orderID + "_c0123456789abcdef"} {
		for _, minor := range []int64{money.MaxAmount + 1, math.MaxInt64} {
			_, err = vc.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: claimID,
				Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND, OfferedAmount: eur(minor)})
			platformtest.WantField(t, err, "offered_amount.amount_minor")
			_, err = sc.ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: claimID,
				Decision: trustv1.ClaimDecision_CLAIM_DECISION_REFUND_PARTIAL, RefundAmount: eur(minor), Rationale: "x"})
			platformtest.WantField(t, err, "refund_amount.amount_minor")
		}
	}
	if after := len(claimEvents(t, s.orderID)); after != before {
		t.Fatalf("refused amounts wrote %d claim events", after-before)
	}
	_, err = vc.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND})
	platformtest.WantField(t, err, "offered_amount")
	_, err = vc.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND, OfferedAmount: eur(1000)})
	platformtest.WantField(t, err, "offered_amount.amount_minor")
	_, err = vc.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND, OfferedAmount: &typev1.Money{CurrencyCode: "USD", AmountMinor: 100}})
	platformtest.WantField(t, err, "offered_amount.currency_code")
	_, err = vc.RespondToClaim(t.Context(), &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Response: trustv1.VendorResponse_VENDOR_RESPONSE_CONTEST})
	platformtest.WantField(t, err, "evidence")
	_, err = sc.ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Decision: trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL})
	platformtest.WantField(t, err, "rationale")
	_, err = sc.ResolveClaim(t.Context(), &trustv1.ResolveClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Decision: trustv1.ClaimDecision_CLAIM_DECISION_REJECT, Rationale: "x", CounterfeitConfirmed: true})
	platformtest.WantField(t, err, "counterfeit_confirmed")
	_, err = sc.GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: "not a claim"})
	platformtest.WantField(t, err, "claim_id")
	_, err = sc.ListClaims(t.Context(), &trustv1.ListClaimsRequest{BuyerId: buyer, VendorId: vendor})
	platformtest.WantField(t, err, "order_id")
	_, err = sc.ListClaims(t.Context(), &trustv1.ListClaimsRequest{PageToken: "garbage"})
	platformtest.WantField(t, err, "page_token")
	_, err = client.RecordReturnShipment(t.Context(), &trustv1.RecordReturnShipmentRequest{RequestId: platformtest.ID("r"), ClaimId: id, Carrier: "DHL!", TrackingNumber: "1"})
	platformtest.WantField(t, err, "carrier")
	_, err = client.RecordReturnShipment(t.Context(), &trustv1.RecordReturnShipmentRequest{RequestId: platformtest.ID("r"), ClaimId: id, Carrier: "dhl", TrackingNumber: "1"})
	platformtest.WantReason(t, err, codes.FailedPrecondition, "RETURN_NOT_AUTHORISED")
	_, err = client.AnswerOffer(t.Context(), &trustv1.AnswerOfferRequest{RequestId: platformtest.ID("r"), ClaimId: id, Accept: true})
	platformtest.WantReason(t, err, codes.FailedPrecondition, "CLAIM_STATE_FORBIDS")

	// AIP-155: each request applied below, sent again, is answered as the
	// first time (no new event); its request_id with another body is
	// refused naming request_id, and writes nothing.
	retried := func(name string, first proto.Message, send func(proto.Message) (*trustv1.Claim, error), change func(proto.Message)) {
		t.Helper()
		c, err := send(first)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n := len(claimEvents(t, s.orderID))
		if again, err := send(first); err != nil || again.GetRevision() != c.GetRevision() || again.GetClaimId() != c.GetClaimId() {
			t.Fatalf("%s again: %v, %v; want %v", name, again, err, c)
		}
		reused := proto.Clone(first)
		change(reused)
		_, err = send(reused)
		platformtest.WantField(t, err, "request_id")
		if after := len(claimEvents(t, s.orderID)); after != n {
			t.Fatalf("%s: the repeat and the reuse wrote %d claim events", name, after-n)
		}
	}
	retried("OpenClaim", opened, func(m proto.Message) (*trustv1.Claim, error) {
		r, err := client.OpenClaim(t.Context(), m.(*trustv1.OpenClaimRequest))
		return r.GetClaim(), err
	}, func(m proto.Message) { m.(*trustv1.OpenClaimRequest).Lines = claimLines("2", 1) })
	retried("RespondToClaim", &trustv1.RespondToClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id,
		Response: trustv1.VendorResponse_VENDOR_RESPONSE_OFFER_PARTIAL_REFUND, OfferedAmount: eur(400)}, func(m proto.Message) (*trustv1.Claim, error) {
		r, err := vc.RespondToClaim(t.Context(), m.(*trustv1.RespondToClaimRequest))
		return r.GetClaim(), err
	}, func(m proto.Message) { m.(*trustv1.RespondToClaimRequest).OfferedAmount = eur(300) })
	retried("AnswerOffer", &trustv1.AnswerOfferRequest{RequestId: platformtest.ID("r"), ClaimId: id, Accept: false}, func(m proto.Message) (*trustv1.Claim, error) {
		r, err := client.AnswerOffer(t.Context(), m.(*trustv1.AnswerOfferRequest))
		return r.GetClaim(), err
	}, func(m proto.Message) { m.(*trustv1.AnswerOfferRequest).Accept = true })
	retried("WithdrawClaim", &trustv1.WithdrawClaimRequest{RequestId: platformtest.ID("r"), ClaimId: id, Reason: "sorted it out"}, func(m proto.Message) (*trustv1.Claim, error) {
		r, err := client.WithdrawClaim(t.Context(), m.(*trustv1.WithdrawClaimRequest))
		return r.GetClaim(), err
	}, func(m proto.Message) { m.(*trustv1.WithdrawClaimRequest).Reason = "another reason" })
}

// ListClaims pages newest first, filters by state, and keeps a token to
// its query.
func TestListClaims(t *testing.T) {
	buyer, vendor := platformtest.ID("b"), platformtest.ID("v")
	var ids []string
	for range 3 {
		s := delivered(t, buyer, vendor, nil, orderLine{1, 1000})
		clk.Advance(1)
		c := openClaim(t, s, trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND, nil)
		ids = append([]string{c.GetClaimId()}, ids...) // newest first
	}
	if _, err := as(t, "buyer:"+buyer).WithdrawClaim(t.Context(), &trustv1.WithdrawClaimRequest{RequestId: platformtest.ID("r"), ClaimId: ids[1], Reason: "kept it"}); err != nil {
		t.Fatal(err)
	}
	page := func(ctx context.Context, c trustv1.TrustServiceClient, q *trustv1.ListClaimsRequest) []string {
		t.Helper()
		var got []string
		for {
			resp, err := c.ListClaims(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range resp.GetClaims() {
				got = append(got, c.GetClaimId())
			}
			if q.PageToken = resp.GetNextPageToken(); q.PageToken == "" {
				return got
			}
		}
	}
	if got := page(t.Context(), as(t, "buyer:"+buyer), &trustv1.ListClaimsRequest{BuyerId: buyer, PageSize: 2}); !slices.Equal(got, ids) {
		t.Fatalf("buyer's claims %v, want %v", got, ids)
	}
	if got := page(t.Context(), as(t, "vendor:"+vendor), &trustv1.ListClaimsRequest{VendorId: vendor, PageSize: 1}); !slices.Equal(got, ids) {
		t.Fatalf("vendor's claims %v, want %v", got, ids)
	}
	got := page(t.Context(), as(t, "support"), &trustv1.ListClaimsRequest{VendorId: vendor, State: trustv1.ClaimState_CLAIM_STATE_WITHDRAWN})
	if !slices.Equal(got, ids[1:2]) {
		t.Fatalf("withdrawn %v, want %v", got, ids[1:2])
	}
	resp, err := as(t, "support").ListClaims(t.Context(), &trustv1.ListClaimsRequest{BuyerId: buyer, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = as(t, "support").ListClaims(t.Context(), &trustv1.ListClaimsRequest{VendorId: vendor, PageSize: 1, PageToken: resp.GetNextPageToken()})
	platformtest.WantField(t, err, "page_token")
}
