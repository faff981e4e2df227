package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// The support console in a real headless Chromium against a real `custody
// run` (the harness's child process, console on a free port): sign in, find
// the order, its timeline in order, the replay slider, the chain badge, and
// a claim decided from the queue. It also takes the screenshots of
// docs/console.md: CUSTODY_CONSOLE_SCREENSHOTS=docs go test -run
// TestConsoleInABrowser ./cmd/custody writes them there.
//
// Without Chromium the test is skipped, saying so; with
// CUSTODY_REQUIRE_BROWSER=1 (.ci/run sets it) a missing browser fails it.

// chromium finds a Chromium to drive, or skips (fails when required).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium found (chromium, chromium-browser, google-chrome or headless-shell on PATH): the console's browser tests need one (Debian: apt-get install chromium)"
	if os.Getenv("CUSTODY_REQUIRE_BROWSER") == "1" {
		t.Fatal(why + "; CUSTODY_REQUIRE_BROWSER=1 makes that a failure")
	}
	t.Skip(why)
	return ""
}

// browserContext is a headless Chromium's tab, closed when the test ends.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium(t)), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on a context without a timeout
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, bounded, failing the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(actx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CUSTODY_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	ctx := browserContext(t)
	dir, addr, web := t.TempDir(), freeAddr(t), freeAddr(t)
	serve(t, dir, addr, "--console-addr="+web)
	base := "http://" + web

	// An order delivered and a counterfeit claim escalated to support,
	// through the services' APIs.
	o := orderForConsole(t, dir, addr)

	type css = chromedp.CSS
	do(t, ctx, "signing in",
		chromedp.Navigate(base+"/orders"),
		chromedp.WaitVisible(css("#token")), // signed out: the sign-in page
		chromedp.SetValue(css("#token"), mint(t, dir, "support")),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("form.search")))
	if h1 := get(t, ctx, "the heading", chromedp.Text(css("h1"))); h1 != "Find an order" {
		t.Fatalf("after signing in: %q", h1)
	}

	do(t, ctx, "finding the order by its tracking number",
		chromedp.SetValue(css(`select[name="carrier"]`), "dhl"),
		chromedp.SetValue(css(`input[name="tracking_number"]`), "4711 000 001"), // as orderForConsole shipped it, spaced as people type it
		chromedp.Submit(css(`input[name="tracking_number"]`)),
		chromedp.WaitVisible(css("#orders")),
		chromedp.Click(css(`#orders a[href="/orders/`+o.orderID+`"]`)),
		chromedp.WaitVisible(css("#timeline")))

	// The timeline lists every service's events in the audit's order.
	ids := get(t, ctx, "the timeline's events", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("li.ev")).map(e => e.id.slice(3))`))
	services := get(t, ctx, "the timeline's services", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("li.ev")).map(e => e.dataset.service)`))
	badge := get(t, ctx, "the chain badge", chromedp.Text(css("#chain")))
	tl, err := o.audit.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: o.orderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	shipped := 0
	for i, e := range tl.GetEvents() {
		want = append(want, e.GetEventId())
		if strings.HasSuffix(e.GetType(), ".FulfilmentShipped") {
			shipped = i + 1
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("the page's timeline %v, the audit's %v", ids, want)
	}
	for _, svc := range []string{"catalog", "order", "fulfilment", "trust", "payouts"} {
		if !slices.Contains(services, svc) {
			t.Errorf("no %s event in the browser's timeline (%v)", svc, services)
		}
	}
	if !strings.Contains(badge, "Chain verified") {
		t.Errorf("badge %q", badge)
	}
	screenshot(t, ctx, "console-order.png")

	// The slider, moved to the shipment and let go, shows the replay then
	// (console.js submits it: the CSP lets the console's own script run).
	now := get(t, ctx, "the replay now", chromedp.Text(css(".replay-fulfilment-state")))
	do(t, ctx, "moving the replay slider",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const s = document.getElementById("at"); s.value = %d;
				s.dispatchEvent(new Event("input")); s.dispatchEvent(new Event("change")); return true })()`, shipped))(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(css(fmt.Sprintf(`#at[value="%d"]`, shipped))))
	then := get(t, ctx, "the replay at the shipment", chromedp.Text(css(".replay-fulfilment-state")))
	if now != "delivered" || then != "shipped" {
		t.Fatalf("the replay's fulfilment: now %q, at the shipment %q; want delivered, shipped", now, then)
	}

	// The claims queue: decide the escalated claim.
	row := `#claim-` + o.claimID
	do(t, ctx, "the claims queue", chromedp.Navigate(base+"/claims"), chromedp.WaitVisible(css(row)))
	screenshot(t, ctx, "console-claims.png")
	do(t, ctx, "approving the refund",
		chromedp.SetValue(css(row+` form.approve input[name="rationale"]`), "serials do not match the packing record"),
		chromedp.Click(css(row+` button.approve`)),
		chromedp.WaitVisible(css(".notice")))
	if notice := get(t, ctx, "the notice", chromedp.Text(css(".notice"))); !strings.Contains(notice, o.claimID) {
		t.Fatalf("after deciding: %q", notice)
	}
	eventually(t, "the order refunded", func() bool {
		r, err := o.support.ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: o.orderID})
		return err == nil && r.GetOrder().GetRefundedTotal().GetAmountMinor() == 2500
	})
	c, err := o.trust.GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: o.claimID})
	if err != nil || c.GetClaim().GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || len(c.GetClaim().GetRefunds()) != 1 {
		t.Fatalf("the claim after the decision: %v %v", c.GetClaim(), err)
	}
}

