package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/personal/jskeys"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// clusterServices are the targets TestClusterUnderFault runs, one process
// each, in the order they start (they may start in any order: each waits
// for the streams it follows).
var clusterServices = []string{"catalog", "order", "fulfilment", "trust", "payouts", "audit"}

// TestClusterUnderFault is docs/design.md §8 on the production topology:
// a three-node NATS JetStream cluster (three `custody nats` processes,
// every event stream R3) and every service as a process of its own
// (`custody run --target=<service> --nats-url=<all three> --replicas=3`),
// as k8s/ runs them. Buyers order from eight vendors (one SKU sells out)
// through the order process while, twice, one NATS node and one service
// process are killed with SIGKILL together and then restarted: first the
// node leading the order stream with the order process, then the node
// leading the catalog stream with the catalog process. Each time the load
// must go on while the node is down, and again once it is back.
//
// Then it converges: every order whose PlaceOrder was acknowledged exists
// and is CONFIRMED or REJECTED, and so is every order stored without an
// acknowledgement; each SKU's stock adds up (available + reserved + sold =
// initial, reserved = the units of its confirmed orders: no oversell, no
// leak); every confirmed order has exactly one fulfilment and a rejected
// one none; the payouts ledger sums to zero and captured each confirmed
// order exactly once for its total (and nothing else); nothing was parked
// on the dead-letter stream; and the audit service verifies the hash
// chains of every stored order (VerifyOrderChain, what `custodyctl verify`
// calls). A service process must come back by itself after its restart,
// without exiting while its stream elects a leader: an exit fails the test
// (the process is started again so that the data is still checked).
//
// The figures (orders sent, acknowledged, lost, settled, time to converge)
// are logged: go test -v -run TestClusterUnderFault ./cmd/custody.
func TestClusterUnderFault(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test skipped in -short mode: nine processes (three NATS nodes, six services) for about a minute; make test-cluster runs it")
	}
	t0 := time.Now()
	dir := t.TempDir()

	// One signing key; every service process only verifies with its public half.
	if _, err := auth.LoadOrCreateKey(platform.KeyDir(dir)); err != nil {
		t.Fatal(err)
	}
	pubKey := filepath.Join(platform.KeyDir(dir), auth.PublicKeyFile)

	nodes := startNATSCluster(t, dir, 3)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, "nats://"+n.client)
	}
	natsURL := strings.Join(urls, ",")
	services := map[string]*serviceProc{}
	for _, name := range clusterServices {
		services[name] = startService(t, dir, name, natsURL, pubKey)
	}
	for _, name := range clusterServices {
		services[name].waitReady(t)
	}
	t.Logf("3 NATS nodes and %d service processes ready in %s", len(services), time.Since(t0).Round(time.Millisecond))

	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	dial := func(svc string, roles ...string) *grpc.ClientConn {
		tok, err := platform.MintToken(dir, "", "", roles, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Reconnect promptly to a restarted process (gRPC's default backoff
		// grows to two minutes).
		conn, err := server.Dial(services[svc].grpc, tok, grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond}}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	cat := catalogv1.NewCatalogServiceClient(dial("catalog", "platform", "service"))
	ord := orderv1.NewOrderServiceClient(dial("order", "platform", "service"))
	ful := fulfilmentv1.NewFulfilmentServiceClient(dial("fulfilment", "platform", "service"))
	pay := payoutsv1.NewPayoutsServiceClient(dial("payouts", "platform", "service"))
	audit := auditv1.NewAuditServiceClient(dial("audit", "support"))

	// Eight vendors with one SKU each; the first sells out under the load
	// (even a load slowed by the faults orders it several times over).
	// (Every order's chain verification re-reads its product's whole stream:
	// more products keep those streams, and the test, short.)
	var skus []clusterSKU
	for i, stock := range []int64{6, 1e5, 1e5, 1e5, 1e5, 1e5, 1e5, 1e5} {
		vendor := fmt.Sprintf("v-cluster-%d", i)
		price := int64(1000 + 100*i)
		p := createProduct(t, cat, vendor, stock, price)
		skus = append(skus, clusterSKU{vendor: vendor, productID: p.GetProductId(), skuID: p.GetSkus()[0].GetSkuId(), price: price, stock: stock})
	}
	for _, svc := range []string{"catalog", "order", "fulfilment", "trust", "payouts"} {
		if r := streamReplicas(t, js, svc); r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3 (--replicas=3)", esjs.StreamNameFor(svc), r)
		}
	}

	load := &clusterLoad{ord: ord, skus: skus, acked: map[string]*orderv1.Order{}, errs: map[codes.Code]int{}}
	// The order process learns the SKUs from the catalog's events: the
	// first order of each confirms once it has.
	for i := range skus {
		eventually(t, "the order service to sell "+skus[i].skuID, func() bool {
			r, err := ord.PlaceOrder(t.Context(), load.request("warmup", fmt.Sprintf("warmup-%d", i), i, 1))
			if err != nil || r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
				return false
			}
			load.record(r.GetOrder())
			return true
		})
	}
	load.sent.Store(int64(len(skus)))
	load.calls.Store(int64(len(skus)))

	ctx, stopLoad := context.WithCancel(t.Context())
	defer stopLoad()
	loadStart := time.Now()
	var wg sync.WaitGroup
	load.run(ctx, &wg, 6, 12)
	eventually(t, "20 orders settled under load", func() bool { return load.settledAcks.Load() >= 20 })

	for round, victim := range []string{"order", "catalog"} {
		leader := streamLeader(t, js, victim)
		node := nodes[slices.IndexFunc(nodes, func(n *natsNode) bool { return n.name == leader })]
		svc := services[victim]
		killed := time.Now()
		node.kill(t)
		svc.kill(t)
		base := load.settledAcks.Load()
		svc.start(t)
		svc.waitReady(t)
		svcBack := time.Since(killed)
		converge(t, fmt.Sprintf("10 more orders settled with NATS node %s down", node.name), killed, func() error {
			return load.settledSince(base, 10)
		})
		whileDown := load.settledAcks.Load() - base
		node.start(t)
		node.waitHealthy(t)
		nodeBack := time.Since(killed)
		base = load.settledAcks.Load()
		converge(t, fmt.Sprintf("10 more orders settled after NATS node %s rejoined", node.name), killed, func() error {
			return load.settledSince(base, 10)
		})
		t.Logf("fault %d: SIGKILLed NATS node %s (leader of %s) and the %s process; %s ready again after %s, "+
			"%d orders settled while the node was down, node healthy again after %s",
			round+1, node.name, esjs.StreamNameFor(victim), victim, victim, svcBack.Round(time.Millisecond),
			whileDown, nodeBack.Round(time.Millisecond))
	}
	stopLoad()
	wg.Wait()
	loadStopped := time.Now()
	sent, calls := load.sent.Load(), load.calls.Load()
	acked := load.ackedOrders()
	t.Logf("load: %d orders sent (%d calls with retries) in %s, %d acknowledged, %d refused at once as sold out; failed calls by code: %v",
		sent, calls, loadStopped.Sub(loadStart).Round(time.Millisecond), len(acked), load.soldOut.Load(), load.errCounts())
	if len(acked) < 60 {
		t.Fatalf("only %d orders acknowledged: the test did not exercise anything", len(acked))
	}

	// Every acknowledged order exists and settles.
	final := map[string]*orderv1.Order{}
	converge(t, "every acknowledged order to exist and settle", loadStopped, func() error {
		var lost, pending []string
		for id := range acked {
			if final[id] != nil {
				continue
			}
			r, err := ord.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
			switch {
			case status.Code(err) == codes.NotFound:
				lost = append(lost, id)
			case err != nil:
				return err
			case r.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_PENDING:
				pending = append(pending, id)
			default:
				final[id] = r.GetOrder()
			}
		}
		if len(lost)+len(pending) > 0 {
			return fmt.Errorf("%d acknowledged orders not found (lost: %.3v), %d still pending (%.3v)", len(lost), lost, len(pending), pending)
		}
		return nil
	})
	stages := []string{"acknowledged orders settled " + since(loadStopped)}
	confirmed, rejected := 0, 0
	for id, o := range final {
		switch o.GetState() {
		case orderv1.OrderState_ORDER_STATE_CONFIRMED:
			confirmed++
		case orderv1.OrderState_ORDER_STATE_REJECTED:
			rejected++
		default:
			t.Errorf("acknowledged order %s is %v, want CONFIRMED or REJECTED", id, o.GetState())
		}
	}

	// Every stored order, acknowledged or not, settles too; the vendors'
	// lists hold every acknowledged one.
	var stored map[string]*orderv1.Order
	converge(t, "every stored order to settle", loadStopped, func() error {
		var err error
		if stored, err = listVendorOrders(t.Context(), ord, skus); err != nil {
			return err
		}
		for id, o := range stored {
			if o.GetState() == orderv1.OrderState_ORDER_STATE_PENDING {
				return fmt.Errorf("order %s is still pending", id)
			}
		}
		for id := range acked {
			if stored[id] == nil {
				return fmt.Errorf("acknowledged order %s is missing from its vendor's orders", id)
			}
		}
		return nil
	})
	stages = append(stages, "every stored order "+since(loadStopped))
	if int64(len(stored)) > sent {
		t.Errorf("%d orders stored, but only %d were sent: an order was duplicated", len(stored), sent)
	}
	bySKU := map[string]int64{}              // confirmed units per SKU
	confirmedTotal := map[string]int64{}     // confirmed order id → total
	vendorEscrow := map[string]int64{}       // vendor → sum of its confirmed totals
	vendorConfirmed := map[string][]string{} // vendor → confirmed order ids
	for id, o := range stored {
		if o.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			if o.GetState() != orderv1.OrderState_ORDER_STATE_REJECTED {
				t.Errorf("stored order %s is %v, want CONFIRMED or REJECTED", id, o.GetState())
			}
			continue
		}
		l := o.GetLines()[0]
		bySKU[l.GetSkuId()] += l.GetQuantity()
		confirmedTotal[id] = o.GetTotal().GetAmountMinor()
		vendorEscrow[l.GetVendorId()] += o.GetTotal().GetAmountMinor()
		vendorConfirmed[l.GetVendorId()] = append(vendorConfirmed[l.GetVendorId()], id)
	}

	// Stock adds up: nothing oversold, nothing leaked.
	for _, s := range skus {
		converge(t, "the stock ledger of "+s.skuID, loadStopped, func() error {
			p, err := cat.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: s.productID})
			if err != nil {
				return err
			}
			k := p.GetProduct().GetSkus()[0]
			if k.GetAvailable() < 0 || k.GetAvailable()+k.GetReserved()+k.GetSold() != s.stock || k.GetReserved() != bySKU[s.skuID] {
				return fmt.Errorf("available %d + reserved %d + sold %d, want %d in all with %d reserved for confirmed orders",
					k.GetAvailable(), k.GetReserved(), k.GetSold(), s.stock, bySKU[s.skuID])
			}
			return nil
		})
	}
	stages = append(stages, "stock "+since(loadStopped))
	if bySKU[skus[0].skuID] != skus[0].stock {
		t.Errorf("the scarce SKU has %d units reserved, want all %d sold out under the load", bySKU[skus[0].skuID], skus[0].stock)
	}

	// Exactly one fulfilment per confirmed order, none for a rejected one.
	for _, s := range skus {
		converge(t, "the fulfilments of "+s.vendor, loadStopped, func() error {
			fs, err := listFulfilments(t.Context(), ful, s.vendor)
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, f := range fs {
				count[f.GetOrderId()]++
				if _, ok := confirmedTotal[f.GetOrderId()]; !ok {
					return fmt.Errorf("fulfilment %s for order %s, which is not confirmed", f.GetFulfilmentId(), f.GetOrderId())
				}
			}
			for _, id := range vendorConfirmed[s.vendor] {
				if count[id] != 1 {
					return fmt.Errorf("confirmed order %s has %d fulfilments, want 1", id, count[id])
				}
			}
			if len(fs) != len(vendorConfirmed[s.vendor]) {
				return fmt.Errorf("%d fulfilments for %d confirmed orders", len(fs), len(vendorConfirmed[s.vendor]))
			}
			return nil
		})
	}

	stages = append(stages, "fulfilments "+since(loadStopped))

	// The ledger balances and holds exactly one capture of each confirmed
	// order, for its total, in its vendor's escrow.
	var entries int
	converge(t, "the payouts ledger to match the confirmed orders", loadStopped, func() error {
		es, err := listLedger(t.Context(), pay)
		if err != nil {
			return err
		}
		entries = len(es)
		var sum int64
		captured := map[string]int64{}
		txns := map[string]string{}
		for _, e := range es {
			sum += e.GetAmount().GetAmountMinor()
			if e.GetKind() != payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE {
				return fmt.Errorf("entry %s is a %v: only captures were expected", e.GetEntryId(), e.GetKind())
			}
			if prev, ok := txns[e.GetOrderId()]; ok && prev != e.GetTransactionId() {
				return fmt.Errorf("order %s captured twice (%s and %s)", e.GetOrderId(), prev, e.GetTransactionId())
			}
			txns[e.GetOrderId()] = e.GetTransactionId()
			if a := e.GetAmount().GetAmountMinor(); a > 0 {
				captured[e.GetOrderId()] += a
			}
		}
		if sum != 0 {
			return fmt.Errorf("the ledger's %d entries sum to %d, not 0", len(es), sum)
		}
		for id, total := range confirmedTotal {
			if captured[id] != total {
				return fmt.Errorf("confirmed order %s: %d captured, want its total %d", id, captured[id], total)
			}
		}
		for id := range captured {
			if _, ok := confirmedTotal[id]; !ok {
				return fmt.Errorf("order %s was captured but is not confirmed", id)
			}
		}
		for vendor, want := range vendorEscrow {
			b, err := pay.GetBalance(t.Context(), &payoutsv1.GetBalanceRequest{Owner: "vendor:" + vendor})
			if err != nil {
				return err
			}
			if len(b.GetBalances()) != 1 || b.GetBalances()[0].GetEscrow().GetAmountMinor() != want {
				return fmt.Errorf("vendor %s balances %v, want %d in escrow", vendor, b.GetBalances(), want)
			}
		}
		return nil
	})
	stages = append(stages, "ledger "+since(loadStopped))
	converged := time.Since(loadStopped)

	for _, c := range processes(nodes, services) {
		if !c.running() {
			t.Errorf("%s exited during the test:\n%s", c.name, c.tail())
		}
	}
	parked, err := audit.ListParkedEvents(t.Context(), &auditv1.ListParkedEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parked.GetParked() {
		t.Errorf("parked: %s gave up on %s %s (%s): %s", p.GetConsumer(), p.GetEventType(), p.GetEventId(), p.GetCause(), p.GetReason())
	}

	// Every stored order's history (each acknowledged one among them)
	// verifies, across every service.
	verifyStart := time.Now()
	events, streams := verifyChains(t, audit, slices.Sorted(maps.Keys(stored)))
	t.Logf("figures: %d orders sent, %d acknowledged, %d refused at once as sold out, %d lost, %d settled (%d confirmed, %d rejected); "+
		"%d stored in all (%d never acknowledged); %d ledger entries balance to 0",
		sent, len(acked), load.soldOut.Load(), len(acked)-len(final), confirmed+rejected, confirmed, rejected,
		len(stored), len(stored)-len(acked), entries)
	t.Logf("converged %s after the load stopped (%s); %d hash chains verified (%d streams, %d events) in %s; whole test %s",
		converged.Round(time.Millisecond), strings.Join(stages, ", "), len(stored), streams, events,
		since(verifyStart), since(t0))
}

