package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/bus"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream/blockfile"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// TestConsoleRedriveAndTamperInABrowser drives a headless Chromium against a
// real `custody run`:
//
//   - redrive: a consumer in another process, joined to the server's NATS
//     (--nats-listen, as `custody run --target=… --nats-url=…` joins it),
//     fails for good on a vendor's registration, which is parked. The
//     server's own reactions have no fault to inject, so this consumer is
//     the honest way to park an event of the real binary's stores. Once
//     its handler is fixed, support redrives the event from the parked
//     page; the page shows it handled, and the handler ran it once more,
//     once.
//   - tamper: the process is stopped, one event of the order is edited on
//     disk (its file checksum recomputed), the process restarted with
//     --allow-damaged, and the order page's chain badge is red and names
//     the edited event.
func TestConsoleRedriveAndTamperInABrowser(t *testing.T) {
	t.Parallel()
	ctx := browserContext(t)
	dir, addr, web, natsAddr := t.TempDir(), freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := serve(t, dir, addr, "--console-addr="+web, "--nats-listen="+natsAddr)
	base := "http://" + web

	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const consumer, vendor = "browser-redrive", "v-redrive"
	var fixed atomic.Bool
	var calls atomic.Int32
	c, err := bus.Subscribe(t.Context(), js, bus.Config{Name: consumer, SourceService: "catalog",
		EventTypes: []string{"custody.catalog.v1.VendorRegistered"}},
		func(_ context.Context, e eventstore.RecordedEvent) error {
			if !bytes.Contains(e.Data, []byte(vendor)) {
				return nil
			}
			calls.Add(1)
			if !fixed.Load() {
				return fault.Permanent(errors.New("vendor registrations are not understood yet"))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	ops := dialAs(t, dir, addr, "platform", "service", "support")
	prod := createProduct(t, ops.cat, vendor, 5, 1900)
	placed, err := dialAs(t, dir, addr, "buyer:b-redrive").ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "redrive-1", BuyerId: "b-redrive", Lines: []*orderv1.LineRequest{{SkuId: prod.GetSkus()[0].GetSkuId(), Quantity: 1}},
		ShippingAddress: address, Payment: &orderv1.Payment{PspReference: "psp-tamper-me", Amount: eur(1900)},
		WaitTimeout: durationpb.New(20 * time.Second)})
	if err != nil || placed.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("placing: %v %v", placed.GetOrder().GetState(), err)
	}
	orderID := placed.GetOrder().GetOrderId()

	type css = chromedp.CSS
	do(t, ctx, "signing in",
		chromedp.Navigate(base+"/parked?consumer="+consumer),
		chromedp.WaitVisible(css("#token")),
		chromedp.SetValue(css("#token"), mint(t, dir, "support")),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("form.who"))) // signed in: the sign-out form

	// The parked event on the page, with its redrive form.
	var seq uint64
	eventually(t, "the parked vendor registration", func() bool {
		r, err := ops.audit.ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{Consumer: consumer})
		if err != nil || len(r.GetParked()) != 1 {
			return false
		}
		seq = r.GetParked()[0].GetDeadLetterSequence()
		return true
	})
	row := fmt.Sprintf("#p%d", seq)
	do(t, ctx, "the parked page",
		chromedp.Navigate(base+"/parked?consumer="+consumer),
		chromedp.WaitVisible(css(row+" form.redrive")))
	if why := get(t, ctx, "why it was parked", chromedp.Text(css(row))); !strings.Contains(why, "vendor registrations are not understood yet") {
		t.Fatalf("the parked row: %q", why)
	}

	// The handler is fixed; support redrives the event from the page.
	fixed.Store(true)
	do(t, ctx, "redriving",
		chromedp.SetValue(css(row+` input[name="reason"]`), "handler fixed"),
		chromedp.Click(css(row+` form.redrive button`)),
		chromedp.WaitVisible(css(row+" .outcome")))
	var outcome string
	eventually(t, "the redrive handled on the page", func() bool {
		do(t, ctx, "reloading the parked page", chromedp.Navigate(base+"/parked?consumer="+consumer), chromedp.WaitVisible(css(row)))
		outcome = get(t, ctx, "the redrive's outcome", chromedp.Text(css(row+" td.redrive")))
		return strings.Contains(outcome, "handled")
	})
	if !strings.Contains(outcome, "support") {
		t.Errorf("the redrive shown as %q", outcome)
	}
	if n := get(t, ctx, "redrive forms", chromedp.Evaluate[int](`document.querySelectorAll("form.redrive").length`)); n != 0 {
		t.Fatalf("%d redrive forms after the redrive", n)
	}
	c.Stop()
	if n := calls.Load(); n != 2 {
		t.Fatalf("the handler ran %d times for the vendor; want 2 (parked, then redriven once)", n)
	}
	nc.Close()

	// The chain is green; then the order's OrderPlaced is edited on disk.
	do(t, ctx, "the order page", chromedp.Navigate(base+"/orders/"+orderID), chromedp.WaitVisible(css("#chain")))
	if badge := get(t, ctx, "the chain badge", chromedp.Text(css("#chain"))); !strings.Contains(badge, "Chain verified") {
		t.Fatalf("badge before tampering: %q", badge)
	}
	tl, err := ops.audit.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: orderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var placedEvent string
	for _, e := range tl.GetEvents() {
		if e.GetType() == "custody.order.v1.OrderPlaced" {
			placedEvent = e.GetEventId()
		}
	}
	stop(cmd)
	msgs := blockfile.Msgs(filepath.Join(dir, "nats"), "CUSTODY_ORDER")
	edited := false
	for s := uint64(1); s <= 4 && !edited; s++ {
		err := blockfile.Edit(msgs, s, func(msg []byte) bool {
			if i := bytes.Index(msg, []byte("psp-tamper-me")); i >= 0 {
				copy(msg[i:], "psp-TAMPER-me")
				edited = true
				return true
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !edited {
		t.Fatal("no order message holds the PSP reference to edit")
	}
	serve(t, dir, addr, "--console-addr="+web, "--allow-damaged")
	do(t, ctx, "the order page after tampering",
		chromedp.Navigate(base+"/orders/"+orderID), chromedp.WaitVisible(css("#chain")))
	badge := get(t, ctx, "the chain badge", chromedp.Text(css("#chain")))
	class := get(t, ctx, "the chain badge's class", chromedp.Evaluate[string](`document.getElementById("chain").className`))
	if !strings.Contains(class, "broken") || !strings.Contains(badge, "BROKEN") || !strings.Contains(badge, placedEvent) {
		t.Fatalf("badge after tampering (%s): %q; want red, naming %s", class, badge, placedEvent)
	}
	if os.Getenv("CUSTODY_CONSOLE_SCREENSHOTS") != "" {
		screenshot(t, ctx, "console-broken-chain.png")
	}
}
