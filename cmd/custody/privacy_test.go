package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/personal/jskeys"
	"github.com/custody/custody/pkg/platform"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Forget a person without breaking the history (issue 16), through every
// service of the binary: a buyer's name, street and phone are never stored
// in clear — not in any JetStream file, key bucket, read model or
// checkpoint — before or after their erasure; after it their fields read
// "[erased]" everywhere while every chain of their order still verifies,
// across a restart and a `custody rebuild`; another buyer's order still
// shows its address; the erased buyer can place no new order.
func TestErasureLeavesNothingInClearAndEveryChainWhole(t *testing.T) {
	t.Parallel()
	p := startParts(t)
	ctx := t.Context()
	zelda := &typev1.Address{RecipientName: "Zelda Quixbottom", Phone: "+4915550123987",
		AddressLines: []string{"Quarrendorfer Weg 77"}, Locality: "Hamburg", PostalCode: "21077", CountryCode: "DE"}
	yorick := &typev1.Address{RecipientName: "Yorick Plumtree", Phone: "+4915550999111",
		AddressLines: []string{"Vellinger Allee 5"}, Locality: "Bremen", PostalCode: "28195", CountryCode: "DE"}
	zeldas := []string{"Zelda Quixbottom", "Quixbottom", "Quarrendorfer Weg", "+4915550123987", "4915550123987"}
	yoricks := []string{"Yorick Plumtree", "Vellinger Allee", "+4915550999111"}

	prod := createProduct(t, p.ops.cat, "v-gdpr", 10, 1500)
	sku := prod.GetSkus()[0].GetSkuId()
	place := func(buyer, request string, addr *typev1.Address) (*orderv1.PlaceOrderResponse, error) {
		return p.dial("buyer:"+buyer).ord.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			RequestId: request, BuyerId: buyer, ShippingAddress: addr,
			Lines:   []*orderv1.LineRequest{{SkuId: sku, Quantity: 1}},
			Payment: &orderv1.Payment{PspReference: "psp-" + request, Amount: eur(1500)}, WaitTimeout: durationpb.New(20 * time.Second),
		})
	}
	var orders []string
	for _, b := range []struct {
		buyer string
		addr  *typev1.Address
	}{{"zelda", zelda}, {"yorick", yorick}} {
		r, err := place(b.buyer, "gdpr-"+b.buyer, b.addr)
		if err != nil || r.GetOrder().GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
			t.Fatalf("%s's order: %v %v", b.buyer, r.GetOrder().GetState(), err)
		}
		if a := r.GetOrder().GetShippingAddress(); a.GetRecipientName() != b.addr.GetRecipientName() || a.GetPhone() != b.addr.GetPhone() {
			t.Fatalf("PlaceOrder answered the address %v, want it revealed", a)
		}
		orders = append(orders, r.GetOrder().GetOrderId())
	}
	zeldaOrder := orders[0]

	// Zelda's parcel is delivered with a proof that names her, and she
	// writes a claim in her own words.
	f := p.fulfilment(t, "v-gdpr", zeldaOrder)
	if _, err := p.dial("vendor:v-gdpr").ful.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: "ship-gdpr", FulfilmentId: f.GetFulfilmentId(), Carrier: "dhl", TrackingNumber: "4711004711",
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: f.GetLines(), Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: []string{photo},
			Units: []*fulfilmentv1.PackedUnit{{LineId: f.GetLines()[0].GetLineId(), SkuId: sku, SerialNumber: "SN-GDPR-1"}}}}},
	}); err != nil {
		t.Fatal(err)
	}
	p.clk.Advance(time.Hour)
	if _, err := p.dial("carrier:dhl").ful.RecordTrackingEvent(ctx, &fulfilmentv1.RecordTrackingEventRequest{
		RequestId: "d-gdpr", Carrier: "dhl", TrackingNumber: "4711004711", CarrierEventId: "d-gdpr",
		Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_DELIVERED, OccurTime: timestamppb.New(p.clk.Now()),
		Location: "Quarrendorfer Weg 77, doorstep", Description: "handed to Zelda Quixbottom",
		Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "Zelda Quixbottom", PhotoSha256: photo},
	}); err != nil {
		t.Fatal(err)
	}
	p.awaitOrder(t, "Zelda's order delivered", zeldaOrder, func(o *orderv1.Order) error {
		if o.GetState() != orderv1.OrderState_ORDER_STATE_DELIVERED {
			return status.Errorf(codes.Unknown, "state %v", o.GetState())
		}
		return nil
	})
	if _, err := trustv1.NewTrustServiceClient(p.plat.Conn(t, "buyer:zelda")).OpenClaim(ctx, &trustv1.OpenClaimRequest{
		RequestId: "claim-gdpr", OrderId: zeldaOrder, Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED,
		Lines:    []*trustv1.ClaimLineRequest{{LineId: "1", Quantity: 1}},
		Evidence: &trustv1.Evidence{Sha256: []string{photo}, Text: "Zelda Quixbottom here: the mug arrived cracked"},
	}); err != nil {
		t.Fatal(err)
	}
	p.plat.Settled(t)
	before := p.order(t, zeldaOrder)
	privacy := func() auditv1.PrivacyServiceClient {
		return auditv1.NewPrivacyServiceClient(p.plat.Conn(t, "platform"))
	}
	if x, err := privacy().ExportBuyerData(ctx, &auditv1.ExportBuyerDataRequest{BuyerId: "zelda"}); err != nil ||
		!strings.Contains(x.GetJson(), "Quarrendorfer Weg 77") || !strings.Contains(x.GetJson(), "the mug arrived cracked") {
		t.Fatalf("export before erasure: %v %v", x, err)
	}

	// Stopped, every file is written out (the read models' memtables too).
	p.plat.Stop(t)
	assertNotOnDisk(t, p.plat.DataDir, append(zeldas, yoricks...))
	p.plat.Restart(t)

	if _, err := privacy().EraseBuyer(ctx, &auditv1.EraseBuyerRequest{BuyerId: "zelda", RequestId: "erase-zelda", Reason: "GDPR-2026-0042"}); err != nil {
		t.Fatal(err)
	}
	after := func(when string) {
		t.Helper()
		o, err := orderv1.NewOrderServiceClient(p.plat.Conn(t, "support")).GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: zeldaOrder})
		if err != nil {
			t.Fatalf("%s: GetOrder: %v", when, err)
		}
		a := o.GetOrder().GetShippingAddress()
		if a.GetRecipientName() != "[erased]" || a.GetPhone() != "[erased]" || a.GetAddressLines()[0] != "[erased]" || a.GetLocality() != "Hamburg" {
			t.Errorf("%s: Zelda's address reads %v", when, a)
		}
		if o.GetOrder().GetState() != before.GetState() || o.GetOrder().GetTotal().GetAmountMinor() != before.GetTotal().GetAmountMinor() {
			t.Errorf("%s: the order changed: %v %v, was %v %v", when, o.GetOrder().GetState(), o.GetOrder().GetTotal(), before.GetState(), before.GetTotal())
		}
		y, err := orderv1.NewOrderServiceClient(p.plat.Conn(t, "support")).GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: orders[1]})
		if err != nil || y.GetOrder().GetShippingAddress().GetAddressLines()[0] != "Vellinger Allee 5" {
			t.Errorf("%s: Yorick's order reads %v, %v", when, y.GetOrder().GetShippingAddress(), err)
		}
		audit := auditv1.NewAuditServiceClient(p.plat.Conn(t, "support"))
		for _, id := range orders {
			verifyChain(t, audit, id)
		}
		tl, err := audit.GetOrderTimeline(ctx, &auditv1.GetOrderTimelineRequest{OrderId: zeldaOrder, PageSize: 1000})
		if err != nil {
			t.Fatalf("%s: timeline: %v", when, err)
		}
		var text strings.Builder
		for _, e := range tl.GetEvents() {
			text.WriteString(e.GetPayloadJson())
		}
		if !strings.Contains(text.String(), "[erased]") {
			t.Errorf("%s: the timeline shows no [erased] field", when)
		}
		for _, s := range zeldas {
			if strings.Contains(text.String(), s) {
				t.Errorf("%s: the timeline shows %q", when, s)
			}
		}
		if _, err := audit.ReplayOrder(ctx, &auditv1.ReplayOrderRequest{OrderId: zeldaOrder}); err != nil {
			t.Errorf("%s: replay: %v", when, err)
		}
		_, err = place("zelda", "gdpr-zelda-again", zelda)
		if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "erased") {
			t.Errorf("%s: an erased buyer's new order: %v, want FailedPrecondition", when, err)
		}
	}
	after("after the erasure")
	p.plat.Stop(t)
	assertNotOnDisk(t, p.plat.DataDir, append(zeldas, yoricks...))

	p.plat.Restart(t)
	after("after a restart")
	p.plat.Stop(t)
	var out, errOut bytes.Buffer
	if err := run([]string{"rebuild", "--nats-url", p.plat.NATS.ConnectedUrl()}, &out, &errOut); err != nil {
		t.Fatalf("rebuild: %v\n%s%s", err, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "broken") || !strings.Contains(out.String(), "every hash chain verified") {
		t.Fatalf("rebuild after the erasure:\n%s", out.String())
	}
	p.plat.Restart(t)
	after("after a rebuild")
	p.plat.Stop(t)
	assertNotOnDisk(t, p.plat.DataDir, append(zeldas, yoricks...))
}

