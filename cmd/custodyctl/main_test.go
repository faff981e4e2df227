package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/custody/custody/cmd/internal/targets"
	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// testServer is a real in-process Custody (platformtest): embedded NATS
// with JetStream, every service `custody run` starts, gRPC on loopback, a
// fake clock.
type testServer struct {
	*platformtest.Platform
	addr, dataDir string
	clock         *clock.Fake
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	p := platformtest.Start(t, platformtest.Options{Clock: clk}, targets.All()...)
	return &testServer{Platform: p, addr: p.Addr, dataDir: p.DataDir, clock: clk}
}

// ctl runs the CLI as roles against the server and returns stdout, failing
// the test on an error.
func (s *testServer) ctl(t *testing.T, roles []string, args ...string) string {
	t.Helper()
	out, errOut, err := s.try(roles, args...)
	if err != nil {
		t.Fatalf("custodyctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// try runs the CLI and returns what it printed and its error.
func (s *testServer) try(roles []string, args ...string) (string, string, error) {
	full := []string{"--addr", s.addr, "--data-dir", s.dataDir}
	for _, r := range roles {
		full = append(full, "--as", r)
	}
	var out, errOut bytes.Buffer
	err := run(append(full, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (s *testServer) conn(t *testing.T, roles ...string) *grpc.ClientConn { return s.Conn(t, roles...) }

// product registers a vendor with one SKU and returns the SKU id.
func (s *testServer) product(t *testing.T, vendor string, price, stock int64) string {
	t.Helper()
	cat := catalogv1.NewCatalogServiceClient(s.conn(t, "platform"))
	if _, err := cat.RegisterVendor(t.Context(), &catalogv1.RegisterVendorRequest{RequestId: "r", VendorId: vendor, DisplayName: vendor, CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	p, err := cat.CreateProduct(t.Context(), &catalogv1.CreateProductRequest{
		RequestId: "p", VendorId: vendor, Title: "Tee", Category: "apparel", AffiliateCommissionBps: 1000,
		Skus: []*catalogv1.SkuSpec{{Code: "one", Title: "One size", Price: &typev1.Money{CurrencyCode: "EUR", AmountMinor: price}, InitialStock: stock}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.GetProduct().GetSkus()[0].GetSkuId()
}

var eventually = platformtest.Until

var orderIDLine = regexp.MustCompile(`(?m)^order\s+(o\S+)$`)

func placeOrder(t *testing.T, s *testServer, buyer, sku string, qty string) (string, string) {
	t.Helper()
	out := s.ctl(t, []string{"buyer:" + buyer}, "orders", "place", "--buyer", buyer, "--sku", sku+":"+qty, "--request-id", "req-"+buyer+qty)
	m := orderIDLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no order id in:\n%s", out)
	}
	return m[1], out
}

func TestOrdersPlaceGetListCancel(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	sku := s.product(t, "acme", 2500, 5)

	id, out := placeOrder(t, s, "ada", sku, "2")
	for _, want := range []string{`(?m)^state\s+confirmed$`, `(?m)^total\s+50\.00 EUR$`, `acme\s+One size\s+2\s+0\s+0\s+25\.00 EUR\s+50\.00 EUR`, `(?m)^acme\s+1\s+50\.00 EUR\s+open\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("orders place output lacks %s:\n%s", want, out)
		}
	}
	// The same request id names the same order.
	if again, _ := placeOrder(t, s, "ada", sku, "2"); again != id {
		t.Errorf("repeated request made order %s, want %s", again, id)
	}

	out = s.ctl(t, []string{"buyer:ada"}, "orders", "get", id)
	if !strings.Contains(out, id) || !strings.Contains(out, "confirmed") {
		t.Errorf("orders get:\n%s", out)
	}
	// --json after the argument gives protojson.
	js := s.ctl(t, []string{"buyer:ada"}, "orders", "get", id, "--json")
	var got struct {
		Order struct {
			OrderID string `json:"orderId"`
			State   string `json:"state"`
		} `json:"order"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil || got.Order.OrderID != id || got.Order.State != "ORDER_STATE_CONFIRMED" {
		t.Errorf("orders get --json: %v\n%s", err, js)
	}

	second, _ := placeOrder(t, s, "ada", sku, "1")
	out = s.ctl(t, []string{"buyer:ada"}, "orders", "list", "--buyer", "ada")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ORDER") || !strings.Contains(out, id) || !strings.Contains(out, second) {
		t.Errorf("orders list: want a header and 2 orders:\n%s", out)
	}
	out = s.ctl(t, []string{"support"}, "orders", "list", "--vendor", "acme", "--state", "confirmed", "--page-size", "1", "--all")
	if strings.Count(out, "\no") != 2 {
		t.Errorf("orders list --all over pages of 1: want 2 orders:\n%s", out)
	}

	out = s.ctl(t, []string{"buyer:ada"}, "orders", "cancel", second, "--reason", "too many tees")
	if !strings.Contains(out, "cancelled") || !strings.Contains(out, "too many tees") {
		t.Errorf("orders cancel:\n%s", out)
	}

	// One of the first order's two tees cancelled, then a new address.
	out = s.ctl(t, []string{"buyer:ada"}, "orders", "cancel-lines", id, "--line", "1:1", "--reason", "one is enough")
	for _, want := range []string{`(?m)^refunded\s+25\.00 EUR$`, `acme\s+One size\s+2\s+1\s+0\s+25\.00 EUR`, `(?m)^acme\s+1\s+50\.00 EUR\s+open\s+25\.00 EUR`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("orders cancel-lines output lacks %s:\n%s", want, out)
		}
	}
	if _, _, err := s.try([]string{"buyer:ada"}, "orders", "cancel-lines", id, "--line", "1:5"); err == nil || !strings.Contains(err.Error(), "lines[0].quantity") {
		t.Errorf("cancelling more units than are left: %v", err)
	}
	out = s.ctl(t, []string{"buyer:ada"}, "orders", "change-address", id, "--name", "Ada", "--street", "9 New Road")
	js = s.ctl(t, []string{"buyer:ada"}, "orders", "get", id, "--json")
	if !strings.Contains(js, "9 New Road") {
		t.Errorf("orders change-address:\n%s\nthen:\n%s", out, js)
	}
}

func TestErrorsShowStatusAndFieldViolations(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	sku := s.product(t, "acme", 2500, 5)
	_, _, err := s.try([]string{"buyer:ada"}, "orders", "place", "--buyer", "ada", "--sku", sku, "--country", "Germany", "--street", "")
	if err == nil {
		t.Fatal("bad address accepted")
	}
	msg := explain(err).Error()
	if !strings.HasPrefix(msg, "PlaceOrder: InvalidArgument: invalid argument\n") {
		t.Errorf("error does not start with the RPC and status:\n%s", msg)
	}
	for _, want := range []string{"\n  shipping_address.country_code: ", "\n  shipping_address.address_lines[0]: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks the violation line %q:\n%s", want, msg)
		}
	}
	// Someone else's order: the status code is shown.
	id, _ := placeOrder(t, s, "ada", sku, "1")
	_, _, err = s.try([]string{"buyer:bob"}, "orders", "get", id)
	if err == nil || !strings.Contains(err.Error(), "GetOrder: PermissionDenied") {
		t.Errorf("someone else's order: %v", err)
	}
	// A client-side mistake is named before anything is sent.
	if _, _, err := s.try(nil, "orders", "list"); err == nil || !strings.Contains(err.Error(), "exactly one of --buyer and --vendor") {
		t.Errorf("orders list without a filter: %v", err)
	}
}

func TestTimelineTableAndVerify(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	sku := s.product(t, "acme", 2500, 5)
	id, _ := placeOrder(t, s, "ada", sku, "1")

	var out string
	eventually(t, "timeline shows the confirmation", func() bool {
		o, _, err := s.try([]string{"support"}, "timeline", id)
		out = o
		return err == nil && strings.Contains(o, "OrderConfirmed")
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := regexp.MustCompile(`^TIME\s+SERVICE\s+TYPE\s+ACTOR\s+REV\s+HASH$`)
	if !header.MatchString(lines[0]) {
		t.Fatalf("timeline header %q", lines[0])
	}
	// 2026-11-21 09:15:23  order  OrderPlaced  buyer:ada  0  3f2a9c0b1d4e
	rowRe := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+order\s+OrderPlaced\s+buyer:ada\s+0\s+[0-9a-f]{12}$`)
	if !rowRe.MatchString(out) {
		t.Errorf("no timeline row for the OrderPlaced by buyer:ada at revision 0 with a short hash:\n%s", out)
	}
	if !strings.HasSuffix(lines[len(lines)-1], "streams") {
		t.Errorf("timeline footer %q", lines[len(lines)-1])
	}
	if !strings.Contains(out, "catalog") {
		t.Errorf("timeline lacks the catalog's reservation:\n%s", out)
	}

	js := s.ctl(t, []string{"support"}, "--json", "timeline", id)
	var tl struct {
		Events []struct {
			Type string `json:"type"`
			Hash string `json:"hash"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(js), &tl); err != nil || len(tl.Events) < 2 || len(tl.Events[0].Hash) != 64 {
		t.Errorf("timeline --json: %v\n%s", err, js)
	}

	out = s.ctl(t, []string{"support"}, "verify", id)
	if !regexp.MustCompile(`chain valid: \d+ events checked`).MatchString(out) {
		t.Errorf("verify:\n%s", out)
	}
	out = s.ctl(t, []string{"support"}, "replay", id, "--as-of", "now")
	if !regexp.MustCompile(`(?m)^state\s+confirmed$`).MatchString(out) || !regexp.MustCompile(`(?m)^chain\s+valid$`).MatchString(out) {
		t.Errorf("replay:\n%s", out)
	}
}

func TestPrivacyEraseAndExport(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	sku := s.product(t, "acme", 2500, 5)
	id, _ := placeOrder(t, s, "ada", sku, "1")

	// ada's copy of her data: the order and her address, decrypted.
	var out string
	eventually(t, "ada's export shows her order", func() bool {
		o, _, err := s.try([]string{"buyer:ada"}, "privacy", "export", "--buyer", "ada")
		out = o
		return err == nil && strings.Contains(o, id)
	})
	var doc struct {
		BuyerID string `json:"buyer_id"`
		Erased  bool   `json:"erased"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.BuyerID != "ada" || doc.Erased || !strings.Contains(out, `"value": "1 Main St"`) {
		t.Fatalf("privacy export: %v\n%s", err, out)
	}
	if _, _, err := s.try([]string{"buyer:bob"}, "privacy", "export", "--buyer", "ada"); err == nil || !strings.Contains(err.Error(), "ExportBuyerData: PermissionDenied") {
		t.Errorf("bob exporting ada: %v", err)
	}

	// The platform erases her: the order is named, the address reads
	// "[erased]" from then on.
	if _, _, err := s.try([]string{"platform"}, "privacy", "erase", "--buyer", "ada"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("erase without a reason: %v", err)
	}
	out = s.ctl(t, []string{"platform"}, "privacy", "erase", "--buyer", "ada", "--reason", "DPO case 17", "--request-id", "e1")
	for _, want := range []string{`(?m)^buyer\s+ada$`, `(?m)^key\s+buyer-ada$`, `(?m)^orders\s+` + id + `$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("privacy erase output lacks %s:\n%s", want, out)
		}
	}
	out = s.ctl(t, []string{"platform"}, "privacy", "export", "--buyer", "ada")
	if !strings.Contains(out, `"erased": true`) || !strings.Contains(out, `"value": "[erased]"`) || strings.Contains(out, "1 Main St") {
		t.Errorf("export after erasure:\n%s", out)
	}
	if _, _, err := s.try([]string{"platform"}, "privacy", "erase", "--buyer", "ada", "--reason", "again"); err == nil ||
		!strings.Contains(err.Error(), "EraseBuyer: FailedPrecondition") {
		t.Errorf("erasing again: %v", err)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	before := s.clock.Now()
	out := s.ctl(t, []string{"platform"}, "clock", "advance", "2d12h")
	if got := s.clock.Now().Sub(before); got != 60*time.Hour {
		t.Errorf("clock moved by %s, want 60h", got)
	}
	if !strings.Contains(out, "clock advanced by 60h0m0s") {
		t.Errorf("clock advance: %s", out)
	}
	if out := s.ctl(t, []string{"support"}, "clock"); !strings.Contains(out, "fake clock") {
		t.Errorf("clock: %s", out)
	}
	if _, _, err := s.try([]string{"support"}, "clock", "advance", "1h"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("support moved the clock: %v", err)
	}
}

// TestDemo runs the whole demo against a real in-process server: the
// issue's story end to end, every outcome checked by the demo itself.
func TestDemo(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for run := 1; run <= 2; run++ { // twice: every id is unique per run
		if run == 2 && testing.Short() {
			break
		}
		out, errOut, err := s.try(nil, "demo", "--data-dir", s.dataDir)
		if err != nil {
			t.Fatalf("demo run %d: %v\n%s\n%s", run, err, out, errOut)
		}
		for _, want := range []string{
			"[1/13]", "[13/13]", "orders placed 8/8 (8 confirmed)", "TIME", "OrderPlaced", "FulfilmentDelivered",
			"ClaimOpened", "RefundApplied", "every check passed",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("demo run %d output lacks %q", run, want)
			}
		}
		if !regexp.MustCompile(`\nchain valid: \d+ events checked`).MatchString(out) {
			t.Errorf("demo run %d: no chain verification", run)
		}
		if run == 1 {
			t.Logf("demo output:\n%s", out)
		}
	}
}

func TestDemoNeedsFakeClock(t *testing.T) {
	t.Parallel()
	p := platformtest.Start(t, platformtest.Options{}) // wall time, no services
	addr, dir := p.Addr, p.DataDir
	var out bytes.Buffer
	err := run([]string{"--addr", addr, "demo", "--data-dir", dir}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--clock=fake") {
		t.Errorf("demo on a wall clock: %v", err)
	}
	err = run([]string{"--addr", addr, "demo", "--data-dir", t.TempDir()}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no signing key") {
		t.Errorf("demo with another data dir: %v", err)
	}
}

// The load generator in both modes: every order offered gets an outcome
// (here all confirm: stock = orders), and the server's own accounts of the
// run are printed. No figure is asserted beyond counts: speed is measured
// by running it, not by tests.
func TestBench(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"bench", "--admin", "", "--orders", "20", "--concurrency", "4"},
			[]string{"closed loop: orders 20", "confirmed 20 (", "rejected 0 (0 refused at once: sold out), other 0, not sent 0", "durable messages: "}},
		{[]string{"bench", "--admin", "", "--rate", "40", "--duration", "500ms"},
			[]string{"open loop: 40 orders/s offered for 500ms (20 orders)", "confirmed 20 (", "rejected 0 (0 refused at once: sold out), other 0, not sent 0", "p99.9 "}},
		{[]string{"bench", "--admin", "", "--orders", "10", "--stock", "4", "--concurrency", "10"},
			[]string{"confirmed 4 (", "rejected 6 (", "), other 0"}},
	} {
		out := s.ctl(t, []string{"platform"}, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("custodyctl %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
}

// --buyers N: the orders cycle through buyer-0 … buyer-<N-1>.
func TestBenchReturningBuyers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.ctl(t, []string{"platform"}, "bench", "--admin", "", "--orders", "6", "--concurrency", "2", "--buyers", "2")
	for buyer, want := range map[string]int{"buyer-0": 3, "buyer-1": 3, "buyer-2": 0} {
		out := s.ctl(t, []string{"support"}, "orders", "list", "--buyer", buyer)
		if got := strings.Count(out, "\no"); got != want {
			t.Errorf("orders of %s: %d, want %d:\n%s", buyer, got, want, out)
		}
	}
	if _, _, err := s.try([]string{"platform"}, "bench", "--admin", "", "--buyers", "-1"); err == nil || !strings.Contains(err.Error(), "--buyers not negative") {
		t.Errorf("bench --buyers -1: %v", err)
	}
}
