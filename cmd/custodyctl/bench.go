package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// benchCmd is the load generator: a flash sale against a running server.
// It registers a vendor and a product with --stock units, then fires
// --orders PlaceOrder calls from --concurrency buyers, each waiting for its
// outcome, and reports confirmed orders/s and latency percentiles. With
// --admin it also reads the server's metrics to show the event store's
// share of the time.
func (c *cli) benchCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("custodyctl bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", c.dataDir, "data directory of the server (to mint tokens)")
	orders := fs.Int("orders", 2000, "PlaceOrder calls")
	stock := fs.Int64("stock", 0, "units of the SKU (default: as many as orders, so all confirm)")
	concurrency := fs.Int("concurrency", 64, "concurrent buyers")
	admin := fs.String("admin", envOr("CUSTODY_ADMIN_ADDR", "127.0.0.1:7071"), "server admin address for metrics (empty: skip)")
	wait := fs.Duration("wait", 10*time.Second, "how long each PlaceOrder waits for its outcome")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stock == 0 {
		*stock = int64(*orders)
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
	before, _ := scrape(*admin)

	ord := orderv1.NewOrderServiceClient(conn)
	lat := make([]time.Duration, *orders)
	var confirmed, rejected, other atomic.Int64
	var firstErr atomic.Value
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range *concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*orders) {
					return
				}
				t0 := time.Now()
				resp, err := ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
					RequestId: run + "-" + strconv.FormatInt(i, 10), BuyerId: "buyer-" + strconv.FormatInt(i, 10),
					Lines:           []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
					ShippingAddress: &typev1.Address{RecipientName: "Bench Buyer", AddressLines: []string{"1 Load St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
					Payment:         &orderv1.Payment{PspReference: "psp-" + run + "-" + strconv.FormatInt(i, 10), Amount: price},
					WaitTimeout:     durationpb.New(*wait),
				})
				lat[i] = time.Since(t0)
				switch {
				case err != nil:
					other.Add(1)
					firstErr.CompareAndSwap(nil, err)
				case resp.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_CONFIRMED:
					confirmed.Add(1)
				case resp.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_REJECTED:
					rejected.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, _ := scrape(*admin)
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	fmt.Fprintf(c.out, "orders %d, concurrency %d, stock %d, elapsed %s\n", *orders, *concurrency, *stock, elapsed.Round(time.Millisecond))
	fmt.Fprintf(c.out, "confirmed %d (%.0f orders/s), rejected %d, other %d\n", confirmed.Load(), float64(confirmed.Load())/elapsed.Seconds(), rejected.Load(), other.Load())
	fmt.Fprintf(c.out, "PlaceOrder until outcome: p50 %s  p90 %s  p99 %s  max %s\n",
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	if before != nil && after != nil {
		appends := after["custody_eventstore_append_duration_seconds_count"] - before["custody_eventstore_append_duration_seconds_count"]
		appendSecs := after["custody_eventstore_append_duration_seconds_sum"] - before["custody_eventstore_append_duration_seconds_sum"]
		if appends > 0 {
			// Appends of one process overlap; summed append time over wall
			// time is the average number of appends in flight.
			fmt.Fprintf(c.out, "event store: %.0f appends (%.1f per order), mean %.2f ms, %.2f appends in flight on average (append seconds / wall seconds)\n",
				appends, appends/float64(*orders), 1000*appendSecs/appends, appendSecs/elapsed.Seconds())
		}
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d calls failed; first: %w", other.Load(), err)
	}
	if other.Load() > 0 {
		return errors.New("some orders ended neither confirmed nor rejected")
	}
	return nil
}

// scrape reads the server's Prometheus metrics, summing series by name.
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
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}
