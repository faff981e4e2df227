package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// benchCmd is the load generator. It registers a vendor and a product with
// --stock units, then places orders, each PlaceOrder waiting for its
// outcome, in one of two modes:
//
//   - closed loop (the default): --concurrency buyers each place their next
//     order as soon as the last one has an outcome, --orders in all. It
//     measures the most the server confirms when it sets the pace.
//   - open loop (--rate R --duration D): R orders a second are offered on a
//     fixed schedule, whatever the latency, and each latency is measured
//     from the moment its order was due, not from when it was sent, so a
//     slow server cannot hide its queue by slowing the client down
//     (coordinated omission).
//
// Every order has a new buyer unless --buyers says how many there are: a
// buyer's first order waits for the buyer's data key to be stored (the
// sealing of personal data, docs/design.md §9), later ones find it cached.
//
// It reports confirmed orders/s, latency percentiles, and from the server
// (--admin metrics, SystemService status) the event-store appends, durable
// JetStream messages, server CPU seconds, allocations, and events handed to
// the reactions (and how many of them they dropped) per order.
func (c *cli) benchCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("custodyctl bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", c.dataDir, "data directory of the server (to mint tokens)")
	orders := fs.Int("orders", 2000, "closed loop: PlaceOrder calls")
	concurrency := fs.Int("concurrency", 64, "closed loop: concurrent buyers")
	rate := fs.Float64("rate", 0, "open loop: orders offered per second (0: closed loop)")
	duration := fs.Duration("duration", 10*time.Second, "open loop: how long orders are offered")
	maxInFlight := fs.Int("max-in-flight", 20000, "open loop: orders awaiting an outcome at most; a due order beyond it counts as not sent")
	stock := fs.Int64("stock", 0, "units of the SKU (default: as many as orders, so all confirm)")
	buyers := fs.Int("buyers", 0, "distinct buyers the orders cycle through, buyer-0 … buyer-<n-1>; 0: a new buyer, buyer-<i>, for every order, each order then waiting for its buyer's data key to be stored")
	admin := fs.String("admin", envOr("CUSTODY_ADMIN_ADDR", "127.0.0.1:7071"), "server admin address for metrics (empty: skip)")
	wait := fs.Duration("wait", 10*time.Second, "how long each PlaceOrder waits for its outcome")
	every := fs.Duration("sample-every", 0, "print the server's resident memory, Go heap and stored messages this often during the run (soak runs; needs --admin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 || (*rate > 0 && *duration <= 0) || *orders <= 0 || *concurrency <= 0 || *buyers < 0 {
		return errors.New("bench: --orders and --concurrency must be positive, --buyers not negative; --rate needs a positive --duration")
	}
	n := *orders
	if *rate > 0 {
		n = int(math.Ceil(*rate * duration.Seconds()))
	}
	if *stock == 0 {
		*stock = int64(n)
	}
	tok, err := platform.MintToken(*dataDir, "", "bench", []string{"platform", "service"}, time.Hour)
	if err != nil {
		return err
	}
	conn, err := server.Dial(c.addr, tok)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx := context.Background()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	cat := catalogv1.NewCatalogServiceClient(conn)
	vendor := "bench-" + run
	if _, err := cat.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: run, VendorId: vendor, DisplayName: "Bench vendor", CountryCode: "DE"}); err != nil {
		return fmt.Errorf("register vendor: %w", err)
	}
	price := &typev1.Money{CurrencyCode: "EUR", AmountMinor: 1999}
	p, err := cat.CreateProduct(ctx, &catalogv1.CreateProductRequest{
		RequestId: run, VendorId: vendor, Title: "Flash sale tee", Category: "apparel", AffiliateCommissionBps: 1000,
		Skus: []*catalogv1.SkuSpec{{Code: "one", Title: "One size", Price: price, InitialStock: *stock}},
	})
	if err != nil {
		return fmt.Errorf("create product: %w", err)
	}
	sku := p.GetProduct().GetSkus()[0].GetSkuId()
	sys := systemv1.NewSystemServiceClient(conn)
	before := sample(ctx, sys, *admin)

	ord := orderv1.NewOrderServiceClient(conn)
	res := &benchResult{lat: make([]time.Duration, n)}
	place := func(i int, due time.Time) {
		buyer := i
		if *buyers > 0 {
			buyer = i % *buyers
		}
		resp, err := ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			RequestId: run + "-" + strconv.Itoa(i), BuyerId: "buyer-" + strconv.Itoa(buyer),
			Lines:           []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
			ShippingAddress: &typev1.Address{RecipientName: "Bench Buyer", AddressLines: []string{"1 Load St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
			Payment:         &orderv1.Payment{PspReference: "psp-" + run + "-" + strconv.Itoa(i), Amount: price},
			WaitTimeout:     durationpb.New(*wait),
		})
		res.record(i, time.Since(due), resp, err)
	}
	start := time.Now()
	stopSampling := func() {}
	if *every > 0 {
		stopSampling = sampleMemory(ctx, c.out, sys, *admin, *every, start, res)
	}
	if *rate > 0 {
		openLoop(n, *rate, *maxInFlight, start, place, res)
	} else {
		closedLoop(n, *concurrency, place)
	}
	elapsed := time.Since(start)
	stopSampling()
	after := sample(ctx, sys, *admin)

	if *rate > 0 {
		fmt.Fprintf(c.out, "open loop: %.0f orders/s offered for %s (%d orders), stock %d, elapsed %s\n", *rate, *duration, n, *stock, elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(c.out, "closed loop: orders %d, concurrency %d, stock %d, elapsed %s\n", n, *concurrency, *stock, elapsed.Round(time.Millisecond))
	}
	res.report(c.out, n, elapsed)
	before.report(c.out, after, n, elapsed)
	if err, _ := res.firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d calls failed; first: %w", res.other.Load(), err)
	}
	if res.other.Load() > 0 || res.unsent.Load() > 0 {
		return errors.New("some orders ended neither confirmed nor rejected")
	}
	return nil
}