type consoleOrder struct {
	orderID, claimID string
	support          *orderClients
	audit            auditv1.AuditServiceClient
	trust            trustv1.TrustServiceClient
}

func mint(t *testing.T, dir string, roles ...string) string {
	t.Helper()
	tok, err := platform.MintToken(dir, "", "", roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func trustAs(t *testing.T, dir, addr, role string) trustv1.TrustServiceClient {
	t.Helper()
	conn, err := server.Dial(addr, mint(t, dir, role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return trustv1.NewTrustServiceClient(conn)
}

// orderForConsole: vendor v-browser's order for buyer b-browser, shipped,
// delivered with proof, then a counterfeit claim escalated to support.
func orderForConsole(t *testing.T, dir, addr string) consoleOrder {
	t.Helper()
	ctx := t.Context()
	vendor := dialAs(t, dir, addr, "vendor:v-browser")
	prod := createProduct(t, vendor.cat, "v-browser", 5, 2500)
	sku := prod.GetSkus()[0].GetSkuId()
	placed, err := dialAs(t, dir, addr, "buyer:b-browser").ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: "browser-1", BuyerId: "b-browser", Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
		ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-browser", Amount: eur(2500)},
		WaitTimeout: durationpb.New(20 * time.Second)})
	if err != nil || placed.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("placing: %v %v", placed.GetOrder().GetState(), err)
	}
	id := placed.GetOrder().GetOrderId()
	var f *fulfilmentv1.Fulfilment
	eventually(t, "the fulfilment", func() bool {
		l, err := vendor.ful.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{VendorId: "v-browser", OrderId: id})
		if err == nil && len(l.GetFulfilments()) == 1 {
			f = l.GetFulfilments()[0]
		}
		return f != nil
	})
	const tracking = "4711000001"
	if _, err := vendor.ful.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{RequestId: "ship", FulfilmentId: f.GetFulfilmentId(),
		Carrier: "dhl", TrackingNumber: tracking, Packages: []*fulfilmentv1.Package{{PackageId: "1",
			Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 1}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo},
				Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SkuId: sku, SerialNumber: "SN-B-0001"}}}}}}); err != nil {
		t.Fatalf("shipping: %v", err)
	}
	carrier := dialAs(t, dir, addr, "carrier:dhl")
	at := time.Now().Add(-3 * time.Hour)
	for i, s := range []*fulfilmentv1.RecordTrackingEventRequest{
		{CarrierEventId: "b1", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, OccurTime: timestamppb.New(at), Location: "Hamburg"},
		{CarrierEventId: "b2", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, OccurTime: timestamppb.New(at.Add(time.Hour)), Location: "Leipzig hub"},
		{CarrierEventId: "b3", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(at.Add(2 * time.Hour)),
			Location: "Berlin", Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada Buyer", PhotoSha256: photo}},
	} {
		s.RequestId, s.Carrier, s.TrackingNumber = fmt.Sprintf("scan-%d", i), "dhl", tracking
		if _, err := carrier.ful.RecordTrackingEvent(ctx, s); err != nil {
			t.Fatalf("scan %d: %v", i, err)
		}
	}
	support := dialAs(t, dir, addr, "support")
	eventually(t, "the order delivered", func() bool {
		r, err := support.ord.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id})
		return err == nil && r.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_DELIVERED
	})
	claim, err := trustAs(t, dir, addr, "buyer:b-browser").OpenClaim(ctx, &trustv1.OpenClaimRequest{RequestId: "claim", OrderId: id,
		Reason: trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT, Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		Evidence: &trustv1.Evidence{Text: "The logo is printed, not stitched, and the serial is not the one on the box.",
			SerialNumbers: []string{"SN-FAKE-9"}, Sha256: []string{photo}}})
	if err != nil {
		t.Fatal(err)
	}
	tr := trustAs(t, dir, addr, "support")
	eventually(t, "the claim escalated", func() bool {
		c, err := tr.GetClaim(ctx, &trustv1.GetClaimRequest{ClaimId: claim.GetClaim().GetClaimId()})
		return err == nil && c.GetClaim().GetState() == trustv1.ClaimState_CLAIM_STATE_ESCALATED
	})
	// Everything settled into the audit index before the page reads it.
	// The last events the claim causes: trust escalates it, payouts holds
	// the vendor's share.
	eventually(t, "the claim and the hold in the audit timeline", func() bool {
		r, err := support.audit.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: id, PageSize: 1000})
		has := func(suffix string) bool {
			return slices.ContainsFunc(r.GetEvents(), func(e *auditv1.TimelineEvent) bool { return strings.HasSuffix(e.GetType(), suffix) })
		}
		return err == nil && has(".ClaimEscalated") && has(".ClaimHoldPlaced")
	})
	return consoleOrder{orderID: id, claimID: claim.GetClaim().GetClaimId(), support: support, audit: support.audit, trust: tr}
}