// convergeBudget bounds how long the system may take to recover from a
// fault: a command in flight to a stream leader that is killed holds its
// aggregate until the append times out (30s), and its reaction retries
// after that.
const convergeBudget = 90 * time.Second

// converge polls f until it returns nil, and fails the test with f's last
// error if convergeBudget has passed since from (the fault, or the end of
// the load).
func converge(t *testing.T, what string, from time.Time, f func() error) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Since(from) > convergeBudget {
			t.Fatalf("not converged within %s: %s: %v", convergeBudget, what, err)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

// since is the time since t0, rounded to milliseconds.
func since(t0 time.Time) string { return time.Since(t0).Round(time.Millisecond).String() }

type clusterSKU struct {
	vendor, productID, skuID string
	price, stock             int64
}

// clusterLoad is buyers placing one-line orders through the order
// process, as a checkout would: a failed call is retried with the same
// request id (so it cannot place the order twice), and only an answer
// counts as acknowledged.
type clusterLoad struct {
	ord  orderv1.OrderServiceClient
	skus []clusterSKU

	sent, calls, settledAcks atomic.Int64
	soldOut                  atomic.Int64 // refused at once as sold out (OUT_OF_STOCK): an answer, nothing stored

	mu    sync.Mutex
	acked map[string]*orderv1.Order // order id → the acknowledgement
	errs  map[codes.Code]int        // failed calls
}

// run starts buyers goroutines that place orders until ctx ends, at most
// rate a second in all.
func (l *clusterLoad) run(ctx context.Context, wg *sync.WaitGroup, buyers, rate int) {
	tokens := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				default: // every buyer is busy: the offered rate drops
				}
			}
		}
	})
	for b := range buyers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				sku := (b + i) % len(l.skus)
				_, _ = l.place(ctx, fmt.Sprintf("b%d", b), fmt.Sprintf("cl-%d-%d", b, i), sku, int64(1+i%2), 3)
			}
		})
	}
}

