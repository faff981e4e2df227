package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func TestSignedOutRequestsGoToSignIn(t *testing.T) {
	b := newBrowser(t)
	for _, path := range []string{"/orders", "/orders/o-1", "/claims", "/parked", "/vendors/v1"} {
		p := b.get(path)
		if p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/signin?next="+url.QueryEscape(path) {
			t.Errorf("GET %s signed out: %d to %q", path, p.Code, p.Header.Get("Location"))
		}
	}
	// An action signed out does nothing and goes to sign-in too.
	if p := b.post("/claims/c1/decide", url.Values{"decision": {"reject"}}); p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/signin" {
		t.Errorf("POST signed out: %d to %q", p.Code, p.Header.Get("Location"))
	}
	// A cookie that is not a token is no session.
	u, _ := url.Parse(b.base)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "custody_console", Value: "not-a-token"}})
	if p := b.get("/orders"); p.Code != http.StatusSeeOther {
		t.Errorf("with a junk cookie: %d", p.Code)
	}
}

func TestSupportSignsInAndOut(t *testing.T) {
	b := newBrowser(t)
	p := b.signIn(token(t, "support"))
	if p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/orders" {
		t.Fatalf("sign in: %d %q\n%s", p.Code, p.Header.Get("Location"), p.Body)
	}
	var session string
	for _, c := range p.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "custody_console=") {
			session = c
		}
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(session, attr) {
			t.Errorf("session cookie %q lacks %s", session, attr)
		}
	}
	if strings.Contains(session, "Secure") {
		t.Errorf("session cookie %q is Secure on plain HTTP (the browser would not send it back)", session)
	}
	orders := b.follow(p)
	if orders.Code != http.StatusOK {
		t.Fatalf("orders: %d\n%s", orders.Code, orders.Body)
	}
	contains(t, orders, "Find an order", "Sign out")
	csp := orders.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(orders.Body) {
		t.Errorf("inline script allowed or present: CSP %q", csp)
	}
	// The platform role signs in too.
	signedIn(t, "platform")

	// Signing out needs the page's CSRF token, then ends the session.
	if p := b.post("/signout", url.Values{}); p.Code != http.StatusForbidden {
		t.Fatalf("sign out without CSRF: %d", p.Code)
	}
	if p := b.get("/orders"); p.Code != http.StatusOK {
		t.Fatalf("still signed in after a refused sign-out: %d", p.Code)
	}
	if p := b.post("/signout", url.Values{"csrf": {orders.field(t, "csrf")}}); p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/signin" {
		t.Fatalf("sign out: %d %q", p.Code, p.Header.Get("Location"))
	}
	if p := b.get("/orders"); p.Code != http.StatusSeeOther {
		t.Fatalf("signed out, /orders: %d", p.Code)
	}
}

