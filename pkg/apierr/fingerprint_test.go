package apierr_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func placeOrder() *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{RequestId: "r1", BuyerId: "ada",
		Lines:           []*orderv1.LineRequest{{SkuId: "p-1", Quantity: 2}, {SkuId: "p-2", Quantity: 1}},
		ShippingAddress: &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, CountryCode: "DE"},
		Payment:         &orderv1.Payment{PspReference: "psp-1", Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 5000}},
		WaitTimeout:     durationpb.New(0)}
}

func TestFingerprint(t *testing.T) {
	fp := func(m *orderv1.PlaceOrderRequest) string { return apierr.Fingerprint(m, "wait_timeout") }
	base := fp(placeOrder())
	// Fingerprints are stored with the commands they placed: a retry after
	// an upgrade must still match, so the encoding may never change. The
	// one change (issue 16) left personal fields out: this is what the
	// first encoding gave the same request without its address's name,
	// line and postal code (b46681f6… with them). A request without
	// personal data hashes as it always did.
	const golden = "8ba58c304db24ce992356b0c7a90f4d4"
	if base != golden {
		t.Fatalf("fingerprint %q, want %q", base, golden)
	}
	bare := placeOrder()
	bare.ShippingAddress = &typev1.Address{CountryCode: "DE"}
	if got := fp(bare); got != golden {
		t.Fatalf("without personal fields: fingerprint %q, want %q (the first encoding's)", got, golden)
	}
	same := map[string]func(*orderv1.PlaceOrderRequest){
		"identical":          func(*orderv1.PlaceOrderRequest) {},
		"another request_id": func(m *orderv1.PlaceOrderRequest) { m.RequestId = "r2" },
		"an ignored field":   func(m *orderv1.PlaceOrderRequest) { m.WaitTimeout = durationpb.New(5e9) },
		// Personal data is not hashed: a request_id reused with another
		// address (its personal parts) is taken as a retry.
		"another recipient": func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.RecipientName = "Bob" },
		"another street":    func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.AddressLines = []string{"2 Side St", "Flat 3"} },
		"a phone added":     func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.Phone = "+4915112345678" },
		"a postal code":     func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.PostalCode = "10115" },
	}
	differs := map[string]func(*orderv1.PlaceOrderRequest){
		"an address's country":   func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.CountryCode = "FR" },
		"an address's locality":  func(m *orderv1.PlaceOrderRequest) { m.ShippingAddress.Locality = "Berlin" },
		"a top-level field":      func(m *orderv1.PlaceOrderRequest) { m.BuyerId = "bob" },
		"a nested field":         func(m *orderv1.PlaceOrderRequest) { m.Lines[1].Quantity = 3 },
		"the order of a list":    func(m *orderv1.PlaceOrderRequest) { m.Lines[0], m.Lines[1] = m.Lines[1], m.Lines[0] },
		"a field left out":       func(m *orderv1.PlaceOrderRequest) { m.Payment = nil },
		"an amount":              func(m *orderv1.PlaceOrderRequest) { m.Payment.Amount.AmountMinor = 5001 },
		"an optional field set":  func(m *orderv1.PlaceOrderRequest) { m.Attribution = &orderv1.Attribution{} },
		"a field it has unknown": func(m *orderv1.PlaceOrderRequest) { m.ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01}) },
	}
	for name, change := range same {
		m := placeOrder()
		change(m)
		if got := fp(m); got != base {
			t.Errorf("%s: fingerprint %s, want %s", name, got, base)
		}
	}
	for name, change := range differs {
		m := placeOrder()
		change(m)
		if got := fp(m); got == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	m := placeOrder()
	fp(m)
	if !proto.Equal(m, placeOrder()) {
		t.Error("Fingerprint changed the request")
	}

	// Personal fields deeper down (a claim's evidence text) are left out
	// too; the rest of the message they are in counts.
	claim := func(text string, serials ...string) string {
		return apierr.Fingerprint(&trustv1.OpenClaimRequest{RequestId: "r1", OrderId: "o1",
			Reason: trustv1.ClaimReason_CLAIM_REASON_DAMAGED, Evidence: &trustv1.Evidence{Text: text, SerialNumbers: serials}})
	}
	if claim("it came broken, Ada", "SN1") != claim("", "SN1") {
		t.Error("the evidence's text changed the fingerprint")
	}
	if claim("it came broken", "SN1") == claim("it came broken", "SN2") {
		t.Error("the evidence's serials did not change the fingerprint")
	}
	for name, call := range map[string]func(){
		"an ignored field it lacks": func() { apierr.Fingerprint(placeOrder(), "no_such_field") },
		"no request_id":             func() { apierr.Fingerprint(&trustv1.GetClaimRequest{ClaimId: "c"}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			call()
		}()
	}
}

func TestRequestReusedIsInvalidRequestID(t *testing.T) {
	err := apierr.FromError(t.Context(), nil, fmt.Errorf("place: %w", &es.ReusedError{Stream: "order-o1", CommandID: "c"}))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("code %v, want InvalidArgument", status.Code(err))
	}
	if fvs := apierr.FieldViolations(err); len(fvs) != 1 || fvs[0] != apierr.RequestReused || fvs[0].Field != "request_id" {
		t.Fatalf("field violations %v, want one on request_id", fvs)
	}
}