// place places one order, trying up to attempts times, and records the
// acknowledgement.
func (l *clusterLoad) place(ctx context.Context, buyer, requestID string, sku int, qty int64, attempts int) (*orderv1.Order, error) {
	req := l.request(buyer, requestID, sku, qty)
	l.sent.Add(1)
	var err error
	for range attempts {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var resp *orderv1.PlaceOrderResponse
		resp, err = l.ord.PlaceOrder(cctx, req, grpc.WaitForReady(true))
		cancel()
		l.calls.Add(1)
		if err == nil {
			l.record(resp.GetOrder())
			return resp.GetOrder(), nil
		}
		if ctx.Err() != nil {
			break // the load stopped: not a failure of the system
		}
		if status.Code(err) == codes.FailedPrecondition && apierr.Reason(err) == "OUT_OF_STOCK" {
			l.soldOut.Add(1)
			return nil, err // the answer: retrying would not change it
		}
		l.mu.Lock()
		l.errs[status.Code(err)]++
		l.mu.Unlock()
	}
	return nil, err
}

// request is a one-line order of qty units of the sku-th SKU; PlaceOrder
// waits up to 3s for it to settle.
func (l *clusterLoad) request(buyer, requestID string, sku int, qty int64) *orderv1.PlaceOrderRequest {
	s := l.skus[sku]
	return &orderv1.PlaceOrderRequest{
		RequestId: requestID, BuyerId: buyer,
		Lines:           []*orderv1.LineRequest{{SkuId: s.skuID, Quantity: qty}},
		ShippingAddress: address,
		Payment:         &orderv1.Payment{PspReference: "psp-" + requestID, Amount: eur(s.price * qty)},
		WaitTimeout:     durationpb.New(3 * time.Second),
	}
}

