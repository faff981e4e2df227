package console_test

import (
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/catalog"
	"github.com/custody/custody/services/console"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/trust"
)

// The console's tests run every service and the console in one process
// under test (platformtest: embedded NATS with JetStream, real gRPC on
// loopback), the console on a free loopback port as the all-in-one
// serves it, and drive it with a real net/http client and cookie jar.
// The orders, shipments and claims they look at are made through the
// services' own APIs, as the apps and carriers would.

var shared *platformtest.Platform

func TestMain(m *testing.M) {
	platformtest.Main(m, platformtest.Options{}, func(p *platformtest.Platform) { shared = p },
		catalog.Module(), order.Module(), fulfilment.Module(), trust.Module(), payouts.Module(), audit.Module(),
		console.NewModule(console.Options{Addr: "127.0.0.1:0"}))
}

// consoleURL is the console's base URL.
func consoleURL(t *testing.T) string {
	t.Helper()
	addr := shared.Web["console"]
	if addr == "" {
		t.Fatal("the platform serves no console")
	}
	return "http://" + addr
}

// browser is a person's browser: a cookie jar, redirects not followed
// (the tests look at them).
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: consoleURL(t), c: &http.Client{Jar: jar, Timeout: platformtest.Wait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer: its status, headers and body.
type page struct {
	Code   int
	Header http.Header
	Body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	return b.read(resp, err)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	return b.read(resp, err)
}

func (b *browser) read(resp *http.Response, err error) page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{Code: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// follow GETs path and the redirects after it.
func (b *browser) follow(p page) page {
	b.t.Helper()
	for i := 0; p.Code == http.StatusSeeOther && i < 5; i++ {
		p = b.get(p.Header.Get("Location"))
	}
	return p
}

var hiddenField = regexp.MustCompile(`name="(csrf|request_id)" value="([^"]*)"`)

// field is the value of the first hidden input named name on the page.
func (p page) field(t *testing.T, name string) string {
	t.Helper()
	for _, m := range hiddenField.FindAllStringSubmatch(p.Body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no field %s on the page:\n%s", name, p.Body)
	return ""
}

// token mints a token of role with the platform's key.
func token(t *testing.T, roles ...string) string {
	t.Helper()
	tok, err := platform.MintToken(shared.DataDir, "", "", roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signIn signs the browser in with tok and returns the page it lands on.
func (b *browser) signIn(tok string) page {
	b.t.Helper()
	form := b.get("/signin")
	if form.Code != http.StatusOK {
		b.t.Fatalf("sign-in page: %d\n%s", form.Code, form.Body)
	}
	return b.post("/signin", url.Values{"token": {tok}, "csrf": {form.field(b.t, "csrf")}, "next": {"/orders"}})
}

// signedIn is a browser signed in as role.
func signedIn(t *testing.T, role string) *browser {
	t.Helper()
	b := newBrowser(t)
	if p := b.signIn(token(t, role)); p.Code != http.StatusSeeOther || p.Header.Get("Location") != "/orders" {
		t.Fatalf("signing in as %s: %d %s\n%s", role, p.Code, p.Header.Get("Location"), p.Body)
	}
	return b
}

// photo is a packing photo's SHA-256.
const photo = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// delivered is an order placed, shipped with packing evidence and
// delivered with proof, through the services' APIs.
type delivered struct {
	OrderID, FulfilmentID, Vendor, Buyer, SKU, Tracking string
}

// deliverOrder makes a delivered order of one unit of a product titled
// title from vendor to buyer (ids unique to the test).
func deliverOrder(t *testing.T, vendor, buyer, title string) delivered {
	t.Helper()
	ctx := t.Context()
	cat := platformtest.As(t, shared, catalogv1.NewCatalogServiceClient, "vendor:"+vendor)
	if _, err := cat.RegisterVendor(ctx, &catalogv1.RegisterVendorRequest{RequestId: "reg", VendorId: vendor, DisplayName: vendor, CountryCode: "DE"}); err != nil {
		t.Fatal(err)
	}
	prod, err := cat.CreateProduct(ctx, &catalogv1.CreateProductRequest{RequestId: "prod", VendorId: vendor, Title: title, Category: "apparel",
		Skus: []*catalogv1.SkuSpec{{Code: "one", Title: title, Price: eur(2500), InitialStock: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	sku := prod.GetProduct().GetSkus()[0].GetSkuId()
	o, err := platformtest.As(t, shared, orderv1.NewOrderServiceClient, "buyer:"+buyer).PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: "o1", BuyerId: buyer, Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
		ShippingAddress: &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
		Payment:         &orderv1.Payment{PspReference: "psp-" + buyer, Amount: eur(2500)}, WaitTimeout: durationpb.New(20 * time.Second)})
	if err != nil || o.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		t.Fatalf("placing the order: %v %v", o.GetOrder().GetState(), err)
	}
	d := delivered{OrderID: o.GetOrder().GetOrderId(), Vendor: vendor, Buyer: buyer, SKU: sku}
	ful := platformtest.As(t, shared, fulfilmentv1.NewFulfilmentServiceClient, "vendor:"+vendor)
	f := platformtest.Await(t, "the fulfilment", func() (*fulfilmentv1.ListFulfilmentsResponse, error) {
		return ful.ListFulfilments(ctx, &fulfilmentv1.ListFulfilmentsRequest{VendorId: vendor, OrderId: d.OrderID})
	}, func(l *fulfilmentv1.ListFulfilmentsResponse) error {
		if len(l.GetFulfilments()) != 1 {
			return fmt.Errorf("%d fulfilments", len(l.GetFulfilments()))
		}
		return nil
	})
	d.FulfilmentID = f.GetFulfilments()[0].GetFulfilmentId()
	tracking := fmt.Sprintf("%010d", crc32.ChecksumIEEE([]byte(vendor))) // a DHL number: 10 digits
	d.Tracking = tracking
	if _, err := ful.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{RequestId: "ship", FulfilmentId: d.FulfilmentID,
		Carrier: "dhl", TrackingNumber: tracking, Packages: []*fulfilmentv1.Package{{PackageId: "1",
			Lines:    []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: sku, Quantity: 1}},
			Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo}, Units: []*fulfilmentv1.PackedUnit{{LineId: "1", SkuId: sku, SerialNumber: "SN-" + vendor}}}}}}); err != nil {
		t.Fatalf("shipping: %v", err)
	}
	carrier := platformtest.As(t, shared, fulfilmentv1.NewFulfilmentServiceClient, "carrier:dhl")
	at := time.Now().Add(-2 * time.Hour)
	for i, s := range []*fulfilmentv1.RecordTrackingEventRequest{
		{CarrierEventId: "e1", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, OccurTime: timestamppb.New(at), Location: "Leipzig hub"},
		{CarrierEventId: "e2", Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(at.Add(time.Hour)),
			Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Ada"}},
	} {
		s.RequestId, s.Carrier, s.TrackingNumber = fmt.Sprintf("scan-%d", i), "dhl", tracking
		if _, err := carrier.RecordTrackingEvent(ctx, s); err != nil {
			t.Fatalf("scan %d: %v", i, err)
		}
	}
	ord := platformtest.As(t, shared, orderv1.NewOrderServiceClient, "support")
	platformtest.Until(t, "the order delivered", func() bool {
		o, err := ord.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: d.OrderID})
		return err == nil && o.GetOrder().GetState() == orderv1.OrderState_ORDER_STATE_DELIVERED
	})
	return d
}

