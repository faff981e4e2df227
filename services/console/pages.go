package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/money"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// pageSize is how many orders a page of the search lists.
const pageSize = 25

// Bounds on what one page reads, so a huge history cannot stall it.
const (
	timelinePage   = 1000 // the audit service's largest page
	maxTimeline    = 20 * timelinePage
	claimsPerPage  = 200
	maxQueuedPages = 10
	// ledgerEntriesPerOrder is the payouts service's largest page; an
	// order has a few dozen entries.
	ledgerEntriesPerOrder = 1000
)

// --- find an order ---

type ordersPage struct {
	OrderID, Buyer, Vendor, Creator, PSPReference string
	Carrier, TrackingNumber, From, To, State      string
	States, Carriers                              []string
	Orders                                        []*orderv1.Order
	// Recent: no filter was given, so the page lists the newest orders.
	Recent        bool
	Next, Message string
	Problems      []string // the fields the order service refused, and why
}

// carriers are the carrier codes the fulfilment service knows, for the
// search's carrier list (a code it does not know finds nothing).
var carriers = []string{"dhl", "dpd", "fedex", "royal_mail", "ups", "usps"}

// placeTimeLayouts are what the search's place time fields take: the
// browser's datetime-local value, a date, or RFC 3339; without a zone,
// UTC.
var placeTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339Nano}

// parsePlaceTime parses a place time bound. A date alone means its whole
// day: from its start, or (upper bound) to the next day's start, so "to
// 2026-05-01" includes the 1st.
func parsePlaceTime(s string, upper bool) (time.Time, bool) {
	for _, layout := range placeTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if upper && layout == "2006-01-02" {
				t = t.AddDate(0, 0, 1)
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// orderStates are the states the search filters by, as the page names
// them ("confirmed").
var orderStates = func() []string {
	var out []string
	for i := int32(1); ; i++ {
		if _, ok := orderv1.OrderState_name[i]; !ok {
			return out
		}
		out = append(out, enumName(orderv1.OrderState(i)))
	}
}()

func (c *Console) orders(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	field := func(name string) string { return strings.TrimSpace(q.Get(name)) }
	p := ordersPage{OrderID: field("order_id"), Buyer: field("buyer"), Vendor: field("vendor"), Creator: field("creator"),
		PSPReference: field("psp_reference"), Carrier: field("carrier"), TrackingNumber: field("tracking_number"),
		From: field("from"), To: field("to"), State: q.Get("state"), States: orderStates, Carriers: carriers}
	ctx := withToken(r.Context(), s.Token)
	if p.OrderID != "" {
		_, err := c.cfg.Clients.Order.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: p.OrderID})
		switch status.Code(err) {
		case codes.OK:
			http.Redirect(w, r, "/orders/"+url.PathEscape(p.OrderID), http.StatusSeeOther)
			return
		case codes.NotFound, codes.InvalidArgument:
			p.Message = fmt.Sprintf("No order %q: %s", p.OrderID, status.Convert(err).Message())
			c.render(w, r, http.StatusNotFound, "orders", s, p)
			return
		default:
			c.fail(w, r, s, "Finding the order", err)
			return
		}
	}
	req := &orderv1.ListOrdersRequest{BuyerId: p.Buyer, VendorId: p.Vendor, CreatorId: p.Creator, PspReference: p.PSPReference,
		Carrier: p.Carrier, TrackingNumber: p.TrackingNumber, PageSize: pageSize, PageToken: q.Get("page_token")}
	if p.State != "" {
		v, ok := orderv1.OrderState_value["ORDER_STATE_"+strings.ToUpper(strings.ReplaceAll(p.State, " ", "_"))]
		if !ok {
			c.refuse(w, r, s, fmt.Sprintf("%q is not an order state (one of %s).", p.State, strings.Join(orderStates, ", ")))
			return
		}
		req.State = orderv1.OrderState(v)
	}
	for _, b := range []struct {
		value, name string
		upper       bool
		set         **timestamppb.Timestamp
	}{{p.From, "Placed from", false, &req.PlaceTimeFrom}, {p.To, "Placed to", true, &req.PlaceTimeTo}} {
		if b.value == "" {
			continue
		}
		t, ok := parsePlaceTime(b.value, b.upper)
		if !ok {
			c.refuse(w, r, s, fmt.Sprintf("%s: %q is not a time (2026-05-01, 2026-05-01T14:30 or RFC 3339; UTC unless it says).", b.name, b.value))
			return
		}
		*b.set = timestamppb.New(t)
	}
	p.Recent = p.Buyer == "" && p.Vendor == "" && p.Creator == "" && p.PSPReference == "" && p.Carrier == "" &&
		p.TrackingNumber == "" && p.From == "" && p.To == "" && p.State == ""
	resp, err := c.cfg.Clients.Order.ListOrders(ctx, req)
	if status.Code(err) == codes.InvalidArgument {
		// The form stays, with what the order service says is wrong in it.
		p.Message = "The order service refused the search: " + status.Convert(err).Message()
		p.Problems = fieldViolations(status.Convert(err))
		c.render(w, r, http.StatusBadRequest, "orders", s, p)
		return
	}
	if err != nil {
		c.fail(w, r, s, "Listing orders", err)
		return
	}
	p.Orders = resp.GetOrders()
	if t := resp.GetNextPageToken(); t != "" {
		nq := url.Values{"page_token": {t}}
		for k, v := range map[string]string{"buyer": p.Buyer, "vendor": p.Vendor, "creator": p.Creator, "psp_reference": p.PSPReference,
			"carrier": p.Carrier, "tracking_number": p.TrackingNumber, "from": p.From, "to": p.To, "state": p.State} {
			if v != "" {
				nq.Set(k, v)
			}
		}
		p.Next = "/orders?" + nq.Encode()
	}
	if len(p.Orders) == 0 {
		p.Message = "No orders match."
	}
	c.render(w, r, http.StatusOK, "orders", s, p)
}