// settledSince reports whether n more orders than base have been
// acknowledged settled.
func (l *clusterLoad) settledSince(base, n int64) error {
	if got := l.settledAcks.Load() - base; got < n {
		return fmt.Errorf("%d of %d", got, n)
	}
	return nil
}

// record notes an acknowledged order.
func (l *clusterLoad) record(o *orderv1.Order) {
	l.mu.Lock()
	l.acked[o.GetOrderId()] = o
	l.mu.Unlock()
	if o.GetState() != orderv1.OrderState_ORDER_STATE_PENDING {
		l.settledAcks.Add(1)
	}
}

func (l *clusterLoad) ackedOrders() map[string]*orderv1.Order {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*orderv1.Order, len(l.acked))
	for id, o := range l.acked {
		out[id] = o
	}
	return out
}

func (l *clusterLoad) errCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for c, n := range l.errs {
		out[c.String()] = n
	}
	return out
}

// child is a process of a process-level test: this test binary run as
// `custody <args>` (see TestMain), its output appended to a log file. It
// can be killed and started again with the same arguments, as a supervisor
// would; the test's cleanup stops it.
type child struct {
	name string
	args []string
	log  string

	cmd    *exec.Cmd
	exited chan struct{}
}

func newChild(t *testing.T, dir, name string, args ...string) *child {
	t.Helper()
	c := &child{name: name, args: args, log: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("---- %s: the end of %s\n%s", c.name, c.log, c.tail())
		}
	})
	c.start(t)
	return c
}