// assertNotOnDisk fails t for each of needles found in a file under dir.
// It first makes sure the search can find what is there: the product's
// title, stored in clear, is found.
func assertNotOnDisk(t *testing.T, dir string, needles []string) {
	t.Helper()
	found := map[string]string{}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range append(needles, "v-gdpr") {
			if bytes.Contains(b, []byte(n)) {
				found[n] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := found["v-gdpr"]; !ok || files < 10 {
		t.Fatalf("the search of %d files did not find the vendor id in clear: it would find nothing", files)
	}
	for _, n := range needles {
		if path, ok := found[n]; ok {
			t.Errorf("%q is stored in clear in %s", n, path)
		}
	}
}

// Rotating the master key: a new key first in the keyring, the old one
// after it; `custody keys rewrap` wraps every data key with the new one;
// then the old one is dropped and the orders still show their addresses.
func TestMasterKeyRotationWithKeysRewrap(t *testing.T) {
	t.Parallel()
	p := startParts(t)
	prod := createProduct(t, p.ops.cat, "v-rotate", 5, 700)
	r, err := p.dial("buyer:rosa").ord.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		RequestId: "rotate-1", BuyerId: "rosa", ShippingAddress: address,
		Lines:   []*orderv1.LineRequest{{SkuId: prod.GetSkus()[0].GetSkuId(), Quantity: 1}},
		Payment: &orderv1.Payment{PspReference: "psp-rotate", Amount: eur(700)}, WaitTimeout: durationpb.New(20 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.plat.Stop(t)
	file := filepath.Join(platform.KeyDir(p.plat.DataDir), "master.keys")
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	line, err := jskeys.NewMasterKeyLine("m2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(line+"\n"+string(old)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run([]string{"keys", "rewrap", "--nats-url", p.plat.NATS.ConnectedUrl(), "--master-keys-file", file}, &out, &errOut); err != nil {
		t.Fatalf("keys rewrap: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "rewrapped with master key m2") || strings.HasPrefix(out.String(), "0 ") {
		t.Fatalf("keys rewrap said %q", out.String())
	}
	if err := os.WriteFile(file, []byte(line+"\n"), 0o600); err != nil { // the old key dropped
		t.Fatal(err)
	}
	p.plat.Restart(t)
	o, err := orderv1.NewOrderServiceClient(p.plat.Conn(t, "support")).GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: r.GetOrder().GetOrderId()})
	if err != nil || o.GetOrder().GetShippingAddress().GetRecipientName() != address.GetRecipientName() {
		t.Fatalf("after the rotation the order reads %v, %v", o.GetOrder().GetShippingAddress(), err)
	}
}