// --- one order ---

type orderPage struct {
	Order       *orderv1.Order
	Parts       []partView
	Events      []eventView
	Verify      *auditv1.VerifyOrderChainResponse
	VerifyError string
	Broken      *eventView // the event the verdict names, if in the timeline
	At          int        // the replay's event, 1..len(Events)
	AtEvent     *eventView
	Replay      *auditv1.ReplayOrderResponse
	Fulfilments []*fulfilmentv1.Fulfilment
	Claims      []claimView
	Settlement  *payoutsv1.OrderSettlement
	Parties     []partyMoney // the ledger's entries of the order, per party
	Problems    []string     // what a service could not answer; the rest of the page stands
}

type partView struct {
	Part  *orderv1.VendorPart
	Lines []*orderv1.OrderLine
}

type eventView struct {
	N                      int
	Service, Stream, Type  string
	Revision, Position     uint64
	ID, Time, Actor        string
	Hash, PrevHash, PrevID string
	Payload, PayloadError  string
	Broken                 bool
}

type claimView struct {
	Claim *trustv1.Claim
	// Relied are the events its assessments and escalations relied on,
	// with their anchors in the timeline when they are in it.
	Relied []reliedOn
}

type reliedOn struct{ ID, Label string }

func (c *Console) order(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	ctx := withToken(r.Context(), s.Token)
	cl := c.cfg.Clients
	o, err := cl.Order.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id})
	if err != nil {
		c.fail(w, r, s, "The order "+id, err)
		return
	}
	p := orderPage{Order: o.GetOrder()}
	byLine := map[string]*orderv1.OrderLine{}
	for _, l := range p.Order.GetLines() {
		byLine[l.GetLineId()] = l
	}
	for _, part := range p.Order.GetParts() {
		pv := partView{Part: part}
		for _, lid := range part.GetLineIds() {
			if l, ok := byLine[lid]; ok {
				pv.Lines = append(pv.Lines, l)
			}
		}
		p.Parts = append(p.Parts, pv)
	}

	var events []*auditv1.TimelineEvent
	for tok := ""; ; {
		tl, err := cl.Audit.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: id, PageSize: timelinePage, PageToken: tok})
		if err != nil {
			p.Problems = append(p.Problems, "timeline: "+status.Convert(err).Message())
			break
		}
		events = append(events, tl.GetEvents()...)
		if tok = tl.GetNextPageToken(); tok == "" || len(events) >= maxTimeline {
			break
		}
	}
	p.Events = timelineView(events)

	v, err := cl.Audit.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{OrderId: id})
	if err != nil {
		p.VerifyError = status.Convert(err).Message()
	} else {
		p.Verify = v
		if b := v.GetBrokenLink(); !v.GetValid() && b != nil {
			for i := range p.Events {
				e := &p.Events[i]
				if e.ID == b.GetEventId() || (e.Stream == b.GetStream() && e.Revision == b.GetRevision() && e.Service == b.GetService()) {
					e.Broken = true
					p.Broken = e
					break
				}
			}
		}
	}

	if n := len(p.Events); n > 0 {
		p.At = n
		if a := r.URL.Query().Get("at"); a != "" {
			at, err := strconv.Atoi(a)
			if err != nil || at < 1 || at > n {
				c.refuse(w, r, s, fmt.Sprintf("at=%q: the replay's event is a number from 1 to %d.", a, n))
				return
			}
			p.At = at
		}
		p.AtEvent = &p.Events[p.At-1]
		asOf := events[p.At-1].GetRecordTime()
		rp, err := cl.Audit.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: id, AsOf: asOf})
		if err != nil {
			p.Problems = append(p.Problems, "replay: "+status.Convert(err).Message())
		} else {
			p.Replay = rp
		}
	}

	fl, err := cl.Fulfilment.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{OrderId: id, PageSize: 100})
	if err != nil {
		p.Problems = append(p.Problems, "fulfilments: "+status.Convert(err).Message())
	}
	for _, f := range fl.GetFulfilments() {
		// The list may leave out shipments' scans; the fulfilment has them.
		if g, err := cl.Fulfilment.GetFulfilment(ctx, &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: f.GetFulfilmentId()}); err == nil {
			f = g.GetFulfilment()
		}
		p.Fulfilments = append(p.Fulfilments, f)
	}

	inTimeline := map[string]eventView{}
	for _, e := range p.Events {
		inTimeline[e.ID] = e
	}
	claims, err := cl.Trust.ListClaims(ctx, &trustv1.ListClaimsRequest{OrderId: id, PageSize: claimsPerPage})
	if err != nil {
		p.Problems = append(p.Problems, "claims: "+status.Convert(err).Message())
	}
	for _, cm := range claims.GetClaims() {
		p.Claims = append(p.Claims, claimView{Claim: cm, Relied: reliedOnOf(cm, inTimeline)})
	}

	st, err := cl.Payouts.GetOrderSettlement(ctx, &payoutsv1.GetOrderSettlementRequest{OrderId: id})
	switch {
	case status.Code(err) == codes.NotFound:
		// Nothing captured (rejected or still pending): no money to show.
	case err != nil:
		p.Problems = append(p.Problems, "money: "+status.Convert(err).Message())
	default:
		p.Settlement = st.GetSettlement()
		entries, err := cl.Payouts.ListLedgerEntries(ctx, &payoutsv1.ListLedgerEntriesRequest{OrderId: id, PageSize: ledgerEntriesPerOrder})
		if err != nil {
			p.Problems = append(p.Problems, "ledger: "+status.Convert(err).Message())
		}
		p.Parties = moneyByParty(entries.GetEntries())
		if entries.GetNextPageToken() != "" {
			p.Problems = append(p.Problems, fmt.Sprintf("ledger: the order has more than %d entries; the money per party counts the first ones", ledgerEntriesPerOrder))
		}
	}
	c.render(w, r, http.StatusOK, "order", s, p)
}