// start starts the process (again).
func (c *child) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := custodyCommand(c.args...)
	cmd.Stdout, cmd.Stderr = f, f
	fmt.Fprintf(f, "==== custody %s (started %s)\n", strings.Join(c.args, " "), time.Now().UTC().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", c.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		fmt.Fprintf(f, "==== exited %s: %v\n", time.Now().UTC().Format(time.RFC3339Nano), cmd.ProcessState)
		f.Close()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if !c.running() {
		t.Fatalf("%s exited before it was to be killed:\n%s", c.name, c.tail())
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.exited
}

// stop asks the process to stop (SIGTERM) and kills it if it has not
// within ten seconds.
func (c *child) stop() {
	if c.cmd == nil || !c.running() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// waitHTTP polls url until it answers 200 (bounded by platformtest.Wait).
// If the process exits first, the test fails at once, unless restarts
// allows starting it again: then the exit is a test error, and the
// process is started again (as Kubernetes restarts a pod) so that the
// rest of the test still runs.
func (c *child) waitHTTP(t *testing.T, what, url string, restarts int) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	platformtest.Eventually(t, c.name+" "+what+" ("+url+")", func() error {
		if !c.running() {
			if restarts == 0 {
				t.Fatalf("%s exited while waiting for it %s:\n%s", c.name, what, c.lastRun())
			}
			restarts--
			t.Errorf("%s exited while waiting for it %s, instead of waiting for NATS; starting it again:\n%s", c.name, what, c.lastRun())
			c.start(t)
			return errors.New("restarted")
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// tail is the end of the process's log (every run of it).
func (c *child) tail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// lastRun is the end of the log of the process's latest run.
func (c *child) lastRun() string {
	tail := c.tail()
	if i := strings.LastIndex(tail, "==== custody "); i >= 0 {
		return tail[i:]
	}
	return tail
}

// processes are the children of the cluster.
func processes(nodes []*natsNode, services map[string]*serviceProc) []*child {
	var out []*child
	for _, n := range nodes {
		out = append(out, n.child)
	}
	for _, name := range clusterServices {
		out = append(out, services[name].child)
	}
	return out
}

// natsNode is one `custody nats` process of a cluster.
type natsNode struct {
	*child
	name, client, monitor string
}

// startNATSCluster starts n `custody nats` processes on free loopback
// ports, routed to each other, and waits until every one reports JetStream
// healthy (which needs an elected meta leader).
func startNATSCluster(t *testing.T, dir string, n int) []*natsNode {
	t.Helper()
	var routes []string
	for range n {
		routes = append(routes, "nats://"+freeAddr(t))
	}
	var nodes []*natsNode
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		node := &natsNode{name: name, client: freeAddr(t), monitor: freeAddr(t)}
		node.child = newChild(t, dir, "nats-"+name, "nats", "--server-name="+name,
			"--data-dir="+filepath.Join(dir, name), "--listen="+node.client,
			"--cluster-listen="+strings.TrimPrefix(routes[i], "nats://"), "--routes="+strings.Join(routes, ","),
			"--monitor-addr="+node.monitor, "--log-level=warn")
		nodes = append(nodes, node)
	}
	for _, node := range nodes {
		node.waitHealthy(t)
	}
	return nodes
}

// waitHealthy waits for the node's /healthz: JetStream enabled, a meta
// leader known, and every stream and consumer it holds current.
func (n *natsNode) waitHealthy(t *testing.T) {
	t.Helper()
	n.waitHTTP(t, "to be healthy", "http://"+n.monitor+"/healthz", 0)
}

// serviceProc is one `custody run --target=<service>` process.
type serviceProc struct {
	*child
	grpc, admin string
}

func startService(t *testing.T, dir, name, natsURL, pubKey string) *serviceProc {
	t.Helper()
	s := &serviceProc{grpc: freeAddr(t), admin: freeAddr(t)}
	// Every process of the cluster wraps the data keys with the same
	// master keys, as the k8s Secret custody-master-keys gives them.
	masterKeys := filepath.Join(dir, "master.keys")
	if _, err := jskeys.LoadKeyring(masterKeys, true); err != nil {
		t.Fatal(err)
	}
	s.child = newChild(t, dir, name, "run", "--target="+name, "--nats-url="+natsURL, "--replicas=3",
		"--grpc-addr="+s.grpc, "--admin-addr="+s.admin, "--data-dir="+filepath.Join(dir, name),
		"--auth-public-key="+pubKey, "--master-keys-file="+masterKeys, "--log-level=warn")
	return s
}

// waitReady waits for /readyz: the store open, own read models caught up,
// gRPC serving. A service that cannot reach its stream yet (a leader
// election, a cluster still placing streams) must wait, not exit: an exit
// is a test error, after which the process is started again (at most
// three times) so that the test goes on to check the data.
func (s *serviceProc) waitReady(t *testing.T) {
	t.Helper()
	s.waitHTTP(t, "to be ready", "http://"+s.admin+"/readyz", 3)
}

// streamLeader is the name of the node leading service's event stream.
func streamLeader(t *testing.T, js natsjs.JetStream, service string) string {
	t.Helper()
	var leader string
	platformtest.Eventually(t, "a leader of "+esjs.StreamNameFor(service), func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, esjs.StreamNameFor(service))
		if err != nil {
			return err
		}
		if c := s.CachedInfo().Cluster; c != nil && c.Leader != "" {
			leader = c.Leader
			return nil
		}
		return errors.New("no leader")
	})
	return leader
}

func streamReplicas(t *testing.T, js natsjs.JetStream, service string) int {
	t.Helper()
	var n int
	platformtest.Eventually(t, "the stream "+esjs.StreamNameFor(service), func() error {
		s, err := js.Stream(t.Context(), esjs.StreamNameFor(service))
		if err != nil {
			return err
		}
		n = s.CachedInfo().Config.Replicas
		return nil
	})
	return n
}

// listVendorOrders is every order of the vendors of skus, by id.
func listVendorOrders(ctx context.Context, ord orderv1.OrderServiceClient, skus []clusterSKU) (map[string]*orderv1.Order, error) {
	out := map[string]*orderv1.Order{}
	for _, s := range skus {
		token := ""
		for {
			r, err := ord.ListOrders(ctx, &orderv1.ListOrdersRequest{VendorId: s.vendor, PageSize: 500, PageToken: token})
			if err != nil {
				return nil, err
			}
			for _, o := range r.GetOrders() {
				out[o.GetOrderId()] = o
			}
			if token = r.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	return out, nil
}

func listFulfilments(ctx context.Context, ful fulfilmentv1.FulfilmentServiceClient, vendor string) ([]*fulfilmentv1.Fulfilment, error) {
	var out []*fulfilmentv1.Fulfilment
	token := ""
	for {
		r, err := ful.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, PageSize: 500, PageToken: token})
		if err != nil {
			return nil, err
		}
		out = append(out, r.GetFulfilments()...)
		if token = r.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func listLedger(ctx context.Context, pay payoutsv1.PayoutsServiceClient) ([]*payoutsv1.LedgerEntry, error) {
	var out []*payoutsv1.LedgerEntry
	token := ""
	for {
		r, err := pay.ListLedgerEntries(ctx, &payoutsv1.ListLedgerEntriesRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		out = append(out, r.GetEntries()...)
		if token = r.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// verifyChains has the audit service verify every order's hash chains,
// four at a time, and returns the events and streams it checked. A chain
// that does not verify fails the test, naming its first broken link.
func verifyChains(t *testing.T, audit auditv1.AuditServiceClient, orders []string) (events, streams int64) {
	t.Helper()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 4 {
		wg.Go(func() {
			for id := range work {
				r, err := audit.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: id})
				// The audit's index follows the stores: after a fault it may
				// still be catching up, and says so (Unavailable, retry).
				for deadline := time.Now().Add(30 * time.Second); status.Code(err) == codes.Unavailable && time.Now().Before(deadline); {
					r, err = audit.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: id})
				}
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("order %s: %v", id, err))
				case !r.GetValid() || r.GetEventsChecked() == 0:
					failures = append(failures, fmt.Sprintf("order %s: chain does not verify after %d events: %v", id, r.GetEventsChecked(), r.GetBrokenLink()))
				default:
					events += r.GetEventsChecked()
					streams += int64(r.GetStreamsChecked())
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range orders {
		work <- id
	}
	close(work)
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
	return events, streams
}
