package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func (c *cli) claimsCmd(ctx context.Context, args []string) error {
	verb, rest, err := c.subcommand("claims", args, "open|get|list|respond|resolve|return|receive")
	if err != nil {
		return err
	}
	switch verb {
	case "open":
		return c.claimsOpen(ctx, rest)
	case "get":
		return c.claimsGet(ctx, rest)
	case "list":
		return c.claimsList(ctx, rest)
	case "respond":
		return c.claimsRespond(ctx, rest)
	case "resolve":
		return c.claimsResolve(ctx, rest)
	case "return":
		return c.claimsReturn(ctx, rest)
	case "receive":
		return c.claimsReceive(ctx, rest)
	}
	return fmt.Errorf("claims: unknown verb %q (open, get, list, respond, resolve, return, receive)", verb)
}

func (c *cli) trustClient() (trustv1.TrustServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return trustv1.NewTrustServiceClient(conn), nil
}

// evidenceFlags adds --photo/--serial/--ref/--text and returns a builder.
func evidenceFlags(fs *flag.FlagSet) func() *trustv1.Evidence {
	var photos, serials, refs listFlag
	fs.Var(&photos, "photo", "SHA-256 (hex) of a photo or document (repeatable)")
	fs.Var(&serials, "serial", "serial or lot number of a unit concerned (repeatable)")
	fs.Var(&refs, "ref", "reference: carrier case number, chat id… (repeatable)")
	text := fs.String("text", "", "free text")
	return func() *trustv1.Evidence {
		if len(photos)+len(serials)+len(refs) == 0 && *text == "" {
			return nil
		}
		return &trustv1.Evidence{Sha256: photos, SerialNumbers: serials, References: refs, Text: *text}
	}
}