// timelineView numbers the events and links each to the event before it in
// its stream (the hash it chains to), when that event is in the timeline.
func timelineView(events []*auditv1.TimelineEvent) []eventView {
	byHash := map[string]string{}
	out := make([]eventView, 0, len(events))
	for i, e := range events {
		v := eventView{N: i + 1, Service: e.GetService(), Stream: e.GetStream(), Type: e.GetType(), Revision: e.GetRevision(),
			Position: e.GetPosition(), ID: e.GetEventId(), Time: formatTime(e.GetRecordTime()), Actor: e.GetActor(),
			Hash: e.GetHash(), PrevHash: e.GetPreviousHash(), PayloadError: e.GetPayloadError()}
		if strings.Trim(v.PrevHash, "0") == "" {
			v.PrevHash = "" // the first event of its stream chains to zeros
		}
		v.PrevID = byHash[e.GetStream()+"\x00"+e.GetPreviousHash()]
		byHash[e.GetStream()+"\x00"+e.GetHash()] = e.GetEventId()
		v.Payload = prettyJSON(e.GetPayloadJson())
		out = append(out, v)
	}
	return out
}

func prettyJSON(s string) string {
	if s == "" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		return s
	}
	return b.String()
}

func reliedOnOf(cm *trustv1.Claim, inTimeline map[string]eventView) []reliedOn {
	var ids []string
	for _, a := range cm.GetAssessments() {
		ids = append(ids, a.GetReliedOnEventIds()...)
	}
	for _, e := range cm.GetEscalations() {
		ids = append(ids, e.GetReliedOnEventIds()...)
	}
	var out []reliedOn
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		r := reliedOn{ID: id, Label: id}
		if e, ok := inTimeline[id]; ok {
			r.Label = fmt.Sprintf("#%d %s", e.N, shortType(e.Type))
		}
		out = append(out, r)
	}
	return out
}