// sampleMemory prints, every interval until stopped, the orders with an
// outcome so far and the server's resident memory, live Go heap and
// stored JetStream messages: how memory grows with what is stored.
func sampleMemory(ctx context.Context, w io.Writer, sys systemv1.SystemServiceClient, admin string, every time.Duration, start time.Time, res *benchResult) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s := sample(ctx, sys, admin)
			outcomes := res.confirmed.Load() + res.rejected.Load() + res.soldOut.Load() + res.other.Load()
			fmt.Fprintf(w, "sample %6.0fs: %d orders, %d stored messages, RSS %.0f MiB, heap %.0f MiB\n",
				time.Since(start).Seconds(), outcomes, s.stored,
				s.metrics["process_resident_memory_bytes"]/(1<<20), s.metrics["go_memstats_heap_alloc_bytes"]/(1<<20))
		}
	}()
	return func() { cancel(); <-done }
}

// closedLoop places n orders from concurrency buyers, each placing its
// next order once the last has an outcome.
func closedLoop(n, concurrency int, place func(i int, due time.Time)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				place(i, time.Now())
			}
		})
	}
	wg.Wait()
}

// openLoop offers n orders at rate per second from start, each when it is
// due, and waits for every outcome. An order due while maxInFlight others
// await theirs is not sent and counted as such.
func openLoop(n int, rate float64, maxInFlight int, start time.Time, place func(i int, due time.Time), res *benchResult) {
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		if inFlight.Load() >= int64(maxInFlight) {
			res.unsent.Add(1)
			res.lat[i] = -1
			continue
		}
		inFlight.Add(1)
		wg.Go(func() {
			defer inFlight.Add(-1)
			place(i, due)
		})
	}
	wg.Wait()
}

// benchResult collects the outcome of every order.
type benchResult struct {
	lat                                []time.Duration // place → outcome, from when the order was due; -1: not sent
	confirmed, rejected, other, unsent atomic.Int64
	soldOut                            atomic.Int64 // refused at once (OUT_OF_STOCK): nothing was stored
	firstErr                           atomic.Value
	last                               atomic.Int64 // unix nanoseconds of the last outcome
}

func (r *benchResult) record(i int, d time.Duration, resp *orderv1.PlaceOrderResponse, err error) {
	r.lat[i] = d
	r.last.Store(time.Now().UnixNano())
	switch {
	case status.Code(err) == codes.FailedPrecondition && apierr.Reason(err) == "OUT_OF_STOCK":
		r.soldOut.Add(1)
	case err != nil:
		r.other.Add(1)
		r.firstErr.CompareAndSwap(nil, err)
	case resp.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_CONFIRMED:
		r.confirmed.Add(1)
	case resp.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_REJECTED:
		r.rejected.Add(1)
	default:
		r.other.Add(1)
	}
}