func (c *cli) claimsOpen(ctx context.Context, args []string) error {
	fs := c.newFlags("claims open", "--order O --reason R --line ID[:QTY]… [evidence flags]",
		"Opens a buyer's claim on lines of one vendor's part of an order. It is assessed against\n"+
			"the custody record at once: a parcel never delivered after its expected delivery is\n"+
			"refunded automatically; counterfeit claims go to support; the rest wait for the vendor.")
	order := fs.String("order", "", "order (required)")
	reason := enumFlag(fs, "reason", trustv1.ClaimReason(0).Descriptor(), "why (required)")
	var lines listFlag
	fs.Var(&lines, "line", "order line and quantity, e.g. 2:1 (repeatable, required)")
	evidence := evidenceFlags(fs)
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *order == "" || *reason == 0 || len(lines) == 0 {
		fs.Usage()
		return errors.New("claims open: --order, --reason and --line are required")
	}
	req := &trustv1.OpenClaimRequest{OrderId: *order, Reason: trustv1.ClaimReason(*reason), Evidence: evidence(), RequestId: *reqID}
	for _, l := range lines {
		id, q, err := splitQty(l)
		if err != nil {
			return fmt.Errorf("--line %q: %w", l, err)
		}
		req.Lines = append(req.Lines, &trustv1.ClaimLineRequest{LineId: id, Quantity: q})
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	resp, err := tc.OpenClaim(ctx, req)
	if err != nil {
		return rpcError("OpenClaim", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printClaim(resp.GetClaim())
}

func (c *cli) claimsGet(ctx context.Context, args []string) error {
	fs := c.newFlags("claims get", "<claim>", "Shows a claim with its whole history.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	resp, err := tc.GetClaim(ctx, &trustv1.GetClaimRequest{ClaimId: pos[0]})
	if err != nil {
		return rpcError("GetClaim", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printClaim(resp.GetClaim())
}

func (c *cli) claimsList(ctx context.Context, args []string) error {
	fs := c.newFlags("claims list", "[--order O | --vendor V | --buyer B] [--state S]", "Lists claims, newest first (without a filter: every claim; support and platform).")
	order := fs.String("order", "", "claims on this order")
	vendor := fs.String("vendor", "", "claims against this vendor")
	buyer := fs.String("buyer", "", "claims of this buyer")
	state := enumFlag(fs, "state", trustv1.ClaimState(0).Descriptor(), "only claims in this state")
	size := fs.Int("page-size", 50, "claims per page")
	token := fs.String("page-token", "", "page token from a previous list")
	all := fs.Bool("all", false, "follow every page")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	out := &trustv1.ListClaimsResponse{}
	req := &trustv1.ListClaimsRequest{OrderId: *order, VendorId: *vendor, BuyerId: *buyer, State: trustv1.ClaimState(*state), PageSize: int32(*size), PageToken: *token}
	for {
		resp, err := tc.ListClaims(ctx, req)
		if err != nil {
			return rpcError("ListClaims", err)
		}
		out.Claims = append(out.Claims, resp.GetClaims()...)
		out.NextPageToken = resp.GetNextPageToken()
		if !*all || resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if c.json {
		return c.printJSON(out)
	}
	if err := printClaims(c, out.GetClaims()); err != nil {
		return err
	}
	if out.GetNextPageToken() != "" {
		fmt.Fprintf(c.out, "more: --page-token %s (or --all)\n", out.GetNextPageToken())
	}
	return nil
}

func printClaims(c *cli, claims []*trustv1.Claim) error {
	tw := table(c.out)
	row(tw, "CLAIM", "ORDER", "VENDOR", "BUYER", "REASON", "STATE", "CLAIMED", "REFUNDED", "OPENED", "DUE")
	for _, cl := range claims {
		due := "-"
		if cl.GetDueTime() != nil {
			due = fmtTime(cl.GetDueTime()) + ": " + cl.GetDueAction()
		}
		row(tw, cl.GetClaimId(), cl.GetOrderId(), cl.GetVendorId(), cl.GetBuyerId(), enumName(cl.GetReason()), enumName(cl.GetState()),
			fmtMoney(cl.GetClaimedAmount()), fmtMoney(cl.GetRefundedAmount()), fmtTime(cl.GetOpenTime()), due)
	}
	return tw.Flush()
}

func (c *cli) claimsRespond(ctx context.Context, args []string) error {
	fs := c.newFlags("claims respond", "<claim> --response R [--offer AMOUNT] [evidence flags]",
		"The vendor's answer to a claim: accept_refund, offer_partial_refund (with --offer),\n"+
			"request_return, or contest (with evidence; support decides).")
	resp := enumFlag(fs, "response", trustv1.VendorResponse(0).Descriptor(), "the response (required)")
	offer := fs.String("offer", "", `for offer_partial_refund: the amount, e.g. "10.00" (the claim's currency) or "10.00 EUR"`)
	evidence := evidenceFlags(fs)
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *resp == 0 {
		fs.Usage()
		return errors.New("claims respond: --response is required")
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	req := &trustv1.RespondToClaimRequest{RequestId: *reqID, ClaimId: pos[0], Response: trustv1.VendorResponse(*resp), Evidence: evidence()}
	if *offer != "" {
		if req.OfferedAmount, err = c.claimMoney(ctx, tc, pos[0], *offer); err != nil {
			return err
		}
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	out, err := tc.RespondToClaim(ctx, req)
	if err != nil {
		return rpcError("RespondToClaim", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	return c.printClaim(out.GetClaim())
}

func (c *cli) claimsResolve(ctx context.Context, args []string) error {
	fs := c.newFlags("claims resolve", "<claim> --decision D --rationale TEXT [--amount A] [--counterfeit]",
		"Support's decision: refund_full, refund_partial (with --amount), return_then_refund, or reject.")
	decision := enumFlag(fs, "decision", trustv1.ClaimDecision(0).Descriptor(), "the decision (required)")
	rationale := fs.String("rationale", "", "why, in words (required)")
	amount := fs.String("amount", "", `for refund_partial: the amount, e.g. "10.00" or "10.00 EUR"`)
	counterfeit := fs.Bool("counterfeit", false, "support confirmed the item is counterfeit")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *decision == 0 || *rationale == "" {
		fs.Usage()
		return errors.New("claims resolve: --decision and --rationale are required")
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	req := &trustv1.ResolveClaimRequest{RequestId: *reqID, ClaimId: pos[0], Decision: trustv1.ClaimDecision(*decision), Rationale: *rationale, CounterfeitConfirmed: *counterfeit}
	if *amount != "" {
		if req.RefundAmount, err = c.claimMoney(ctx, tc, pos[0], *amount); err != nil {
			return err
		}
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	out, err := tc.ResolveClaim(ctx, req)
	if err != nil {
		return rpcError("ResolveClaim", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	return c.printClaim(out.GetClaim())
}

func (c *cli) claimsReturn(ctx context.Context, args []string) error {
	fs := c.newFlags("claims return", "<claim> --carrier C --tracking N", "Records the buyer's return parcel of an authorised return.")
	carrier := fs.String("carrier", "", "carrier code (required)")
	tracking := fs.String("tracking", "", "tracking number (required)")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *carrier == "" || *tracking == "" {
		fs.Usage()
		return errors.New("claims return: --carrier and --tracking are required")
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	out, err := tc.RecordReturnShipment(ctx, &trustv1.RecordReturnShipmentRequest{RequestId: *reqID, ClaimId: pos[0], Carrier: *carrier, TrackingNumber: *tracking})
	if err != nil {
		return rpcError("RecordReturnShipment", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	return c.printClaim(out.GetClaim())
}

func (c *cli) claimsReceive(ctx context.Context, args []string) error {
	fs := c.newFlags("claims receive", "<claim> --condition C [--note TEXT]", "Records the returned parcel's condition (vendor or support); the refund follows it.")
	cond := enumFlag(fs, "condition", trustv1.ReturnCondition(0).Descriptor(), "condition found (required)")
	note := fs.String("note", "", "what was noted")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *cond == 0 {
		fs.Usage()
		return errors.New("claims receive: --condition is required")
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	out, err := tc.ReceiveReturn(ctx, &trustv1.ReceiveReturnRequest{RequestId: *reqID, ClaimId: pos[0], Condition: trustv1.ReturnCondition(*cond), Note: *note})
	if err != nil {
		return rpcError("ReceiveReturn", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	return c.printClaim(out.GetClaim())
}

// claimMoney parses an amount, in the claim's currency unless it names one.
func (c *cli) claimMoney(ctx context.Context, tc trustv1.TrustServiceClient, claimID, s string) (*typev1.Money, error) {
	cur := ""
	if len(strings.Fields(s)) == 1 {
		got, err := tc.GetClaim(ctx, &trustv1.GetClaimRequest{ClaimId: claimID})
		if err != nil {
			return nil, rpcError("GetClaim", err)
		}
		cur = got.GetClaim().GetClaimedAmount().GetCurrencyCode()
	}
	return parseMoney(s, cur)
}

func (c *cli) printClaim(cl *trustv1.Claim) error {
	tw := table(c.out)
	row(tw, "claim", cl.GetClaimId())
	row(tw, "order", cl.GetOrderId())
	row(tw, "fulfilment", cl.GetFulfilmentId())
	row(tw, "vendor", cl.GetVendorId())
	row(tw, "buyer", cl.GetBuyerId())
	row(tw, "reason", enumName(cl.GetReason()))
	row(tw, "state", enumName(cl.GetState()))
	row(tw, "claimed", fmtMoney(cl.GetClaimedAmount()))
	row(tw, "refunded", fmtMoney(cl.GetRefundedAmount()))
	if cl.GetOfferedAmount() != nil {
		row(tw, "offered", fmtMoney(cl.GetOfferedAmount()))
	}
	row(tw, "opened", fmtTime(cl.GetOpenTime()))
	if cl.GetDueTime() != nil {
		row(tw, "due", fmtTime(cl.GetDueTime())+": "+cl.GetDueAction())
	}
	var lines []string
	for _, l := range cl.GetLines() {
		lines = append(lines, fmt.Sprintf("%s %s ×%d (%s)", l.GetLineId(), l.GetSkuId(), l.GetQuantity(), fmtMoney(l.GetAmount())))
	}
	row(tw, "lines", strings.Join(lines, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = table(c.out)
	row(tw, "WHEN", "WHAT", "DETAIL")
	for _, a := range cl.GetAssessments() {
		detail := a.GetFinding()
		if len(a.GetUnmatchedSerials()) > 0 {
			detail += " (serials not packed: " + strings.Join(a.GetUnmatchedSerials(), ", ") + ")"
		}
		row(tw, fmtTime(a.GetAssessTime()), "assessed: "+a.GetOutcome(), detail)
	}
	for _, r := range cl.GetResponses() {
		detail := "-"
		if r.GetOfferedAmount() != nil {
			detail = "offered " + fmtMoney(r.GetOfferedAmount())
		}
		row(tw, fmtTime(r.GetRespondTime()), "vendor: "+r.GetResponse(), detail)
	}
	for _, e := range cl.GetEscalations() {
		row(tw, fmtTime(e.GetEscalateTime()), "escalated to support", e.GetReason())
	}
	if r := cl.GetResolution(); r != nil {
		detail := r.GetRationale()
		if r.GetCounterfeitConfirmed() {
			detail += " (counterfeit confirmed)"
		}
		row(tw, fmtTime(r.GetResolveTime()), "decided: "+r.GetDecision()+" by "+r.GetDecidedBy(), detail)
	}
	if ret := cl.GetReturn(); ret != nil {
		if a := ret.GetAuthorised(); a != nil {
			row(tw, fmtTime(a.GetAuthoriseTime()), "return authorised", "ship by "+fmtTime(a.GetShipByTime()))
		}
		if s := ret.GetShipped(); s != nil {
			row(tw, fmtTime(s.GetShipTime()), "return shipped", s.GetCarrier()+" "+s.GetTrackingNumber())
		}
		if r := ret.GetReceived(); r != nil {
			row(tw, fmtTime(r.GetReceiveTime()), "return received", enumName(r.GetCondition()))
		}
	}
	for _, r := range cl.GetRefunds() {
		row(tw, fmtTime(r.GetRefundTime()), "refund "+r.GetRefundId(), fmtMoney(r.GetAmount())+": "+r.GetReason())
	}
	if cl := cl.GetClosed(); cl != nil {
		row(tw, fmtTime(cl.GetCloseTime()), "closed: "+cl.GetOutcome(), orDash(cl.GetNote()))
	}
	return tw.Flush()
}

func (c *cli) trustCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("trust", "<vendor>", "Shows a vendor's trust score (0-1000), tier and the counts behind them.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	tc, err := c.trustClient()
	if err != nil {
		return err
	}
	resp, err := tc.GetVendorTrust(ctx, &trustv1.GetVendorTrustRequest{VendorId: pos[0]})
	if err != nil {
		return rpcError("GetVendorTrust", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	t := resp.GetTrust()
	n, b := t.GetCounts(), t.GetBreakdown()
	pct := func(bps int32) string { return fmt.Sprintf("%.1f%%", float64(bps)/100) }
	tw := table(c.out)
	row(tw, "vendor", t.GetVendorId())
	row(tw, "score", fmt.Sprintf("%d (%s)", t.GetScore(), enumName(t.GetTier())))
	row(tw, "updated", fmtTime(t.GetUpdateTime()))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = table(c.out)
	row(tw, "COMPONENT", "RATE", "FROM")
	row(tw, "on time (25%)", pct(b.GetOnTimeBps()), fmt.Sprintf("%d shipped on time, %d deadlines missed", n.GetShippedOnTime(), n.GetDeadlinesMissed()))
	row(tw, "tracking (15%)", pct(b.GetTrackingBps()), fmt.Sprintf("%d of %d shipments scanned", n.GetTrackedShipments(), n.GetShipments()))
	row(tw, "delivery (25%)", pct(b.GetDeliveryBps()), fmt.Sprintf("%d delivered, %d failed", n.GetDelivered(), n.GetDeliveryFailures()))
	row(tw, "claims (25%)", pct(b.GetClaimsBps()), fmt.Sprintf("%d claims, %d lost, of %d fulfilments", n.GetClaims(), n.GetClaimsLost(), n.GetFulfilments()))
	avg := "-"
	if n.GetResponses() > 0 {
		avg = fmt.Sprintf("%.1f h", float64(n.GetResponseSeconds())/float64(n.GetResponses())/3600)
	}
	row(tw, "response (10%)", pct(b.GetResponseBps()), fmt.Sprintf("%d responses, average %s", n.GetResponses(), avg))
	row(tw, "counterfeit penalty", fmt.Sprintf("-%d", b.GetCounterfeitPenalty()), fmt.Sprintf("%d confirmed", n.GetCounterfeitsConfirmed()))
	return tw.Flush()
}