func TestOtherRolesCannotSignIn(t *testing.T) {
	for _, role := range []string{"vendor:acme", "buyer:ada", "creator:cleo", "carrier:dhl", "service"} {
		t.Run(role, func(t *testing.T) {
			b := newBrowser(t)
			p := b.signIn(token(t, role))
			if p.Code != http.StatusForbidden {
				t.Fatalf("%s signing in: %d\n%s", role, p.Code, p.Body)
			}
			contains(t, p, "This token cannot sign in to the console", "support and platform staff", role)
			if slices.ContainsFunc(p.Header.Values("Set-Cookie"), func(c string) bool { return strings.HasPrefix(c, "custody_console=") }) {
				t.Fatalf("a session cookie was set for %s", role)
			}
			if p := b.get("/orders"); p.Code != http.StatusSeeOther {
				t.Fatalf("after a refused sign-in, /orders: %d", p.Code)
			}
		})
	}
	t.Run("support token of another key", func(t *testing.T) {
		tok, err := platform.MintToken(t.TempDir(), "", "", []string{"support"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p := b.signIn(tok)
		if p.Code != http.StatusUnauthorized {
			t.Fatalf("a token the services do not trust: %d\n%s", p.Code, p.Body)
		}
		contains(t, p, "The services refused this token")
		if p := b.get("/orders"); p.Code != http.StatusSeeOther {
			t.Fatalf("after a refused sign-in, /orders: %d", p.Code)
		}
	})
	t.Run("not a token", func(t *testing.T) {
		p := newBrowser(t).signIn("hello")
		if p.Code != http.StatusBadRequest {
			t.Fatalf("junk: %d", p.Code)
		}
		contains(t, p, "not a Custody token")
	})
	t.Run("sign-in form from elsewhere", func(t *testing.T) {
		b := newBrowser(t)
		p := b.post("/signin", url.Values{"token": {token(t, "support")}})
		if p.Code != http.StatusForbidden {
			t.Fatalf("sign-in without the form's CSRF value: %d", p.Code)
		}
		if p := b.get("/orders"); p.Code != http.StatusSeeOther {
			t.Fatalf("signed in by a forged form: %d", p.Code)
		}
	})
}

func TestActionWithoutCSRFChangesNothing(t *testing.T) {
	d := deliverOrder(t, "v-csrf", "b-csrf", "Tee")
	c := escalate(t, d, "the logo is wrong")
	b := signedIn(t, "support")
	queue := b.get("/claims")
	contains(t, queue, c.GetClaimId())
	decide := url.Values{"decision": {"approve"}, "amount": {"25.00"}, "left": {"25.00"}, "currency": {"EUR"},
		"rationale": {"fake"}, "request_id": {"csrf-test"}}
	for name, csrf := range map[string][]string{"none": nil, "wrong": {"forged"}, "another session's": {signedIn(t, "support").get("/orders").field(t, "csrf")}} {
		form := url.Values{}
		for k, v := range decide {
			form[k] = v
		}
		if csrf != nil {
			form["csrf"] = csrf
		}
		p := b.post("/claims/"+c.GetClaimId()+"/decide", form)
		if p.Code != http.StatusForbidden {
			t.Fatalf("%s CSRF token: %d\n%s", name, p.Code, p.Body)
		}
		contains(t, p, "Nothing was changed")
	}
	shared.Settled(t)
	if got := claimOf(t, c.GetClaimId()); got.GetState() != trustv1.ClaimState_CLAIM_STATE_ESCALATED || got.GetRevision() != c.GetRevision() {
		t.Fatalf("the claim changed: %v revision %d, was %d", got.GetState(), got.GetRevision(), c.GetRevision())
	}
}

func TestStoreValuesRenderAsText(t *testing.T) {
	const title = `<script>alert("title")</script>`
	const says = `<script>alert("claim")</script><img src=x onerror=alert(1)>`
	d := deliverOrder(t, "v-xss", "b-xss", title)
	c := escalate(t, d, says)
	b := signedIn(t, "support")
	for _, path := range []string{"/orders/" + d.OrderID, "/claims"} {
		p := b.get(path)
		if p.Code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, p.Code, p.Body)
		}
		if strings.Contains(p.Body, "<script>alert") || strings.Contains(p.Body, "<img src=x") {
			t.Fatalf("%s renders store data as markup:\n%s", path, p.Body)
		}
		if !strings.Contains(p.Body, "&lt;script&gt;alert(&#34;claim&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("%s does not show the claim's text as text:\n%s", path, p.Body)
		}
	}
	contains(t, b.get("/orders/"+d.OrderID), "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;", c.GetClaimId())
}

var timelineEntry = regexp.MustCompile(`<li class="ev svc-(\w+)[^"]*" id="ev-([^"]+)" data-service="(\w+)" data-type="([^"]+)">`)

