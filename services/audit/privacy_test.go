package audit_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/platform/platformtest"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/audit/domain"
)

// TestEraseBuyer runs every service in one process, as `custody run` does
// (the process's own key store, sealing in the command handlers): two
// buyers place orders through the order service; the export shows the
// first buyer's address; the platform erases her; then her export, her
// order's timeline, its replay and the order service's own answer read
// "[erased]", her order's chains still verify, the other buyer's order
// still shows his address; a second erasure is refused ALREADY_ERASED, the
// same request again answers as before, an unknown buyer is NotFound, and
// nobody but the platform may erase. A third buyer's erasure recorded
// without her key destroyed (a crash between the two) is completed by the
// reaction to BuyerErased.
func TestEraseBuyer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipped in -short mode: starts every service (make test runs it)")
	}
	p := allServices(t, clock.NewFake(time.Now().UTC().Truncate(time.Second)))
	ctx := t.Context()
	const vendor = "v-priv"
	sku := teapots(t, p, vendor)
	place := func(buyer, name, street string) string {
		t.Helper()
		o, err := orderv1.NewOrderServiceClient(p.Conn(t, "buyer:"+buyer)).PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			RequestId: "r-" + buyer, BuyerId: buyer, Lines: []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
			ShippingAddress: &typev1.Address{RecipientName: name, AddressLines: []string{street}, Locality: "Berlin", PostalCode: "10115", CountryCode: "DE"},
			Payment:         &orderv1.Payment{PspReference: "psp-" + buyer, Amount: eur(1200)},
		})
		if err != nil {
			t.Fatalf("%s places an order: %v", buyer, err)
		}
		return o.GetOrder().GetOrderId()
	}
	adaOrder := place("ada", "Ada Lovelace", "1 Main St")
	bobOrder := place("bob", "Bob Babbage", "2 Side St")
	// The order service stores tokens, not the address.
	stored, err := p.Store(t, "order").ReadStream(ctx, "order-"+adaOrder, 0, 1)
	if err != nil || len(stored) != 1 || strings.Contains(string(stored[0].Data), "Lovelace") || !strings.Contains(string(stored[0].Data), "pii1:buyer-ada.") {
		t.Fatalf("OrderPlaced as stored: %v, %v", stored, err)
	}

	privacy := func(roles ...string) auditv1.PrivacyServiceClient {
		return auditv1.NewPrivacyServiceClient(p.Conn(t, roles...))
	}
	platformClient, support := privacy("platform"), as(t, p, "support")

	// Before: ada's export (hers, or the platform's) shows her address,
	// with the order's state and lines.
	x := export(t, privacy("buyer:ada"), "ada")
	if x.Erased || len(x.Orders) != 1 || x.Orders[0].OrderID != adaOrder || x.Orders[0].State == "" || len(x.Orders[0].Lines) == 0 ||
		x.value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "Ada Lovelace" ||
		x.value("custody.order.v1.OrderPlaced", "shipping_address.address_lines[0]") != "1 Main St" {
		t.Fatalf("ada's export before erasure: %+v", x)
	}
	if export(t, platformClient, "ada").value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "Ada Lovelace" {
		t.Error("the platform's export of ada differs")
	}
	for _, roles := range [][]string{{"buyer:bob"}, {"support"}, {"service"}, {"vendor:" + vendor}} {
		_, err := privacy(roles...).ExportBuyerData(ctx, &auditv1.ExportBuyerDataRequest{BuyerId: "ada"})
		platformtest.WantCode(t, err, codes.PermissionDenied)
	}

	// Refusals write nothing: not the platform, bad input, an unknown
	// buyer.
	erase := &auditv1.EraseBuyerRequest{BuyerId: "ada", RequestId: "erase-1", Reason: "DPO case 2030-17"}
	p.WritesNothing(t, "audit", func() {
		for _, roles := range [][]string{{"buyer:ada"}, {"support"}, {"service"}} {
			_, err := privacy(roles...).EraseBuyer(ctx, erase)
			platformtest.WantCode(t, err, codes.PermissionDenied)
		}
		_, err := platformClient.EraseBuyer(ctx, &auditv1.EraseBuyerRequest{BuyerId: "nobody", RequestId: "erase-0", Reason: "case"})
		platformtest.WantCode(t, err, codes.NotFound)
		_, err = platformClient.ExportBuyerData(ctx, &auditv1.ExportBuyerDataRequest{BuyerId: "nobody"})
		platformtest.WantCode(t, err, codes.NotFound)
	})
	p.WantRefused(t, "audit", "reason", platformtest.Call(platformClient.EraseBuyer, ctx,
		&auditv1.EraseBuyerRequest{BuyerId: "ada", RequestId: "erase-x", Reason: strings.Repeat("x", 501)}))

	// Erase.
	erased, err := platformClient.EraseBuyer(ctx, erase)
	if err != nil {
		t.Fatal(err)
	}
	if erased.GetBuyerId() != "ada" || erased.GetKeyId() != "buyer-ada" || strings.Join(erased.GetOrderIds(), ",") != adaOrder || erased.GetEraseTime() == nil {
		t.Fatalf("erased %v", erased)
	}

	// After: "[erased]" in the export, the timeline, the replay and the
	// order service's answer; the chains still verify.
	x = export(t, privacy("buyer:ada"), "ada")
	if !x.Erased || x.value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "[erased]" ||
		x.value("custody.order.v1.OrderPlaced", "shipping_address.address_lines[0]") != "[erased]" || strings.Contains(x.raw, "Ada Lovelace") {
		t.Fatalf("ada's export after erasure: %s", x.raw)
	}
	tl := timeline(t, support, adaOrder)
	if !strings.Contains(tl, `"recipient_name":"[erased]"`) || strings.Contains(tl, "Ada Lovelace") || strings.Contains(tl, "pii1:") {
		t.Fatalf("ada's timeline after erasure:\n%s", tl)
	}
	r, err := support.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: adaOrder})
	if err != nil || r.GetOrder().GetShippingAddress().GetRecipientName() != "[erased]" || !r.GetChainValid() {
		t.Fatalf("ada's order replayed: %v, %v", r.GetOrder().GetShippingAddress(), err)
	}
	got, err := orderv1.NewOrderServiceClient(p.Conn(t, "support")).GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: adaOrder})
	if err != nil || got.GetOrder().GetShippingAddress().GetRecipientName() != "[erased]" {
		t.Fatalf("the order service's answer: %v, %v", got.GetOrder().GetShippingAddress(), err)
	}
	for _, id := range []string{adaOrder, bobOrder} {
		if v, err := support.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{OrderId: id}); err != nil || !v.GetValid() {
			t.Fatalf("%s verified after the erasure: %v, %v", id, v, err)
		}
	}
	if tl := timeline(t, support, bobOrder); !strings.Contains(tl, `"recipient_name":"Bob Babbage"`) {
		t.Fatalf("bob's timeline:\n%s", tl)
	}
	if x := export(t, privacy("buyer:bob"), "bob"); x.Erased || x.value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "Bob Babbage" {
		t.Fatalf("bob's export: %s", x.raw)
	}

	// Once: the same request answers as before; another is refused.
	again, err := platformClient.EraseBuyer(ctx, erase)
	if err != nil || !again.GetEraseTime().AsTime().Equal(erased.GetEraseTime().AsTime()) {
		t.Fatalf("the same request again: %v, %v", again, err)
	}
	p.WritesNothing(t, "audit", func() {
		_, err = platformClient.EraseBuyer(ctx, &auditv1.EraseBuyerRequest{BuyerId: "ada", RequestId: "erase-2", Reason: "again"})
		platformtest.WantReason(t, err, codes.FailedPrecondition, domain.ReasonAlreadyErased)
	})

	// A crash between recording an erasure and destroying the key, as the
	// store would hold it: cy's erasure is recorded, her key is not
	// destroyed. The reaction to BuyerErased destroys it.
	cyOrder := place("cy", "Cy Clone", "3 Back St")
	if x := export(t, privacy("buyer:cy"), "cy"); x.Erased || x.value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "Cy Clone" {
		t.Fatalf("cy's export: %s", x.raw)
	}
	p.Emit(t, "audit", domain.Erasures.Stream("cy"), &auditv1.BuyerErased{BuyerId: "cy", Reason: "case 18", ErasedBy: "platform",
		KeyId: "buyer-cy", OrderIds: []string{cyOrder}, EraseTime: erased.GetEraseTime()})
	platformtest.Await(t, "cy's key destroyed by the reaction", func() (exportDoc, error) { return export(t, platformClient, "cy"), nil },
		func(x exportDoc) error {
			if !x.Erased || x.value("custody.order.v1.OrderPlaced", "shipping_address.recipient_name") != "[erased]" {
				return fmt.Errorf("not yet: %s", x.raw)
			}
			return nil
		})

	// The reactions to BuyerErased (the key destroyed already for ada,
	// not yet for cy) are done, none parked.
	p.Settled(t)
	parked, err := support.ListParkedEvents(ctx, &auditv1.ListParkedEventsRequest{Consumer: audit.ErasureConsumer})
	if err != nil || len(parked.GetParked()) != 0 {
		t.Fatalf("parked by %s: %v, %v", audit.ErasureConsumer, parked.GetParked(), err)
	}
}

