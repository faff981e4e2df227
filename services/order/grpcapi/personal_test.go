package grpcapi

import (
	"log/slog"
	"testing"

	"github.com/custody/custody/pkg/apierr/apierrtest"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// An address the validators refuse is refused by field: the error, which
// the call log prints, never repeats the name, phone, street or postal
// code.
func TestRefusedAddressIsNotRepeated(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	addr := &typev1.Address{RecipientName: "Ada", Phone: "+4915112345678", AddressLines: []string{"Unter den Linden 1", "Flat 2"},
		Locality: "Berlin", PostalCode: "10117", CountryCode: "DE"}
	apierrtest.KeepsPersonalOut(t, &orderv1.PlaceOrderRequest{RequestId: "r1", BuyerId: "b1",
		Lines: []*orderv1.LineRequest{{SkuId: "p1-a", Quantity: 1}}, ShippingAddress: addr},
		func(r *orderv1.PlaceOrderRequest) error { _, err := validatePlace(r); return err }, s.toStatus)
	apierrtest.KeepsPersonalOut(t, &orderv1.ChangeShippingAddressRequest{RequestId: "r1", OrderId: "o1", ShippingAddress: addr},
		validateChangeAddress, s.toStatus)
}