// --- the claims queue ---

type claimsPage struct {
	Rows    []queueRow
	Target  string
	Decided string
	More    bool // the queue has more escalated claims than were read
}

type queueRow struct {
	Claim     *trustv1.Claim
	Escalated time.Time
	Why       string
	Age       string
	Overdue   bool
	Left      *typev1.Money // what the claim has left to refund
}

func (c *Console) claims(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := withToken(r.Context(), s.Token)
	p := claimsPage{Target: formatAge(c.cfg.ClaimTarget), Decided: r.URL.Query().Get("decided")}
	now := c.cfg.Clock.Now()
	tok := ""
	for i := 0; ; i++ {
		if i == maxQueuedPages {
			p.More = true
			break
		}
		resp, err := c.cfg.Clients.Trust.ListClaims(ctx, &trustv1.ListClaimsRequest{State: trustv1.ClaimState_CLAIM_STATE_ESCALATED,
			PageSize: claimsPerPage, PageToken: tok})
		if err != nil {
			c.fail(w, r, s, "The claims queue", err)
			return
		}
		for _, cm := range resp.GetClaims() {
			row := queueRow{Claim: cm, Escalated: cm.GetUpdateTime().AsTime(), Left: left(cm)}
			if es := cm.GetEscalations(); len(es) > 0 {
				last := es[len(es)-1]
				row.Escalated, row.Why = last.GetEscalateTime().AsTime(), last.GetReason()
			}
			age := now.Sub(row.Escalated)
			row.Age, row.Overdue = formatAge(age), age > c.cfg.ClaimTarget
			p.Rows = append(p.Rows, row)
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	slices.SortStableFunc(p.Rows, func(a, b queueRow) int { return a.Escalated.Compare(b.Escalated) })
	c.render(w, r, http.StatusOK, "claims", s, p)
}

// left is what a claim has left to refund: claimed less refunded.
func left(cm *trustv1.Claim) *typev1.Money {
	claimed := cm.GetClaimedAmount()
	if claimed == nil {
		return nil
	}
	return &typev1.Money{CurrencyCode: claimed.GetCurrencyCode(),
		AmountMinor: claimed.GetAmountMinor() - cm.GetRefundedAmount().GetAmountMinor()}
}

// decide resolves a claim as support decided on the page. The request is
// built from the form alone (the decision, the amount and what the claim
// had left when the page was rendered, the request_id), so a form sent
// twice is the same request twice: the trust service answers the second
// with the first's result and changes nothing.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	id := r.PathValue("id")
	req := &trustv1.ResolveClaimRequest{RequestId: f.Get("request_id"), ClaimId: id, Rationale: strings.TrimSpace(f.Get("rationale"))}
	if req.RequestId == "" {
		c.refuse(w, r, s, "The form carries no request_id; reload the page and decide again.")
		return
	}
	if req.Rationale == "" {
		c.refuse(w, r, s, "Say why (the rationale is recorded with the decision). Nothing was changed.")
		return
	}
	switch f.Get("decision") {
	case "approve":
		cur := f.Get("currency")
		amt, err := money.Parse(cur, strings.TrimSpace(f.Get("amount")))
		if err != nil {
			c.refuse(w, r, s, fmt.Sprintf("The refund amount: %v. Nothing was changed.", err))
			return
		}
		full, err := money.Parse(cur, f.Get("left"))
		if err != nil {
			c.refuse(w, r, s, fmt.Sprintf("The form's claim amount: %v; reload the page. Nothing was changed.", err))
			return
		}
		if amt.Minor <= 0 {
			c.refuse(w, r, s, "A refund is more than zero; to refuse the claim, reject it. Nothing was changed.")
			return
		}
		if amt.Minor == full.Minor {
			req.Decision = trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL
		} else {
			req.Decision, req.RefundAmount = trustv1.ClaimDecision_CLAIM_DECISION_REFUND_PARTIAL, amt.ToProto()
		}
		req.CounterfeitConfirmed = f.Get("counterfeit") == "yes"
	case "reject":
		req.Decision = trustv1.ClaimDecision_CLAIM_DECISION_REJECT
	default:
		c.refuse(w, r, s, fmt.Sprintf("Decision %q: approve or reject. Nothing was changed.", f.Get("decision")))
		return
	}
	if _, err := c.cfg.Clients.Trust.ResolveClaim(withToken(r.Context(), s.Token), req); err != nil {
		c.fail(w, r, s, "Deciding claim "+id, err)
		return
	}
	back := "/claims"
	if b := f.Get("back"); b != "" {
		back = safeNext(b)
	}
	back, frag, _ := strings.Cut(back, "#")
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	to := back + sep + "decided=" + url.QueryEscape(id)
	if frag != "" {
		to += "#" + frag
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// --- parked events ---

type parkedPage struct {
	Parked []*auditv1.ParkedEvent
}

func (c *Console) parked(w http.ResponseWriter, r *http.Request, s *session) {
	resp, err := c.cfg.Clients.Audit.ListParkedEvents(withToken(r.Context(), s.Token), &auditv1.ListParkedEventsRequest{
		Consumer: r.URL.Query().Get("consumer")})
	if err != nil {
		c.fail(w, r, s, "Parked events", err)
		return
	}
	p := parkedPage{Parked: resp.GetParked()}
	slices.SortStableFunc(p.Parked, func(a, b *auditv1.ParkedEvent) int {
		return a.GetParkTime().AsTime().Compare(b.GetParkTime().AsTime())
	})
	c.render(w, r, http.StatusOK, "parked", s, p)
}

// --- a vendor ---

type vendorPage struct {
	ID         string
	Vendor     *catalogv1.Vendor
	Trust      *trustv1.VendorTrust
	OpenClaims []*trustv1.Claim
	Balance    *payoutsv1.GetBalanceResponse
	Problems   []string
}

func (c *Console) vendorSearch(w http.ResponseWriter, r *http.Request, s *session) {
	if id := strings.TrimSpace(r.URL.Query().Get("vendor_id")); id != "" {
		http.Redirect(w, r, "/vendors/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "vendors", s, nil)
}

func (c *Console) vendor(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	ctx := withToken(r.Context(), s.Token)
	cl := c.cfg.Clients
	p := vendorPage{ID: id}
	v, err := cl.Catalog.GetVendor(ctx, &catalogv1.GetVendorRequest{VendorId: id})
	if status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument {
		c.fail(w, r, s, "Vendor "+id, err)
		return
	}
	if err != nil {
		p.Problems = append(p.Problems, "vendor: "+status.Convert(err).Message())
	}
	p.Vendor = v.GetVendor()
	t, err := cl.Trust.GetVendorTrust(ctx, &trustv1.GetVendorTrustRequest{VendorId: id})
	if err != nil && status.Code(err) != codes.NotFound {
		p.Problems = append(p.Problems, "trust: "+status.Convert(err).Message())
	}
	p.Trust = t.GetTrust()
	claims, err := cl.Trust.ListClaims(ctx, &trustv1.ListClaimsRequest{VendorId: id, PageSize: claimsPerPage})
	if err != nil {
		p.Problems = append(p.Problems, "claims: "+status.Convert(err).Message())
	}
	for _, cm := range claims.GetClaims() {
		switch cm.GetState() {
		case trustv1.ClaimState_CLAIM_STATE_REFUNDED, trustv1.ClaimState_CLAIM_STATE_REJECTED, trustv1.ClaimState_CLAIM_STATE_WITHDRAWN:
			continue
		}
		p.OpenClaims = append(p.OpenClaims, cm)
	}
	slices.SortStableFunc(p.OpenClaims, func(a, b *trustv1.Claim) int {
		return cmp.Compare(a.GetOpenTime().AsTime().UnixNano(), b.GetOpenTime().AsTime().UnixNano())
	})
	b, err := cl.Payouts.GetBalance(ctx, &payoutsv1.GetBalanceRequest{Owner: "vendor:" + id})
	if err != nil && status.Code(err) != codes.NotFound {
		p.Problems = append(p.Problems, "balances: "+status.Convert(err).Message())
	}
	p.Balance = b
	c.render(w, r, http.StatusOK, "vendor", s, p)
}

// --- formatting ---

func formatTime(t *timestamppb.Timestamp) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return "—"
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04:05.000000 UTC")
}

func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