// exportDoc is ExportBuyerDataResponse.json as a test reads it.
type exportDoc struct {
	raw    string
	Erased bool `json:"erased"`
	Orders []struct {
		OrderID string            `json:"order_id"`
		State   string            `json:"state"`
		Lines   []json.RawMessage `json:"lines"`
		Events  []struct {
			Type   string `json:"type"`
			Fields []struct {
				Path  string `json:"path"`
				Value string `json:"value"`
			} `json:"fields"`
		} `json:"events"`
	} `json:"orders"`
}

// value is the first value of path in an exported event of type typ.
func (x exportDoc) value(typ, path string) string {
	for _, o := range x.Orders {
		for _, e := range o.Events {
			for _, f := range e.Fields {
				if e.Type == typ && f.Path == path {
					return f.Value
				}
			}
		}
	}
	return ""
}

// export is buyer's export once it holds an order (the index follows the
// order store in the background).
func export(t *testing.T, c auditv1.PrivacyServiceClient, buyer string) exportDoc {
	t.Helper()
	return platformtest.Await(t, buyer+"'s export with an order", func() (exportDoc, error) {
		r, err := c.ExportBuyerData(t.Context(), &auditv1.ExportBuyerDataRequest{BuyerId: buyer})
		if err != nil {
			return exportDoc{}, err
		}
		x := exportDoc{raw: r.GetJson()}
		if err := json.Unmarshal([]byte(r.GetJson()), &x); err != nil {
			return x, err
		}
		if x.Erased != r.GetErased() {
			return x, fmt.Errorf("erased %v in the document, %v in the response", x.Erased, r.GetErased())
		}
		return x, nil
	}, func(x exportDoc) error {
		if len(x.Orders) == 0 {
			return fmt.Errorf("no order yet: %s", x.raw)
		}
		return nil
	})
}

// timeline is every payload of an order's timeline, one per line.
func timeline(t *testing.T, c auditv1.AuditServiceClient, orderID string) string {
	t.Helper()
	r, err := c.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: orderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.GetEvents() {
		if e.GetPayloadError() != "" {
			t.Fatalf("%s: %s", e.GetType(), e.GetPayloadError())
		}
		out = append(out, e.GetPayloadJson())
	}
	return strings.Join(out, "\n")
}