func TestOrderPageShowsEveryServicesEventsInOrder(t *testing.T) {
	d := deliverOrder(t, "v-tl", "b-tl", "Mug")
	shared.Settled(t)
	b := signedIn(t, "support")
	p := b.get("/orders/" + d.OrderID)
	if p.Code != http.StatusOK {
		t.Fatalf("order page: %d\n%s", p.Code, p.Body)
	}
	want, err := platformtest.As(t, shared, auditv1.NewAuditServiceClient, "support").GetOrderTimeline(t.Context(),
		&auditv1.GetOrderTimelineRequest{OrderId: d.OrderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	services := map[string]bool{}
	for _, m := range timelineEntry.FindAllStringSubmatch(p.Body, -1) {
		shown = append(shown, m[2])
		services[m[3]] = true
	}
	var ids []string
	for _, e := range want.GetEvents() {
		ids = append(ids, e.GetEventId())
	}
	if !slices.Equal(shown, ids) {
		t.Fatalf("the page shows %d events %v, the audit timeline has %d %v", len(shown), shown, len(ids), ids)
	}
	for _, svc := range []string{"catalog", "order", "fulfilment", "payouts"} {
		if !services[svc] {
			t.Errorf("no %s event on the page (services shown: %v)", svc, services)
		}
	}
	contains(t, p, "Chain verified", "Parts per vendor", d.Tracking, "Leipzig hub", "SN-v-tl", "Mug")
	// The money per party, summed from the ledger's entries of the order.
	contains(t, p, `id="parties"`, `data-party="buyer"`, `data-party="vendor v-tl"`, `data-party="platform"`)
	// The shipment's scans on its time axis: shipped first, delivered last of the scans.
	marks := regexp.MustCompile(`<g class="mark (\w+)">`).FindAllStringSubmatch(p.Body, -1)
	var kinds []string
	for _, m := range marks {
		kinds = append(kinds, m[1])
	}
	if len(kinds) < 3 || kinds[0] != "ship" || !slices.Contains(kinds, "delivered") {
		t.Errorf("the scan axis shows %v, want shipped, the scans and delivered", kinds)
	}

	// The replay slider: at the shipment the fulfilment is shipped, at the
	// last event delivered.
	shipped := slices.IndexFunc(want.GetEvents(), func(e *auditv1.TimelineEvent) bool {
		return strings.HasSuffix(e.GetType(), ".FulfilmentShipped")
	}) + 1
	if shipped == 0 {
		t.Fatal("no FulfilmentShipped in the timeline")
	}
	state := regexp.MustCompile(`replay-fulfilment-state">([^<]+)<`)
	at := func(n int) string {
		p := b.get(fmt.Sprintf("/orders/%s?at=%d", d.OrderID, n))
		m := state.FindStringSubmatch(p.Body)
		if p.Code != http.StatusOK || m == nil {
			t.Fatalf("replay at %d: %d\n%s", n, p.Code, p.Body)
		}
		return m[1]
	}
	if s := at(shipped); s != "shipped" {
		t.Errorf("replayed at FulfilmentShipped (#%d): fulfilment %q, want shipped", shipped, s)
	}
	if s := at(len(ids)); s != "delivered" {
		t.Errorf("replayed at the last event: fulfilment %q, want delivered", s)
	}
	if p := b.get("/orders/" + d.OrderID + "?at=0"); p.Code != http.StatusBadRequest {
		t.Errorf("replay at 0: %d", p.Code)
	}
	if p := b.get("/orders/no-such-order"); p.Code != http.StatusNotFound {
		t.Errorf("a missing order: %d", p.Code)
	}
}

func TestSupportDecidesAnEscalatedClaim(t *testing.T) {
	d := deliverOrder(t, "v-dec", "b-dec", "Bag")
	c := escalate(t, d, "stitching is off")
	b := signedIn(t, "support")
	queue := b.get("/claims")
	if queue.Code != http.StatusOK {
		t.Fatalf("queue: %d\n%s", queue.Code, queue.Body)
	}
	row := regexp.MustCompile(`(?s)<tr class="[^"]*" id="claim-` + regexp.QuoteMeta(c.GetClaimId()) + `">(.*?)</tr>`).FindStringSubmatch(queue.Body)
	if row == nil {
		t.Fatalf("the queue does not list %s:\n%s", c.GetClaimId(), queue.Body)
	}
	form := page{Body: row[1]}
	approve := url.Values{"csrf": {form.field(t, "csrf")}, "request_id": {form.field(t, "request_id")}, "decision": {"approve"},
		"currency": {"EUR"}, "left": {"25.00"}, "amount": {"25.00"}, "rationale": {"serials do not match the packing record"},
		"counterfeit": {"yes"}, "back": {"/claims"}}
	// Twice, as a double click sends it: one decision, one refund.
	for i := range 2 {
		p := b.post("/claims/"+c.GetClaimId()+"/decide", approve)
		if p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/claims?decided="+c.GetClaimId() {
			t.Fatalf("decision %d: %d %q\n%s", i+1, p.Code, p.Header.Get("Location"), p.Body)
		}
	}
	got := claimOf(t, c.GetClaimId())
	if got.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || len(got.GetRefunds()) != 1 || got.GetRefundedAmount().GetAmountMinor() != 2500 ||
		!got.GetResolution().GetCounterfeitConfirmed() || !strings.Contains(got.GetResolution().GetDecidedBy(), "support") {
		t.Fatalf("after the decision: %v, %d refunds, refunded %v, resolution %v", got.GetState(), len(got.GetRefunds()), got.GetRefundedAmount(), got.GetResolution())
	}
	ord := platformtest.As(t, shared, orderv1.NewOrderServiceClient, "support")
	platformtest.Until(t, "the order refunded", func() bool {
		o, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: d.OrderID})
		return err == nil && o.GetOrder().GetRefundedTotal().GetAmountMinor() == 2500
	})
	after := b.get("/claims?decided=" + c.GetClaimId())
	contains(t, after, "Claim "+c.GetClaimId()+" decided")
	if strings.Contains(after.Body, `id="claim-`+c.GetClaimId()+`"`) {
		t.Fatal("the decided claim is still in the queue")
	}
	contains(t, b.get("/orders/"+d.OrderID), "refund_full", "serials do not match the packing record")
}

