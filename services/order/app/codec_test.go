package app

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/money"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/domain"
)

// A stored order reads back field for field (every field set, so a field
// the codec forgot fails), and a damaged value is an error.
func TestStoredOrderRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 7, time.UTC)
	eur := func(n int64) money.Money { return money.Money{Currency: "EUR", Minor: n} }
	so := storedOrder{Revision: 9, Order: domain.Order{
		ID: "o1", Status: domain.StatusCancelled, BuyerID: "b1",
		Lines: []domain.Line{{LineID: "1", SKUID: "s1", ProductID: "p1", VendorID: "v1", Title: "Lamp", Quantity: 2,
			UnitPrice: eur(500), LineTotal: eur(1000), CreatorID: "c1", CommissionBps: 750, CancelledQuantity: 1, RefundedQuantity: 1}},
		Parts: []domain.Part{{VendorID: "v1", LineIDs: []string{"1"}, Subtotal: eur(1000), Shipped: true, ShipmentID: "sh1", Delivered: true,
			Cancelled: true, CancelReason: "ship-by", CancelledBy: "service:fulfilment", Refunded: eur(700), Settled: true}},
		Total: eur(1000),
		Address: &typev1.Address{RecipientName: "Ada", AddressLines: []string{"1 Main St"}, Locality: "Berlin",
			PostalCode: "10115", CountryCode: "DE"},
		Attribution: &domain.Attribution{AffiliateLinkID: "l1", LiveSessionID: "ls1", CreatorID: "c1", TouchTime: at},
		Payment:     domain.Payment{PSPReference: "psp-1", Amount: eur(1000)},
		Reason:      "buyer asked", RejectedSKU: "s9", CancelledBy: "buyer:b1",
		PlaceTime: at, UpdateTime: at.Add(time.Hour),
		Refunded: eur(1000), RefundIDs: []string{"r1", "r2"},
		Saga: domain.StatusConfirmed, AllDelivered: true, Completed: true,
	}}
	// Every field set: a field added to domain.Order and not to the codec
	// is zero here and fails the comparison below.
	if fields := reflect.TypeOf(so.Order).NumField(); fields != 19 {
		t.Fatalf("domain.Order has %d fields; the codec and this test know 19", fields)
	}
	for typ, n := range map[reflect.Type]int{reflect.TypeOf(domain.Line{}): 12, reflect.TypeOf(domain.Part{}): 11} {
		if typ.NumField() != n {
			t.Fatalf("%s has %d fields; the codec and this test know %d", typ, typ.NumField(), n)
		}
	}
	b, err := encodeOrder(so)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeOrder(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Order.Address, so.Order.Address) {
		t.Errorf("address %v, want %v", got.Order.Address, so.Order.Address)
	}
	got.Order.Address, so.Order.Address = nil, nil
	if !reflect.DeepEqual(got, so) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, so)
	}
	j, _ := json.Marshal(so)
	t.Logf("stored %d bytes; %d as JSON", len(b), len(j))
	for name, bad := range map[string][]byte{"cut short": b[:len(b)-3], "another version": append([]byte{9}, b[1:]...)} {
		if _, err := decodeOrder(bad); !errors.Is(err, kv.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