func (r *benchResult) report(w io.Writer, n int, elapsed time.Duration) {
	lat := slices.DeleteFunc(slices.Clone(r.lat), func(d time.Duration) bool { return d < 0 })
	slices.Sort(lat)
	if len(lat) == 0 {
		fmt.Fprintln(w, "no order was sent")
		return
	}
	pct := func(q float64) time.Duration {
		return lat[min(len(lat)-1, int(q*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(w, "confirmed %d (%.0f orders/s), rejected %d (%d refused at once: sold out), other %d, not sent %d\n",
		r.confirmed.Load(), float64(r.confirmed.Load())/elapsed.Seconds(), r.rejected.Load()+r.soldOut.Load(), r.soldOut.Load(),
		r.other.Load(), r.unsent.Load())
	fmt.Fprintf(w, "place → outcome: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		pct(0.50), pct(0.90), pct(0.99), pct(0.999), lat[len(lat)-1].Round(10*time.Microsecond))
}

// serverSample is what the server says about itself at one moment.
type serverSample struct {
	metrics map[string]float64 // nil without --admin
	stored  uint64             // JetStream messages held (SystemService)
	ok      bool
}

func sample(ctx context.Context, sys systemv1.SystemServiceClient, admin string) serverSample {
	var s serverSample
	s.metrics, _ = scrape(admin)
	if st, err := sys.GetStatus(ctx, &systemv1.GetStatusRequest{}); err == nil {
		s.stored, s.ok = st.GetStoredMessages(), true
	}
	return s
}

// report prints the server's work per order between s and after.
func (s serverSample) report(w io.Writer, after serverSample, n int, elapsed time.Duration) {
	if s.ok && after.ok {
		fmt.Fprintf(w, "durable messages: %d (%.1f per order)\n", after.stored-s.stored, float64(after.stored-s.stored)/float64(n))
	}
	if s.metrics == nil || after.metrics == nil {
		return
	}
	delta := func(name string) float64 { return after.metrics[name] - s.metrics[name] }
	if appends := delta("custody_eventstore_append_duration_seconds_count"); appends > 0 {
		// Appends of one process overlap; summed append time over wall
		// time is the average number of appends in flight.
		appendSecs := delta("custody_eventstore_append_duration_seconds_sum")
		fmt.Fprintf(w, "event store: %.0f appends (%.1f per order), mean %.2f ms, %.2f appends in flight on average\n",
			appends, appends/float64(n), 1000*appendSecs/appends, appendSecs/elapsed.Seconds())
	}
	if cpu := delta("process_cpu_seconds_total"); cpu > 0 {
		fmt.Fprintf(w, "server CPU: %.1f s over %.1f s (%.2f cores), %.2f ms per order\n",
			cpu, elapsed.Seconds(), cpu/elapsed.Seconds(), 1000*cpu/float64(n))
	}
	// Allocations move with the code, not with the machine's load: the
	// figure to compare two builds by on a noisy machine.
	if mallocs := delta("go_memstats_mallocs_total"); mallocs > 0 {
		fmt.Fprintf(w, "server allocations: %.0f per order, %.1f KB per order\n",
			mallocs/float64(n), delta("go_memstats_alloc_bytes_total")/1024/float64(n))
	}
	ok, dropped := delta(`custody_bus_handled_total{outcome="ok"}`), delta(`custody_bus_handled_total{outcome="skipped"}`)
	if ok+dropped > 0 {
		fmt.Fprintf(w, "reactions: %.1f events per order, %.1f of them dropped (a type the consumer does not want)\n",
			(ok+dropped)/float64(n), dropped/float64(n))
	}
}

// scrape reads the server's Prometheus metrics, summing series by name,
// and those with an outcome label also by name and outcome
// (`custody_bus_handled_total{outcome="skipped"}`).
func scrape(admin string) (map[string]float64, error) {
	if admin == "" {
		return nil, nil
	}
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			if o := outcomeLabel(name[i:]); o != "" {
				out[name[:i]+`{outcome="`+o+`"}`] += v
			}
			name = name[:i]
		}
		out[name] += v
	}
	return out, sc.Err()
}

// outcomeLabel is the value of the outcome label in a series' labels
// ({consumer="x",outcome="skipped"}), or "".
func outcomeLabel(labels string) string {
	for _, start := range []string{`{outcome="`, `,outcome="`} {
		if _, v, ok := strings.Cut(labels, start); ok {
			v, _, _ = strings.Cut(v, `"`)
			return v
		}
	}
	return ""
}