func TestDecisionFormsAreChecked(t *testing.T) {
	d := deliverOrder(t, "v-bad", "b-bad", "Cap")
	c := escalate(t, d, "odd label")
	b := signedIn(t, "support")
	csrf := b.get("/orders").field(t, "csrf")
	for name, form := range map[string]url.Values{
		"no rationale":   {"decision": {"reject"}, "request_id": {"r1"}},
		"no request_id":  {"decision": {"reject"}, "rationale": {"no"}},
		"unknown":        {"decision": {"maybe"}, "request_id": {"r1"}, "rationale": {"no"}},
		"bad amount":     {"decision": {"approve"}, "request_id": {"r1"}, "rationale": {"ok"}, "currency": {"EUR"}, "left": {"25.00"}, "amount": {"12.345"}},
		"zero amount":    {"decision": {"approve"}, "request_id": {"r1"}, "rationale": {"ok"}, "currency": {"EUR"}, "left": {"25.00"}, "amount": {"0"}},
		"more than left": {"decision": {"approve"}, "request_id": {"r2"}, "rationale": {"ok"}, "currency": {"EUR"}, "left": {"25.00"}, "amount": {"99.00"}},
	} {
		form.Set("csrf", csrf)
		if p := b.post("/claims/"+c.GetClaimId()+"/decide", form); p.Code != http.StatusBadRequest {
			t.Errorf("%s: %d\n%s", name, p.Code, p.Body)
		}
	}
	if got := claimOf(t, c.GetClaimId()); got.GetState() != trustv1.ClaimState_CLAIM_STATE_ESCALATED {
		t.Fatalf("a refused form changed the claim: %v", got.GetState())
	}
}

func TestParkedAndVendorPages(t *testing.T) {
	d := deliverOrder(t, "v-page", "b-page", "Scarf")
	escalate(t, d, "wrong colour")
	b := signedIn(t, "support")
	v := b.get("/vendors/v-page")
	if v.Code != http.StatusOK {
		t.Fatalf("vendor page: %d\n%s", v.Code, v.Body)
	}
	contains(t, v, "Tier", "Shipped on time", "Open claims", "escalated", "Balances", "EUR")
	if p := b.get("/vendors?vendor_id=v-page"); p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/vendors/v-page" {
		t.Errorf("vendor search: %d %q", p.Code, p.Header.Get("Location"))
	}
	if p := b.get("/parked"); p.Code != http.StatusOK {
		t.Fatalf("parked: %d\n%s", p.Code, p.Body)
	}
	list := b.get("/orders?vendor=v-page")
	contains(t, list, d.OrderID)
	if p := b.get("/orders?order_id=" + d.OrderID); p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/orders/"+d.OrderID {
		t.Errorf("find by order id: %d %q", p.Code, p.Header.Get("Location"))
	}
	if p := b.get("/orders?buyer=b-page&state=nonsense"); p.Code != http.StatusBadRequest {
		t.Errorf("an unknown state: %d", p.Code)
	}
}

