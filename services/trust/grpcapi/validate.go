package grpcapi

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/money"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

var (
	lineIDPattern    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	sha256Pattern    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	carrierPattern   = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	trackingPattern  = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	maxClaimIDLength = 128 + 18
)

// Field limits.
const (
	maxHashes     = 20
	maxSerials    = 100
	maxSerial     = 128
	maxReferences = 20
	maxReference  = 256
	maxText       = 4000
	maxNote       = 1000
)

func checkRequestID(v *fault.Violations, id string) {
	switch {
	case id == "":
		v.Add("request_id", "required: an idempotency key (AIP-155)")
	case len(id) > apierr.MaxRequestID || !utf8.ValidString(id):
		v.Add("request_id", "at most %d bytes of UTF-8", apierr.MaxRequestID)
	}
}

func checkClaimID(v *fault.Violations, id string) {
	if _, ok := domain.OrderOfClaim(id); !ok || len(id) > maxClaimIDLength || !eventstore.ValidID(id[:strings.LastIndex(id, "_c")]) {
		v.Add("claim_id", "not a claim id (<order_id>_c<16 hex>)")
	}
}

// actRequest is a request that acts on a claim (Server.act): it names the
// claim and carries an idempotency key.
type actRequest interface {
	GetRequestId() string
	GetClaimId() string
}

// checkAct checks what every request acting on a claim carries.
func checkAct(v *fault.Violations, req actRequest) {
	checkRequestID(v, req.GetRequestId())
	checkClaimID(v, req.GetClaimId())
}

func checkText(v *fault.Violations, field, s string, limit int) {
	if len(s) > limit || !utf8.ValidString(s) {
		v.Add(field, "at most %d bytes of UTF-8", limit)
	}
}

// checkEvidence validates the shape of evidence (what a reason requires is
// the domain's rule) and returns it with hashes in lower case.
func checkEvidence(v *fault.Violations, field string, e *trustv1.Evidence) *trustv1.Evidence {
	if e == nil {
		return nil
	}
	out := &trustv1.Evidence{Text: e.GetText()}
	if len(e.GetSha256()) > maxHashes {
		v.Add(field+".sha256", "at most %d hashes", maxHashes)
	}
	for i, h := range e.GetSha256() {
		if !sha256Pattern.MatchString(h) {
			v.Add(fmt.Sprintf("%s.sha256[%d]", field, i), "a SHA-256 in hex (64 characters)")
		}
		out.Sha256 = append(out.Sha256, strings.ToLower(h))
	}
	if len(e.GetSerialNumbers()) > maxSerials {
		v.Add(field+".serial_numbers", "at most %d serial numbers", maxSerials)
	}
	for i, s := range e.GetSerialNumbers() {
		if strings.TrimSpace(s) == "" || len(s) > maxSerial || !utf8.ValidString(s) {
			v.Add(fmt.Sprintf("%s.serial_numbers[%d]", field, i), "1-%d bytes of UTF-8, not blank", maxSerial)
		}
		out.SerialNumbers = append(out.SerialNumbers, strings.TrimSpace(s))
	}
	if len(e.GetReferences()) > maxReferences {
		v.Add(field+".references", "at most %d references", maxReferences)
	}
	for i, r := range e.GetReferences() {
		if r == "" || len(r) > maxReference || !utf8.ValidString(r) {
			v.Add(fmt.Sprintf("%s.references[%d]", field, i), "1-%d bytes of UTF-8", maxReference)
		}
		out.References = append(out.References, r)
	}
	checkText(v, field+".text", e.GetText(), maxText)
	return out
}

// checkMoney validates a positive amount of at most money.MaxAmount (the
// largest order total: no refund can be more).
func checkMoney(v *fault.Violations, field string, m *typev1.Money) money.Money {
	if m == nil {
		v.Add(field, "required")
		return money.Money{}
	}
	out, err := money.FromProto(m)
	if err != nil {
		v.Add(field+".currency_code", "%v", err)
		return money.Money{}
	}
	if out.Minor <= 0 || out.Minor > money.MaxAmount {
		v.Add(field+".amount_minor", "must be 1..%d minor units (the largest order total), got %d", int64(money.MaxAmount), out.Minor)
	}
	return out
}

func validateOpen(req *trustv1.OpenClaimRequest) (app.OpenClaim, error) {
	var v fault.Violations
	checkRequestID(&v, req.GetRequestId())
	if !eventstore.ValidID(req.GetOrderId()) {
		v.Add("order_id", "required: an order id")
	}
	apierr.OneOf(&v, "reason", req.GetReason())
	if n := len(req.GetLines()); n == 0 || n > domain.MaxClaimLines {
		v.Add("lines", "a claim names 1..%d lines, got %d", domain.MaxClaimLines, n)
	}
	lines := make([]domain.LineRequest, 0, len(req.GetLines()))
	for i, l := range req.GetLines() {
		if !lineIDPattern.MatchString(l.GetLineId()) {
			v.Add(fmt.Sprintf("lines[%d].line_id", i), "required: an order line id")
		}
		if q := l.GetQuantity(); q < 1 || q > money.MaxLineQuantity {
			v.Add(fmt.Sprintf("lines[%d].quantity", i), "must be 1..%d (the most an order line has), got %d", money.MaxLineQuantity, q)
		}
		lines = append(lines, domain.LineRequest{LineID: l.GetLineId(), Quantity: l.GetQuantity()})
	}
	ev := checkEvidence(&v, "evidence", req.GetEvidence())
	return app.OpenClaim{RequestID: req.GetRequestId(), OrderID: req.GetOrderId(), Reason: req.GetReason(), Lines: lines, Evidence: ev}, v.Err()
}

