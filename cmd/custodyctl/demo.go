package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// demoTargets are the services the demo needs in the server.
var demoTargets = []string{"catalog", "order", "fulfilment", "trust", "payouts", "audit"}

const demoSteps = 13

// demoCmd runs the story end to end against a running server whose
// clock is fake: a creator's livestream flash sale with several buyers and
// two vendors; shipments with packing evidence and carrier scans; a
// not-received claim refunded automatically; a counterfeit claim decided by
// support; a ship-by deadline missed; return windows closing; a payout run;
// a refund after the payout clawed back; then one order's full timeline and
// its chain verification. Days pass by AdvanceClock, so it takes seconds.
// Every outcome is checked: anything unexpected ends it with an error.
func (c *cli) demoCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("demo", "[--data-dir D] [--timeout T]",
		"Runs the end-to-end story against a server started with --clock=fake, minting its\n"+
			"tokens with the key in --data-dir (the server's). Ids are unique per run, so it can run\n"+
			"again against the same server. Exits non-zero if anything unexpected happens.")
	dataDir := fs.String("data-dir", c.dataDir, "the server's data directory (its keys/ sign the demo's tokens)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	wait := fs.Duration("wait", 20*time.Second, "how long to wait for each asynchronous outcome")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if c.json {
		return errors.New("demo: --json is not supported; the demo prints its story")
	}
	if fi, err := os.Stat(filepath.Join(*dataDir, "keys")); err != nil || !fi.IsDir() {
		return fmt.Errorf("demo: no signing key in %s: pass the server's --data-dir (the demo mints its tokens with it)", filepath.Join(*dataDir, "keys"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := server.Dial(c.addr, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	d := &demo{
		out: c.out, dataDir: *dataDir, wait: *wait, tokens: map[string]string{},
		run:  strconv.FormatInt(time.Now().UnixNano(), 36),
		cat:  catalogv1.NewCatalogServiceClient(conn),
		ord:  orderv1.NewOrderServiceClient(conn),
		ful:  fulfilmentv1.NewFulfilmentServiceClient(conn),
		tru:  trustv1.NewTrustServiceClient(conn),
		pay:  payoutsv1.NewPayoutsServiceClient(conn),
		aud:  auditv1.NewAuditServiceClient(conn),
		sys:  systemv1.NewSystemServiceClient(conn),
		conn: conn,
	}
	start := time.Now()
	if err := d.story(ctx); err != nil {
		fmt.Fprintf(c.out, "\ndemo FAILED after %s (run %s)\n", time.Since(start).Round(time.Millisecond), d.run)
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(c.out, "\ndemo finished in %s: every check passed (run %s)\n", time.Since(start).Round(time.Millisecond), d.run)
	return nil
}

type demo struct {
	out     io.Writer
	dataDir string
	wait    time.Duration
	run     string
	step    int
	now     time.Time // the server's clock, as last read or moved

	mu     sync.Mutex
	tokens map[string]string

	conn *grpc.ClientConn
	cat  catalogv1.CatalogServiceClient
	ord  orderv1.OrderServiceClient
	ful  fulfilmentv1.FulfilmentServiceClient
	tru  trustv1.TrustServiceClient
	pay  payoutsv1.PayoutsServiceClient
	aud  auditv1.AuditServiceClient
	sys  systemv1.SystemServiceClient

	vendorA, vendorB, creator string
	tee, buds                 *catalogv1.Sku
	session                   string
	orders                    []*demoOrder
	watch                     demoWatch
	fulfilments               map[string]*fulfilmentv1.Fulfilment // by order id + "/" + vendor
	tracking                  map[string]string                   // fulfilment id → tracking number
	carrierOf                 map[string]string                   // fulfilment id → carrier
	seq                       int
}

// demoOrder is one buyer's order in the story, with what happens to it.
type demoOrder struct {
	n     int
	buyer string
	tee   int64
	buds  int64
	role  string // what the story does with it
	id    string
	total *typev1.Money
}

func (o *demoOrder) key(vendor string) string { return o.id + "/" + vendor }

// ---- plumbing ----------------------------------------------------------------

// as returns ctx carrying a token for role, minted with the server's key.
func (d *demo) as(ctx context.Context, role string) context.Context {
	d.mu.Lock()
	tok, ok := d.tokens[role]
	d.mu.Unlock()
	if !ok {
		var err error
		tok, err = platform.MintToken(d.dataDir, "", "", []string{role}, 2*time.Hour)
		if err != nil {
			// Only a malformed role fails here, which is a bug in the demo.
			panic(fmt.Sprintf("mint %s: %v", role, err))
		}
		d.mu.Lock()
		d.tokens[role] = tok
		d.mu.Unlock()
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func (d *demo) header(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, demoSteps, title)
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "      "+format+"\n", args...)
}

// indented returns a writer that indents every line (for tables).
func (d *demo) indented() *indentWriter { return &indentWriter{w: d.out, prefix: "      "} }

type indentWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, ch := range p {
		if !iw.mid {
			b.WriteString(iw.prefix)
			iw.mid = true
		}
		b.WriteByte(ch)
		if ch == '\n' {
			iw.mid = false
		}
	}
	if _, err := iw.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// poll calls check until it reports done, it fails, or d.wait passes.
// NotFound and Unavailable count as "not yet" (read sides catch up).
func (d *demo) poll(ctx context.Context, what string, check func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(d.wait)
	pause := 20 * time.Millisecond
	var last error
	for {
		ok, err := check(ctx)
		switch {
		case err == nil && ok:
			return nil
		case err != nil && !notYet(err):
			return fmt.Errorf("%s: %w", what, err)
		case err != nil:
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: still not done after %s (last: %v)", what, d.wait, last)
			}
			return fmt.Errorf("%s: still not done after %s", what, d.wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(pause*2, 250*time.Millisecond)
	}
}

func notYet(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.Unavailable:
		return true
	}
	return false
}

func (d *demo) id(kind string) string { return kind + "-" + d.run }

// advance moves the server's fake clock.
func (d *demo) advance(ctx context.Context, by time.Duration) error {
	resp, err := d.sys.AdvanceClock(d.as(ctx, "platform"), &systemv1.AdvanceClockRequest{By: durationpb.New(by)})
	if err != nil {
		return rpcError("AdvanceClock", err)
	}
	d.now = resp.GetNow().AsTime()
	d.say("⏩ clock +%s → %s", fmtDays(by), d.now.UTC().Format(timeLayout))
	return nil
}

func fmtDays(by time.Duration) string {
	if by%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", by/(24*time.Hour))
	}
	s := by.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// trackingNumber makes a tracking number unique to this run in the
// carrier's format (dhl: 10 digits, dpd: 14 digits).
func (d *demo) trackingNumber(carrier string) string {
	d.seq++
	h := fnv.New64a()
	h.Write([]byte(d.run))
	sum := h.Sum64()
	if carrier == "dhl" {
		return fmt.Sprintf("%06d%04d", sum%1_000_000, d.seq)
	}
	return fmt.Sprintf("%010d%04d", sum%10_000_000_000, d.seq)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func eurMoney(minor int64) *typev1.Money {
	return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor}
}

// ---- the story ---------------------------------------------------------------

func (d *demo) story(ctx context.Context) error {
	steps := []func(context.Context) error{
		d.checkServer, d.setUp, d.flashSale, d.cancelOne, d.ship, d.scansInTransit, d.deliveries,
		d.counterfeitClaim, d.notReceivedClaim, d.returnWindows, d.payoutRun, d.clawback, d.timeline,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// 1: the server runs every service on a fake clock.
func (d *demo) checkServer(ctx context.Context) error {
	d.header("The server: every service, on a fake clock")
	clk, err := d.sys.GetClock(d.as(ctx, "platform"), &systemv1.GetClockRequest{})
	if err != nil {
		if status.Code(err) == codes.Unauthenticated {
			return fmt.Errorf("the server refuses tokens signed with %s/keys: is that the server's --data-dir? (%v)", d.dataDir, err)
		}
		return rpcError("GetClock", err)
	}
	if !clk.GetFake() {
		return errors.New("the server's clock is wall time: start it with `custody run --clock=fake` (the demo passes days with AdvanceClock)")
	}
	d.now = clk.GetNow().AsTime()
	st, err := d.sys.GetStatus(d.as(ctx, "platform"), &systemv1.GetStatusRequest{})
	if err != nil {
		return rpcError("GetStatus", err)
	}
	var missing []string
	for _, t := range demoTargets {
		if !slices.Contains(st.GetTargets(), t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the server does not run %s (targets: %s); the demo needs %s",
			strings.Join(missing, ", "), strings.Join(st.GetTargets(), ", "), strings.Join(demoTargets, ", "))
	}
	d.say("version %s, targets %s", st.GetVersion(), strings.Join(st.GetTargets(), ", "))
	d.say("fake clock at %s; run id %s (every id and request id of this run carries it)", d.now.UTC().Format(timeLayout), d.run)
	return nil
}

// 2: two vendors, their products, and a creator live with both pinned.
func (d *demo) setUp(ctx context.Context) error {
	d.header("Two vendors list products; a creator goes live and pins both")
	d.vendorA, d.vendorB, d.creator = "acme-"+d.run, "bolt-"+d.run, "cleo-"+d.run
	d.orders = []*demoOrder{
		{n: 1, tee: 1, buds: 1, role: "delivered; refund after the payout is clawed back (its timeline ends the demo)"},
		{n: 2, tee: 1, buds: 1, role: "earbuds never arrive: not-received claim, refunded automatically"},
		{n: 3, buds: 1, role: "counterfeit claim: support decides"},
		{n: 4, tee: 2, role: "delivered, paid out"},
		{n: 5, tee: 1, buds: 1, role: "earbuds vendor misses the ship-by deadline: that part is cancelled"},
		{n: 6, buds: 2, role: "delivered, paid out"},
		{n: 7, tee: 1, role: "buyer cancels before shipping"},
		{n: 8, tee: 1, buds: 1, role: "buyer cancels the earbuds before shipping; the tee is delivered, paid out"},
	}
	var budsUnits int64
	for _, o := range d.orders {
		o.buyer = fmt.Sprintf("buyer%d-%s", o.n, d.run)
		budsUnits += o.buds
	}
	type product struct {
		vendor, name, title, code, skuTitle string
		price, stock                        int64
		out                                 **catalogv1.Sku
	}
	for _, p := range []product{
		{d.vendorA, "Acme Tees", "Logo tee", "black_m", "Black, M", 2500, 50, &d.tee},
		{d.vendorB, "Bolt Audio", "Wireless earbuds", "white", "White", 5990, budsUnits, &d.buds},
	} {
		vctx := d.as(ctx, "vendor:"+p.vendor)
		if _, err := d.cat.RegisterVendor(vctx, &catalogv1.RegisterVendorRequest{RequestId: d.id("reg"), VendorId: p.vendor, DisplayName: p.name, CountryCode: "DE"}); err != nil {
			return rpcError("RegisterVendor", err)
		}
		resp, err := d.cat.CreateProduct(vctx, &catalogv1.CreateProductRequest{
			RequestId: d.id("prod"), VendorId: p.vendor, Title: p.title, Category: "electronics", AffiliateCommissionBps: 1000,
			Skus: []*catalogv1.SkuSpec{{Code: p.code, Title: p.skuTitle, Price: eurMoney(p.price), InitialStock: p.stock}},
		})
		if err != nil {
			return rpcError("CreateProduct", err)
		}
		*p.out = resp.GetProduct().GetSkus()[0]
		d.say("vendor %-22s %s: %s at %s, %d in stock, 10%% to creators", p.vendor, p.name, p.title, fmtMoney(eurMoney(p.price)), p.stock)
	}
	cctx := d.as(ctx, "creator:"+d.creator)
	sess, err := d.cat.StartLiveSession(cctx, &catalogv1.StartLiveSessionRequest{RequestId: d.id("live"), CreatorId: d.creator, Title: "Friday flash sale"})
	if err != nil {
		return rpcError("StartLiveSession", err)
	}
	d.session = sess.GetSession().GetSessionId()
	for _, sku := range []*catalogv1.Sku{d.tee, d.buds} {
		pid := strings.TrimSuffix(sku.GetSkuId(), "-"+sku.GetCode())
		if _, err := d.cat.PinProduct(cctx, &catalogv1.PinProductRequest{RequestId: d.id("pin-" + pid), SessionId: d.session, ProductId: pid}); err != nil {
			return rpcError("PinProduct", err)
		}
	}
	d.say("creator %s is live (session %s) with both products pinned", d.creator, d.session)
	return nil
}

// 3: eight buyers order at once during the livestream.
func (d *demo) flashSale(ctx context.Context) error {
	d.header(fmt.Sprintf("Flash sale: %d buyers order at once during the livestream", len(d.orders)))
	// The vendor of the tees watches its shipments live for the whole story.
	d.startWatch(ctx)
	var placed, confirmed atomic.Int64
	p := newProgress(d.out, "      orders placed", len(d.orders))
	errs := make([]error, len(d.orders))
	var wg sync.WaitGroup
	for i, o := range d.orders {
		wg.Go(func() {
			var lines []*orderv1.LineRequest
			total := int64(0)
			if o.tee > 0 {
				lines = append(lines, &orderv1.LineRequest{SkuId: d.tee.GetSkuId(), Quantity: o.tee})
				total += o.tee * d.tee.GetPrice().GetAmountMinor()
			}
			if o.buds > 0 {
				lines = append(lines, &orderv1.LineRequest{SkuId: d.buds.GetSkuId(), Quantity: o.buds})
				total += o.buds * d.buds.GetPrice().GetAmountMinor()
			}
			resp, err := d.ord.PlaceOrder(d.as(ctx, "buyer:"+o.buyer), &orderv1.PlaceOrderRequest{
				RequestId: d.id("order"), BuyerId: o.buyer, Lines: lines,
				ShippingAddress: &typev1.Address{RecipientName: fmt.Sprintf("Buyer %d", o.n), AddressLines: []string{fmt.Sprintf("%d Market St", o.n)}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
				Attribution:     &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: d.session}},
				Payment:         &orderv1.Payment{PspReference: d.id(fmt.Sprintf("psp%d", o.n)), Amount: eurMoney(total)},
				WaitTimeout:     durationpb.New(15 * time.Second),
			})
			if err != nil {
				errs[i] = rpcError("PlaceOrder", err)
				return
			}
			o.id, o.total = resp.GetOrder().GetOrderId(), resp.GetOrder().GetTotal()
			if s := resp.GetOrder().GetState(); s != orderv1.OrderState_ORDER_STATE_CONFIRMED {
				errs[i] = fmt.Errorf("order %d is %s, want confirmed (reason %q)", o.n, enumName(s), resp.GetOrder().GetReason())
				return
			}
			confirmed.Add(1)
			p.Set(int(placed.Add(1)), fmt.Sprintf("%d confirmed", confirmed.Load()))
		})
	}
	wg.Wait()
	p.Done(int(placed.Load()), fmt.Sprintf("%d confirmed", confirmed.Load()))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	tw := table(d.indented())
	row(tw, "#", "ORDER", "BUYER", "LINES", "TOTAL", "WHAT HAPPENS NEXT")
	for _, o := range d.orders {
		var l []string
		if o.tee > 0 {
			l = append(l, fmt.Sprintf("%d tee", o.tee))
		}
		if o.buds > 0 {
			l = append(l, fmt.Sprintf("%d earbuds", o.buds))
		}
		row(tw, o.n, o.id, o.buyer, strings.Join(l, " + "), fmtMoney(o.total), o.role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	prod, err := d.cat.GetProduct(d.as(ctx, "platform"), &catalogv1.GetProductRequest{ProductId: strings.TrimSuffix(d.buds.GetSkuId(), "-"+d.buds.GetCode())})
	if err != nil {
		return rpcError("GetProduct", err)
	}
	s := prod.GetProduct().GetSkus()[0]
	if s.GetAvailable() != 0 {
		return fmt.Errorf("earbuds: %d available after the sale, want 0 (sold out)", s.GetAvailable())
	}
	d.say("earbuds sold out: %d available, %d reserved — every credited line earns %s 10%%", s.GetAvailable(), s.GetReserved(), d.creator)
	return nil
}

// 4: buyer 7 cancels before anything ships; buyer 8 cancels one line.
func (d *demo) cancelOne(ctx context.Context) error {
	d.header("Buyers cancel before shipping: a whole order, and one line of another")
	if err := d.advance(ctx, 30*time.Minute); err != nil {
		return err
	}
	o := d.orders[6]
	resp, err := d.ord.CancelOrder(d.as(ctx, "buyer:"+o.buyer), &orderv1.CancelOrderRequest{RequestId: d.id("cancel"), OrderId: o.id, Reason: "changed my mind during the stream"})
	if err != nil {
		return rpcError("CancelOrder", err)
	}
	if s := resp.GetOrder().GetState(); s != orderv1.OrderState_ORDER_STATE_CANCELLED {
		return fmt.Errorf("order 7 is %s after CancelOrder, want cancelled", enumName(s))
	}
	if err := d.poll(ctx, "order 7's fulfilment cancelled and its escrow returned", func(ctx context.Context) (bool, error) {
		fl, err := d.ful.ListFulfilments(d.as(ctx, "support"), &fulfilmentv1.ListFulfilmentsRequest{OrderId: o.id})
		if err != nil {
			return false, err
		}
		if len(fl.GetFulfilments()) != 1 || fl.GetFulfilments()[0].GetState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED {
			return false, nil
		}
		st, err := d.pay.GetOrderSettlement(d.as(ctx, "support"), &payoutsv1.GetOrderSettlementRequest{OrderId: o.id})
		if err != nil {
			return false, err
		}
		return len(st.GetSettlement().GetParts()) == 1 && st.GetSettlement().GetParts()[0].GetStage() == payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED, nil
	}); err != nil {
		return err
	}
	d.say("order 7 cancelled: its fulfilment is cancelled, the tee released, %s of escrow returned to the buyer", fmtMoney(o.total))
	return d.cancelLine(ctx)
}

// cancelLine: buyer 8 cancels its earbuds line; the tee goes on.
func (d *demo) cancelLine(ctx context.Context) error {
	o := d.orders[7]
	resp, err := d.ord.CancelOrderLines(d.as(ctx, "buyer:"+o.buyer), &orderv1.CancelOrderLinesRequest{
		RequestId: d.id("cancel-line"), OrderId: o.id, Reason: "found them cheaper", Lines: []*orderv1.LineCancellation{{LineId: "2"}}})
	if err != nil {
		return rpcError("CancelOrderLines", err)
	}
	got := resp.GetOrder()
	price := d.buds.GetPrice().GetAmountMinor()
	var budsPart *orderv1.VendorPart
	for _, p := range got.GetParts() {
		if p.GetVendorId() == d.vendorB {
			budsPart = p
		}
	}
	if got.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED || got.GetRefundedTotal().GetAmountMinor() != price ||
		budsPart.GetState() != orderv1.PartState_PART_STATE_CANCELLED {
		return fmt.Errorf("order 8 after cancelling its earbuds: %s, refunded %s, earbuds part %s; want confirmed, %s, cancelled",
			enumName(got.GetState()), fmtMoney(got.GetRefundedTotal()), enumName(budsPart.GetState()), fmtMoney(eurMoney(price)))
	}
	if err := d.poll(ctx, "order 8's earbuds released, dropped by the vendor and their escrow returned", func(ctx context.Context) (bool, error) {
		fl, err := d.ful.ListFulfilments(d.as(ctx, "support"), &fulfilmentv1.ListFulfilmentsRequest{OrderId: o.id, VendorId: d.vendorB})
		if err != nil {
			return false, err
		}
		if len(fl.GetFulfilments()) != 1 || len(fl.GetFulfilments()[0].GetUnshippedLines()) != 0 {
			return false, nil
		}
		st, err := d.pay.GetOrderSettlement(d.as(ctx, "support"), &payoutsv1.GetOrderSettlementRequest{OrderId: o.id})
		if err != nil {
			return false, err
		}
		for _, p := range st.GetSettlement().GetParts() {
			if p.GetVendorId() == d.vendorB && p.GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_CANCELLED {
				return false, nil
			}
		}
		prod, err := d.cat.GetProduct(d.as(ctx, "platform"), &catalogv1.GetProductRequest{ProductId: strings.TrimSuffix(d.buds.GetSkuId(), "-"+d.buds.GetCode())})
		if err != nil {
			return false, err
		}
		return prod.GetProduct().GetSkus()[0].GetAvailable() == 1, nil
	}); err != nil {
		return err
	}
	d.say("order 8's earbuds cancelled (line 2): %s refunded, the unit back on sale, %s drops it; the tee still ships",
		fmtMoney(got.GetRefundedTotal()), d.vendorB)
	return nil
}

// 5: vendors ship with packing evidence — except the earbuds of order 5.
func (d *demo) ship(ctx context.Context) error {
	d.header("Vendors ship with packing evidence (photo hashes, serial and lot numbers)")
	d.fulfilments = map[string]*fulfilmentv1.Fulfilment{}
	d.tracking, d.carrierOf = map[string]string{}, map[string]string{}
	// Every part ships but order 7's (cancelled) and order 8's earbuds.
	var want []string
	for _, o := range d.orders {
		if o.tee > 0 && o.n != 7 {
			want = append(want, o.key(d.vendorA))
		}
		if o.buds > 0 && o.n != 7 && o.n != 8 {
			want = append(want, o.key(d.vendorB))
		}
	}
	if err := d.poll(ctx, "fulfilments requested for every confirmed order", func(ctx context.Context) (bool, error) {
		for _, v := range []string{d.vendorA, d.vendorB} {
			fl, err := d.ful.ListFulfilments(d.as(ctx, "vendor:"+v), &fulfilmentv1.ListFulfilmentsRequest{VendorId: v, State: fulfilmentv1.FulfilmentState_FULFILMENT_STATE_REQUESTED, PageSize: 100})
			if err != nil {
				return false, err
			}
			for _, f := range fl.GetFulfilments() {
				d.fulfilments[f.GetOrderId()+"/"+v] = f
			}
		}
		for _, k := range want {
			if d.fulfilments[k] == nil {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	if err := d.advance(ctx, 2*time.Hour); err != nil {
		return err
	}
	shipped := 0
	for _, o := range d.orders {
		if o.n == 7 {
			continue
		}
		for _, part := range []struct {
			vendor, carrier string
			qty             int64
		}{{d.vendorA, "dhl", o.tee}, {d.vendorB, "dpd", o.buds}} {
			if part.qty == 0 || (o.n == 5 || o.n == 8) && part.vendor == d.vendorB {
				continue
			}
			f := d.fulfilments[o.key(part.vendor)]
			if f == nil {
				return fmt.Errorf("order %d has no fulfilment for %s", o.n, part.vendor)
			}
			line := f.GetLines()[0]
			var units []*fulfilmentv1.PackedUnit
			for i := range line.GetQuantity() {
				u := &fulfilmentv1.PackedUnit{LineId: line.GetLineId()}
				if part.vendor == d.vendorB {
					u.SerialNumber = fmt.Sprintf("BOLT-%s-%d-%d", strings.ToUpper(d.run), o.n, i+1)
				} else {
					u.LotNumber = "TEE-LOT-" + strings.ToUpper(d.run)
				}
				units = append(units, u)
			}
			tn := d.trackingNumber(part.carrier)
			resp, err := d.ful.ShipFulfilment(d.as(ctx, "vendor:"+part.vendor), &fulfilmentv1.ShipFulfilmentRequest{
				RequestId: d.id("ship"), FulfilmentId: f.GetFulfilmentId(), Carrier: part.carrier, TrackingNumber: tn,
				Packages: []*fulfilmentv1.Package{{PackageId: "1",
					Lines:    []*fulfilmentv1.ShippedLine{{LineId: line.GetLineId(), Quantity: line.GetQuantity()}},
					Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{sha("packing photo " + f.GetFulfilmentId())}, Units: units}}},
			})
			if err != nil {
				return rpcError("ShipFulfilment", err)
			}
			if s := resp.GetFulfilment().GetState(); s != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_SHIPPED {
				return fmt.Errorf("order %d's %s part is %s after shipping, want shipped", o.n, part.vendor, enumName(s))
			}
			d.tracking[f.GetFulfilmentId()], d.carrierOf[f.GetFulfilmentId()] = tn, part.carrier
			shipped++
		}
	}
	d.say("%d shipments handed to dhl and dpd; %s leaves order 5's earbuds unshipped", shipped, d.vendorB)
	d.say("%s's shipments as it lists them:", d.vendorA)
	fl, err := d.ful.ListFulfilments(d.as(ctx, "vendor:"+d.vendorA), &fulfilmentv1.ListFulfilmentsRequest{VendorId: d.vendorA})
	if err != nil {
		return rpcError("ListFulfilments", err)
	}
	return printFulfilments(d.indented(), fl.GetFulfilments())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scan posts one carrier scan as the carrier.
func (d *demo) scan(ctx context.Context, fulfilmentID, eventID string, st fulfilmentv1.TrackingStatus, location string, proof *fulfilmentv1.ProofOfDelivery) (*fulfilmentv1.RecordTrackingEventResponse, error) {
	carrier := d.carrierOf[fulfilmentID]
	resp, err := d.ful.RecordTrackingEvent(d.as(ctx, "carrier:"+carrier), &fulfilmentv1.RecordTrackingEventRequest{
		Carrier: carrier, TrackingNumber: d.tracking[fulfilmentID], CarrierEventId: eventID + "-" + d.run, Status: st,
		OccurTime: timestamppb.New(d.now), Location: location, Proof: proof,
	})
	if err != nil {
		return nil, rpcError("RecordTrackingEvent", err)
	}
	return resp, nil
}

// shippedIDs lists the shipped fulfilments in a stable order.
func (d *demo) shippedIDs() []string {
	var ids []string
	for id := range d.tracking {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// 6: picked up, then in transit a day later; a duplicate scan changes nothing.
func (d *demo) scansInTransit(ctx context.Context) error {
	d.header("Carriers scan the parcels: picked up, then in transit")
	if err := d.advance(ctx, time.Hour); err != nil {
		return err
	}
	ids := d.shippedIDs()
	for _, id := range ids {
		if _, err := d.scan(ctx, id, "pickup-"+id, fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, "Leipzig hub", nil); err != nil {
			return err
		}
	}
	dup, err := d.scan(ctx, ids[0], "pickup-"+ids[0], fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, "Leipzig hub", nil)
	if err != nil {
		return err
	}
	if !dup.GetDuplicate() {
		return errors.New("a repeated carrier event id was not reported as a duplicate")
	}
	d.say("%d pick-up scans; one sent twice by the carrier was recognised as a duplicate", len(ids))
	if err := d.advance(ctx, 24*time.Hour); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := d.scan(ctx, id, "transit-"+id, fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, "Berlin sorting centre", nil); err != nil {
			return err
		}
	}
	d.say("%d in-transit scans", len(ids))
	return nil
}

// 7: deliveries with proof, except order 2's earbuds, stuck in transit.
func (d *demo) deliveries(ctx context.Context) error {
	d.header("Deliveries with proof of delivery; one parcel never arrives")
	if err := d.advance(ctx, 24*time.Hour); err != nil {
		return err
	}
	stuck := d.fulfilments[d.orders[1].key(d.vendorB)].GetFulfilmentId()
	delivered := 0
	for _, id := range d.shippedIDs() {
		if id == stuck {
			continue
		}
		resp, err := d.scan(ctx, id, "delivered-"+id, fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, "Berlin",
			&fulfilmentv1.ProofOfDelivery{RecipientName: "Buyer at the door", SignatureSha256: sha("signature " + id), Location: "52.520,13.405"})
		if err != nil {
			return err
		}
		if resp.GetFulfilmentState() != fulfilmentv1.FulfilmentState_FULFILMENT_STATE_DELIVERED {
			return fmt.Errorf("fulfilment %s is %s after its delivery scan", id, enumName(resp.GetFulfilmentState()))
		}
		delivered++
	}
	d.say("%d parcels delivered with signatures; order 2's earbuds (%s) stay in transit", delivered, stuck)
	// Payouts starts each delivered part's return window.
	var closes time.Time
	if err := d.poll(ctx, "payouts booked every delivery (return windows started)", func(ctx context.Context) (bool, error) {
		for _, o := range d.orders {
			if o.n == 7 {
				continue
			}
			st, err := d.pay.GetOrderSettlement(d.as(ctx, "support"), &payoutsv1.GetOrderSettlementRequest{OrderId: o.id})
			if err != nil {
				return false, err
			}
			for _, p := range st.GetSettlement().GetParts() {
				f := d.fulfilments[o.key(p.GetVendorId())]
				if _, shipped := d.tracking[f.GetFulfilmentId()]; !shipped || f.GetFulfilmentId() == stuck {
					continue
				}
				if p.GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_PENDING {
					return false, nil
				}
				closes = p.GetWindowCloseTime().AsTime()
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	d.say("the money of every delivered part left escrow; return windows close %s", closes.UTC().Format(timeLayout))
	shippedA := 0
	for id := range d.tracking {
		if d.carrierOf[id] == "dhl" {
			shippedA++
		}
	}
	return d.stopWatch(ctx, shippedA, shippedA)
}

// 8: a counterfeit claim goes to support, who orders a return then refund.
func (d *demo) counterfeitClaim(ctx context.Context) error {
	d.header("Counterfeit claim: the record goes to support, who decides")
	o := d.orders[2]
	bctx := d.as(ctx, "buyer:"+o.buyer)
	opened, err := d.tru.OpenClaim(bctx, &trustv1.OpenClaimRequest{
		RequestId: d.id("fake"), OrderId: o.id, Reason: trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT,
		Lines:    []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		Evidence: &trustv1.Evidence{Sha256: []string{sha("photo of the earbuds " + d.run)}, SerialNumbers: []string{"BOLT-FAKE-0001"}, Text: "The case logo is misprinted and the serial is not Bolt's"},
	})
	if err != nil {
		return rpcError("OpenClaim", err)
	}
	cl := opened.GetClaim()
	if cl.GetState() != trustv1.ClaimState_CLAIM_STATE_ESCALATED {
		return fmt.Errorf("counterfeit claim is %s, want escalated to support", enumName(cl.GetState()))
	}
	a := cl.GetAssessments()[len(cl.GetAssessments())-1]
	d.say("assessed against the packing record: %s", a.GetFinding())
	sctx := d.as(ctx, "support")
	if _, err := d.tru.ResolveClaim(sctx, &trustv1.ResolveClaimRequest{
		RequestId: d.id("decide"), ClaimId: cl.GetClaimId(), Decision: trustv1.ClaimDecision_CLAIM_DECISION_RETURN_THEN_REFUND,
		Rationale: "serial BOLT-FAKE-0001 was never packed for this order; photos show a knock-off", CounterfeitConfirmed: true,
	}); err != nil {
		return rpcError("ResolveClaim", err)
	}
	if _, err := d.tru.RecordReturnShipment(bctx, &trustv1.RecordReturnShipmentRequest{RequestId: d.id("return"), ClaimId: cl.GetClaimId(), Carrier: "dhl", TrackingNumber: d.trackingNumber("dhl")}); err != nil {
		return rpcError("RecordReturnShipment", err)
	}
	got, err := d.tru.ReceiveReturn(d.as(ctx, "vendor:"+d.vendorB), &trustv1.ReceiveReturnRequest{RequestId: d.id("receive"), ClaimId: cl.GetClaimId(), Condition: trustv1.ReturnCondition_RETURN_CONDITION_AS_EXPECTED, Note: "parcel came back sealed"})
	if err != nil {
		return rpcError("ReceiveReturn", err)
	}
	cl = got.GetClaim()
	if cl.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || cl.GetRefundedAmount().GetAmountMinor() != cl.GetClaimedAmount().GetAmountMinor() {
		return fmt.Errorf("counterfeit claim is %s with %s refunded, want refunded in full", enumName(cl.GetState()), fmtMoney(cl.GetRefundedAmount()))
	}
	sub := &cli{out: d.indented()}
	if err := sub.printClaim(cl); err != nil {
		return err
	}
	var trust *trustv1.VendorTrust
	if err := d.poll(ctx, "the confirmed counterfeit counted in "+d.vendorB+"'s trust", func(ctx context.Context) (bool, error) {
		t, err := d.tru.GetVendorTrust(d.as(ctx, "support"), &trustv1.GetVendorTrustRequest{VendorId: d.vendorB})
		if err != nil {
			return false, err
		}
		trust = t.GetTrust()
		return trust.GetCounts().GetCounterfeitsConfirmed() == 1, nil
	}); err != nil {
		return err
	}
	d.say("%s's trust: %d, tier %s (a confirmed counterfeit costs 250 points)", d.vendorB, trust.GetScore(), enumName(trust.GetTier()))
	return nil
}

// 9: a not-received claim: too early at first; after the expected delivery
// it is refunded automatically. The same days pass order 5's ship-by.
func (d *demo) notReceivedClaim(ctx context.Context) error {
	d.header("Not received: too early at first, refunded automatically after the expected delivery")
	o := d.orders[1]
	bctx := d.as(ctx, "buyer:"+o.buyer)
	req := &trustv1.OpenClaimRequest{RequestId: d.id("nr-early"), OrderId: o.id, Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED,
		Lines: []*trustv1.ClaimLineRequest{{LineId: "2", Quantity: 1}}}
	_, err := d.tru.OpenClaim(bctx, req)
	if apierr.Reason(err) != "CLAIM_TOO_EARLY" {
		return fmt.Errorf("a not-received claim before the expected delivery: got %v, want FailedPrecondition CLAIM_TOO_EARLY", err)
	}
	d.say("refused while the parcel may still come: %s", status.Convert(err).Message())
	if err := d.advance(ctx, 73*time.Hour); err != nil {
		return err
	}
	req.RequestId = d.id("nr")
	opened, err := d.tru.OpenClaim(bctx, req)
	if err != nil {
		return rpcError("OpenClaim", err)
	}
	cl := opened.GetClaim()
	if cl.GetState() != trustv1.ClaimState_CLAIM_STATE_REFUNDED || cl.GetResolution().GetDecidedBy() != "service:trust" {
		return fmt.Errorf("not-received claim is %s (decided by %q), want refunded automatically", enumName(cl.GetState()), cl.GetResolution().GetDecidedBy())
	}
	d.say("claim %s: %s — refunded %s at once, decided by %s",
		cl.GetClaimId(), cl.GetAssessments()[0].GetFinding(), fmtMoney(cl.GetRefundedAmount()), cl.GetResolution().GetDecidedBy())
	// Meanwhile order 5's earbuds passed their ship-by deadline and grace.
	f5 := d.fulfilments[d.orders[4].key(d.vendorB)].GetFulfilmentId()
	var reason string
	if err := d.poll(ctx, "order 5's unshipped part cancelled by the ship-by policy", func(ctx context.Context) (bool, error) {
		f, err := d.ful.GetFulfilment(d.as(ctx, "support"), &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: f5})
		if err != nil {
			return false, err
		}
		reason = f.GetFulfilment().GetCancelReason()
		return f.GetFulfilment().GetState() == fulfilmentv1.FulfilmentState_FULFILMENT_STATE_CANCELLED, nil
	}); err != nil {
		return err
	}
	d.say("order 5's earbuds were never shipped: ship-by passed, then its grace day — cancelled (%s)", reason)
	return nil
}

// 10: the return windows close: money is released to vendors, creator and platform.
func (d *demo) returnWindows(ctx context.Context) error {
	d.header("Return windows close: money released to vendors, the creator and the platform")
	if err := d.advance(ctx, 96*time.Hour); err != nil {
		return err
	}
	released := []struct {
		o      *demoOrder
		vendor string
	}{
		{d.orders[0], d.vendorA}, {d.orders[0], d.vendorB}, {d.orders[1], d.vendorA}, {d.orders[3], d.vendorA},
		{d.orders[4], d.vendorA}, {d.orders[5], d.vendorB}, {d.orders[7], d.vendorA},
	}
	if err := d.poll(ctx, "every delivered part released", func(ctx context.Context) (bool, error) {
		for _, r := range released {
			st, err := d.pay.GetOrderSettlement(d.as(ctx, "support"), &payoutsv1.GetOrderSettlementRequest{OrderId: r.o.id})
			if err != nil {
				return false, err
			}
			for _, p := range st.GetSettlement().GetParts() {
				if p.GetVendorId() == r.vendor && p.GetStage() != payoutsv1.FundsStage_FUNDS_STAGE_RELEASED {
					return false, nil
				}
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	d.say("%d vendor parts released (vendor net to available, trust reserve held back, commission, fees)", len(released))
	if err := d.printBalances(ctx, "vendor:"+d.vendorA, "vendor:"+d.vendorB, "creator:"+d.creator); err != nil {
		return err
	}
	return d.orderStates(ctx)
}

// orderStates shows every order's state, derived from its parts, once the
// windows have closed: the orders whose every part is settled, cancelled
// or refunded undelivered are COMPLETED (order 2's lost earbuds), with
// exactly their cancelled parts refunded; order 3, refunded in full, is
// REFUNDED.
func (d *demo) orderStates(ctx context.Context) error {
	want := map[int]orderv1.OrderState{
		1: orderv1.OrderState_ORDER_STATE_COMPLETED, 2: orderv1.OrderState_ORDER_STATE_COMPLETED,
		3: orderv1.OrderState_ORDER_STATE_REFUNDED, 4: orderv1.OrderState_ORDER_STATE_COMPLETED, 5: orderv1.OrderState_ORDER_STATE_COMPLETED,
		6: orderv1.OrderState_ORDER_STATE_COMPLETED, 7: orderv1.OrderState_ORDER_STATE_CANCELLED,
		8: orderv1.OrderState_ORDER_STATE_COMPLETED,
	}
	got := map[int]*orderv1.Order{}
	if err := d.poll(ctx, "orders 1, 2, 4, 5, 6 and 8 completed, 3 refunded, 7 cancelled", func(ctx context.Context) (bool, error) {
		for _, o := range d.orders {
			r, err := d.ord.GetOrder(d.as(ctx, "support"), &orderv1.GetOrderRequest{OrderId: o.id})
			if err != nil {
				return false, err
			}
			got[o.n] = r.GetOrder()
			if w, ok := want[o.n]; ok && r.GetOrder().GetState() != w {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	buds := d.buds.GetPrice().GetAmountMinor()
	refunds := map[int]int64{2: buds, 3: buds, 5: buds, 8: buds}
	for n, r := range refunds {
		if g := got[n].GetRefundedTotal().GetAmountMinor(); g != r {
			return fmt.Errorf("order %d refunded %s, want %s (its earbuds)", n, fmtMoney(eurMoney(g)), fmtMoney(eurMoney(r)))
		}
	}
	d.say("every order's state, derived from its parts:")
	tw := table(d.indented())
	row(tw, "#", "STATE", "REFUNDED", "PARTS")
	for _, o := range d.orders {
		g := got[o.n]
		var parts []string
		for _, p := range g.GetParts() {
			parts = append(parts, p.GetVendorId()+" "+enumName(p.GetState()))
		}
		row(tw, o.n, enumName(g.GetState()), fmtMoney(g.GetRefundedTotal()), strings.Join(parts, ", "))
	}
	return tw.Flush()
}

func (d *demo) printBalances(ctx context.Context, owners ...string) error {
	tw := table(d.indented())
	row(tw, "OWNER", "ESCROW", "PENDING", "HELD", "AVAILABLE", "RESERVE", "PAID OUT")
	for _, owner := range owners {
		b, err := d.pay.GetBalance(d.as(ctx, "support"), &payoutsv1.GetBalanceRequest{Owner: owner})
		if err != nil {
			return rpcError("GetBalance", err)
		}
		for _, x := range b.GetBalances() {
			row(tw, owner, fmtMoney(x.GetEscrow()), fmtMoney(x.GetPending()), fmtMoney(x.GetHeld()), fmtMoney(x.GetAvailable()), fmtMoney(x.GetReserve()), fmtMoney(x.GetPaidOut()))
		}
	}
	return tw.Flush()
}

func (d *demo) available(ctx context.Context, owner string) (int64, error) {
	b, err := d.pay.GetBalance(d.as(ctx, "support"), &payoutsv1.GetBalanceRequest{Owner: owner})
	if err != nil {
		return 0, rpcError("GetBalance", err)
	}
	for _, x := range b.GetBalances() {
		if x.GetCurrencyCode() == "EUR" {
			return x.GetAvailable().GetAmountMinor(), nil
		}
	}
	return 0, nil
}

// 11: a payout run pays the available balances, once.
func (d *demo) payoutRun(ctx context.Context) error {
	d.header("Payout run")
	ours := []string{"vendor:" + d.vendorA, "vendor:" + d.vendorB, "creator:" + d.creator}
	want := map[string]int64{}
	for _, owner := range ours {
		a, err := d.available(ctx, owner)
		if err != nil {
			return err
		}
		want[owner] = a
	}
	pctx := d.as(ctx, "platform")
	resp, err := d.pay.RunPayouts(pctx, &payoutsv1.RunPayoutsRequest{RequestId: d.id("payouts")})
	if err != nil {
		return rpcError("RunPayouts", err)
	}
	b := resp.GetBatch()
	got := map[string]int64{}
	for _, l := range b.GetLines() {
		got[l.GetPayee()] += l.GetAmount().GetAmountMinor()
	}
	for _, owner := range ours {
		if want[owner] >= 1000 && got[owner] != want[owner] {
			return fmt.Errorf("payout to %s: %s, want its available %s", owner, fmtMoney(eurMoney(got[owner])), fmtMoney(eurMoney(want[owner])))
		}
	}
	sub := &cli{out: d.indented()}
	if err := printBatch(sub, b, func(p string) bool { return slices.Contains(ours, p) }); err != nil {
		return err
	}
	again, err := d.pay.RunPayouts(pctx, &payoutsv1.RunPayoutsRequest{RequestId: d.id("payouts")})
	if err != nil {
		return rpcError("RunPayouts", err)
	}
	if again.GetBatch().GetBatchId() != b.GetBatchId() {
		return fmt.Errorf("repeating the payout run's request id made batch %s, want %s", again.GetBatch().GetBatchId(), b.GetBatchId())
	}
	d.say("the same request again returns batch %s and pays nothing more", b.GetBatchId())
	return nil
}

// 12: after the payout, buyer 1 claims a damaged tee; the vendor accepts;
// the refund is clawed back from the balances already paid out.
func (d *demo) clawback(ctx context.Context) error {
	d.header("A refund after the payout is clawed back")
	o := d.orders[0]
	opened, err := d.tru.OpenClaim(d.as(ctx, "buyer:"+o.buyer), &trustv1.OpenClaimRequest{
		RequestId: d.id("damaged"), OrderId: o.id, Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
		Lines:    []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		Evidence: &trustv1.Evidence{Sha256: []string{sha("torn seam " + d.run)}, Text: "the seam tore on first wash"},
	})
	if err != nil {
		return rpcError("OpenClaim", err)
	}
	cl := opened.GetClaim()
	if cl.GetState() != trustv1.ClaimState_CLAIM_STATE_AWAITING_VENDOR {
		return fmt.Errorf("damaged claim is %s, want awaiting the vendor", enumName(cl.GetState()))
	}
	resp, err := d.tru.RespondToClaim(d.as(ctx, "vendor:"+d.vendorA), &trustv1.RespondToClaimRequest{RequestId: d.id("accept"), ClaimId: cl.GetClaimId(), Response: trustv1.VendorResponse_VENDOR_RESPONSE_ACCEPT_REFUND})
	if err != nil {
		return rpcError("RespondToClaim", err)
	}
	if s := resp.GetClaim().GetState(); s != trustv1.ClaimState_CLAIM_STATE_REFUNDED {
		return fmt.Errorf("damaged claim is %s after the vendor accepted, want refunded", enumName(s))
	}
	d.say("buyer 1 claims a damaged tee after the payout; %s accepts: %s refunded", d.vendorA, fmtMoney(resp.GetClaim().GetRefundedAmount()))
	var claw []*payoutsv1.LedgerEntry
	if err := d.poll(ctx, "the refund clawed back in the ledger", func(ctx context.Context) (bool, error) {
		claw = claw[:0]
		req := &payoutsv1.ListLedgerEntriesRequest{OrderId: o.id, PageSize: 1000}
		for {
			es, err := d.pay.ListLedgerEntries(d.as(ctx, "support"), req)
			if err != nil {
				return false, err
			}
			for _, e := range es.GetEntries() {
				if e.GetKind() == payoutsv1.TransactionKind_TRANSACTION_KIND_CLAWBACK {
					claw = append(claw, e)
				}
			}
			if es.GetNextPageToken() == "" {
				break
			}
			req.PageToken = es.GetNextPageToken()
		}
		return len(claw) > 0, nil
	}); err != nil {
		return err
	}
	tw := table(d.indented())
	row(tw, "CLAWBACK FROM", "AMOUNT", "BALANCE AFTER")
	for _, e := range claw {
		row(tw, e.GetAccount(), fmtMoney(e.GetAmount()), fmtMoney(e.GetBalanceAfter()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	d.say("balances now (a negative available is recovered from later earnings, never paid):")
	return d.printBalances(ctx, "vendor:"+d.vendorA, "creator:"+d.creator)
}

// 13: order 1's full timeline across services, and its chain verification.
func (d *demo) timeline(ctx context.Context) error {
	o := d.orders[0]
	d.header("Order 1's timeline across every service, and its hash chains verified")
	var tl *auditv1.GetOrderTimelineResponse
	if err := d.poll(ctx, "the audit index caught up with order 1's clawback", func(ctx context.Context) (bool, error) {
		var err error
		tl, err = fetchTimeline(d.as(ctx, "support"), d.aud, o.id, nil)
		if err != nil {
			return false, err
		}
		services := map[string]bool{}
		clawedBack := false
		for _, e := range tl.GetEvents() {
			services[e.GetService()] = true
			if eventName(e.GetType()) == "RefundApplied" && strings.Contains(e.GetPayloadJson(), "RELEASED") {
				clawedBack = true
			}
		}
		return services["order"] && services["fulfilment"] && services["trust"] && services["payouts"] && clawedBack, nil
	}); err != nil {
		return err
	}
	if err := printTimeline(d.indented(), tl); err != nil {
		return err
	}
	v, err := d.aud.VerifyOrderChain(d.as(ctx, "support"), &auditv1.VerifyOrderChainRequest{OrderId: o.id})
	if err != nil {
		return rpcError("VerifyOrderChain", err)
	}
	if !v.GetValid() {
		return fmt.Errorf("order 1's chain does not verify: %s", describeBroken(v.GetBrokenLink()))
	}
	fmt.Fprintf(d.out, "\nchain valid: %d events checked (%d streams)\n", v.GetEventsChecked(), v.GetStreamsChecked())
	return nil
}

// ---- the vendor's live watch ---------------------------------------------------

// demoWatch is the tee vendor's WatchFulfilments stream, followed in the
// background from before the sale.
type demoWatch struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	changes map[string]int
	err     error
}

// startWatch follows the tee vendor's shipments as the vendor would.
func (d *demo) startWatch(ctx context.Context) {
	wctx, cancel := context.WithCancel(d.as(ctx, "vendor:"+d.vendorA))
	w := &d.watch
	w.cancel, w.done, w.changes = cancel, make(chan struct{}), map[string]int{}
	ready := make(chan struct{})
	go func() {
		defer close(w.done)
		stream, err := d.ful.WatchFulfilments(wctx, &fulfilmentv1.WatchFulfilmentsRequest{VendorId: d.vendorA})
		if err != nil {
			w.err = err
			close(ready)
			return
		}
		for first := true; ; first = false {
			msg, err := stream.Recv()
			if first {
				close(ready)
			}
			if err != nil {
				if wctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				return
			}
			if msg.GetKind() == fulfilmentv1.WatchKind_WATCH_KIND_CHANGE {
				w.mu.Lock()
				w.changes[eventName(msg.GetEventType())]++
				w.mu.Unlock()
			}
		}
	}()
	// The snapshot (empty: the vendor is new) arrives before any order.
	select {
	case <-ready:
	case <-time.After(d.wait):
	}
}

// stopWatch checks what the vendor's live watch saw and ends it.
func (d *demo) stopWatch(ctx context.Context, shipped, delivered int) error {
	w := &d.watch
	err := d.poll(ctx, d.vendorA+"'s live watch saw every shipment and delivery", func(context.Context) (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err != nil {
			return false, rpcError("WatchFulfilments", w.err)
		}
		return w.changes["FulfilmentShipped"] == shipped && w.changes["FulfilmentDelivered"] == delivered, nil
	})
	w.cancel()
	<-w.done
	if err != nil {
		return err
	}
	var kinds []string
	for k := range w.changes {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	total := 0
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", w.changes[k], k))
		total += w.changes[k]
	}
	d.say("%s's live watch (WatchFulfilments) saw %d changes as they happened: %s", d.vendorA, total, strings.Join(parts, ", "))
	return nil
}