// TestSearchFindsOrders: the search finds an order by tracking number, PSP
// reference, creator and place time range, lists recent orders with no
// filter, and keeps the form with the order service's words when it
// refuses a search.
func TestSearchFindsOrders(t *testing.T) {
	d := deliverOrder(t, "v-search", "b-search", "Cap")
	// lea-search links the cap; b-search2 orders it through the link.
	link, err := platformtest.As(t, shared, catalogv1.NewCatalogServiceClient, "creator:lea-search").CreateAffiliateLink(t.Context(),
		&catalogv1.CreateAffiliateLinkRequest{RequestId: "link", CreatorId: "lea-search", ProductId: strings.TrimSuffix(d.SKU, "-one")})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC()
	o, err := platformtest.As(t, shared, orderv1.NewOrderServiceClient, "buyer:b-search2").PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "o1", BuyerId: "b-search2", Lines: []*orderv1.LineRequest{{SkuId: d.SKU, Quantity: 1}},
		ShippingAddress: &typev1.Address{RecipientName: "Bo", AddressLines: []string{"2 Main St"}, Locality: "Berlin", CountryCode: "DE"},
		Payment:         &orderv1.Payment{PspReference: "psp-search-2", Amount: eur(2500)},
		Attribution:     &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: link.GetLink().GetLinkId()}}})
	if err != nil {
		t.Fatal(err)
	}
	linked := o.GetOrder().GetOrderId()
	after := time.Now().UTC().Add(time.Millisecond)

	b := signedIn(t, "support")
	search := func(t *testing.T, v url.Values, want, not string) page {
		t.Helper()
		p := b.get("/orders?" + v.Encode())
		if p.Code != http.StatusOK {
			t.Fatalf("%v: %d\n%s", v, p.Code, p.Body)
		}
		contains(t, p, `href="/orders/`+want+`"`)
		if strings.Contains(p.Body, `href="/orders/`+not+`"`) {
			t.Fatalf("%v lists %s too:\n%s", v, not, p.Body)
		}
		return p
	}
	t.Run("tracking number", func(t *testing.T) {
		search(t, url.Values{"carrier": {"dhl"}, "tracking_number": {d.Tracking}}, d.OrderID, linked)
		// as people type it, with spaces
		search(t, url.Values{"carrier": {"dhl"}, "tracking_number": {d.Tracking[:4] + " " + d.Tracking[4:]}}, d.OrderID, linked)
		if p := b.get("/orders?" + url.Values{"carrier": {"ups"}, "tracking_number": {d.Tracking}}.Encode()); strings.Contains(p.Body, d.OrderID) {
			t.Fatalf("another carrier's number finds the order:\n%s", p.Body)
		}
	})
	t.Run("PSP reference", func(t *testing.T) {
		search(t, url.Values{"psp_reference": {"psp-b-search"}}, d.OrderID, linked)
		search(t, url.Values{"psp_reference": {"psp-search-2"}}, linked, d.OrderID)
	})
	t.Run("creator", func(t *testing.T) {
		p := search(t, url.Values{"creator": {"lea-search"}}, linked, d.OrderID)
		contains(t, p, "lea-search")
	})
	t.Run("date range", func(t *testing.T) {
		search(t, url.Values{"from": {before.Format(time.RFC3339Nano)}, "to": {after.Format(time.RFC3339Nano)}}, linked, d.OrderID)
		search(t, url.Values{"to": {before.Format(time.RFC3339Nano)}, "buyer": {"b-search"}}, d.OrderID, linked)
		// a date is its whole day
		search(t, url.Values{"from": {before.Format("2006-01-02")}, "to": {before.Format("2006-01-02")}, "creator": {"lea-search"}}, linked, d.OrderID)
	})
	t.Run("no filter lists recent orders", func(t *testing.T) {
		p := b.get("/orders")
		contains(t, p, "Recent orders", `href="/orders/`+linked+`"`, `href="/orders/`+d.OrderID+`"`)
		if strings.Contains(p.Body, "not yet") {
			t.Fatalf("the page still says the search is not there yet:\n%s", p.Body)
		}
	})
	t.Run("refused", func(t *testing.T) {
		p := b.get("/orders?" + url.Values{"tracking_number": {d.Tracking}}.Encode())
		if p.Code != http.StatusBadRequest {
			t.Fatalf("a tracking number without its carrier: %d\n%s", p.Code, p.Body)
		}
		contains(t, p, "carrier: required with tracking_number", `name="tracking_number" value="`+d.Tracking+`"`)
		if p := b.get("/orders?from=yesterday"); p.Code != http.StatusBadRequest {
			t.Fatalf("a from that is not a time: %d", p.Code)
		}
	})
}