func validateRespond(req *trustv1.RespondToClaimRequest) (domain.Respond, error) {
	var v fault.Violations
	checkAct(&v, req)
	r := apierr.OneOfKnown(&v, "response", responses, req.GetResponse())
	c := domain.Respond{ClaimID: req.GetClaimId(), Response: r, Evidence: checkEvidence(&v, "evidence", req.GetEvidence())}
	switch {
	case r == domain.ResponseOffer:
		c.Offer = checkMoney(&v, "offered_amount", req.GetOfferedAmount())
	case req.GetOfferedAmount() != nil:
		v.Add("offered_amount", "only with OFFER_PARTIAL_REFUND")
	}
	if r == domain.ResponseContest {
		e := req.GetEvidence()
		if len(e.GetSha256()) == 0 && len(e.GetReferences()) == 0 && strings.TrimSpace(e.GetText()) == "" {
			v.Add("evidence", "contesting needs evidence: a photo hash, a reference or text")
		}
	}
	return c, v.Err()
}

func validateAnswer(req *trustv1.AnswerOfferRequest) error {
	var v fault.Violations
	checkAct(&v, req)
	return v.Err()
}

func validateResolve(req *trustv1.ResolveClaimRequest) (domain.Resolve, error) {
	var v fault.Violations
	checkAct(&v, req)
	d := apierr.OneOfKnown(&v, "decision", decisions, req.GetDecision())
	if strings.TrimSpace(req.GetRationale()) == "" {
		v.Add("rationale", "required: say why")
	}
	checkText(&v, "rationale", req.GetRationale(), maxText)
	c := domain.Resolve{ClaimID: req.GetClaimId(), Decision: d, Rationale: req.GetRationale(), CounterfeitConfirmed: req.GetCounterfeitConfirmed()}
	switch {
	case d == domain.DecisionRefundPartial:
		c.Amount = checkMoney(&v, "refund_amount", req.GetRefundAmount())
	case req.GetRefundAmount() != nil:
		v.Add("refund_amount", "only with REFUND_PARTIAL")
	}
	return c, v.Err()
}

func validateWithdraw(req *trustv1.WithdrawClaimRequest) error {
	var v fault.Violations
	checkAct(&v, req)
	checkText(&v, "reason", req.GetReason(), maxNote)
	return v.Err()
}

func validateReturnShipment(req *trustv1.RecordReturnShipmentRequest) error {
	var v fault.Violations
	checkAct(&v, req)
	if !carrierPattern.MatchString(req.GetCarrier()) {
		v.Add("carrier", "required: a carrier code ([a-z0-9_-], at most 32)")
	}
	if !trackingPattern.MatchString(req.GetTrackingNumber()) {
		v.Add("tracking_number", "required: letters, digits and '-', at most 64")
	}
	return v.Err()
}

func validateReceive(req *trustv1.ReceiveReturnRequest) error {
	var v fault.Violations
	checkAct(&v, req)
	apierr.OneOf(&v, "condition", req.GetCondition())
	checkText(&v, "note", req.GetNote(), maxNote)
	return v.Err()
}

func validateGet(req *trustv1.GetClaimRequest) error {
	var v fault.Violations
	checkClaimID(&v, req.GetClaimId())
	return v.Err()
}

func validateList(req *trustv1.ListClaimsRequest) (app.ClaimQuery, error) {
	var v fault.Violations
	n := 0
	for _, f := range []struct{ name, val string }{{"order_id", req.GetOrderId()}, {"vendor_id", req.GetVendorId()}, {"buyer_id", req.GetBuyerId()}} {
		if f.val == "" {
			continue
		}
		n++
		if !auth.ValidID(f.val) {
			v.Add(f.name, "not a valid id")
		}
	}
	if n > 1 {
		v.Add("order_id", "at most one of order_id, vendor_id and buyer_id")
	}
	st := apierr.Known(&v, "state", states, req.GetState())
	if req.GetPageSize() < 0 {
		v.Add("page_size", "must not be negative")
	}
	return app.ClaimQuery{OrderID: req.GetOrderId(), VendorID: req.GetVendorId(), BuyerID: req.GetBuyerId(), State: st,
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}

func validateVendor(id string) error {
	var v fault.Violations
	if !auth.ValidID(id) {
		v.Add("vendor_id", "required: a vendor id")
	}
	return v.Err()
}

func validateListVendors(req *trustv1.ListVendorTrustRequest) (app.VendorQuery, error) {
	var v fault.Violations
	tier := apierr.Known(&v, "tier", tiers, req.GetTier())
	if req.GetPageSize() < 0 {
		v.Add("page_size", "must not be negative")
	}
	return app.VendorQuery{Tier: tier, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}