// escalate opens a counterfeit claim on d, which the trust service hands
// to support, and returns it once escalated.
func escalate(t *testing.T, d delivered, says string) *trustv1.Claim {
	t.Helper()
	tr := platformtest.As(t, shared, trustv1.NewTrustServiceClient, "buyer:"+d.Buyer)
	c, err := tr.OpenClaim(t.Context(), &trustv1.OpenClaimRequest{RequestId: "claim", OrderId: d.OrderID,
		Reason: trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT, Lines: []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		Evidence: &trustv1.Evidence{Text: says, SerialNumbers: []string{"FAKE-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	support := platformtest.As(t, shared, trustv1.NewTrustServiceClient, "support")
	return platformtest.Await(t, "the claim escalated", func() (*trustv1.GetClaimResponse, error) {
		return support.GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: c.GetClaim().GetClaimId()})
	}, func(r *trustv1.GetClaimResponse) error {
		if s := r.GetClaim().GetState(); s != trustv1.ClaimState_CLAIM_STATE_ESCALATED {
			return fmt.Errorf("state %v", s)
		}
		return nil
	}).GetClaim()
}

func claimOf(t *testing.T, id string) *trustv1.Claim {
	t.Helper()
	r, err := platformtest.As(t, shared, trustv1.NewTrustServiceClient, "support").GetClaim(t.Context(), &trustv1.GetClaimRequest{ClaimId: id})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetClaim()
}

func contains(t *testing.T, p page, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.Body, w) {
			t.Fatalf("the page (%d) lacks %q:\n%s", p.Code, w, p.Body)
		}
	}
}
