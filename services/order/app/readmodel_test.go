package app_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/order/app"
)

// A checkpoint restores the read model whole: the same pages for buyers
// and vendors, the same orders and revisions; later events fold on top.
func TestReadModelCheckpoint(t *testing.T) {
	t.Parallel()
	pos := uint64(0)
	revs := map[string]uint64{}
	apply := func(m *app.ReadModel, id string, msg proto.Message) {
		pos++
		revs[id]++
		ed, err := es.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = fmt.Sprint(pos)
		m.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "order-" + id, Position: pos, Revision: revs[id]})
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := app.NewReadModel(nil)
	for i := range 12 {
		id := fmt.Sprintf("o%02d", i)
		apply(m, id, &orderv1.OrderPlaced{OrderId: id, BuyerId: fmt.Sprintf("b%d", i%3),
			Parts:           []*orderv1.VendorPart{{VendorId: fmt.Sprintf("v%d", i%2), Subtotal: &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100}}},
			Total:           &typev1.Money{CurrencyCode: "EUR", AmountMinor: 100},
			ShippingAddress: &typev1.Address{RecipientName: "Ada", CountryCode: "DE"},
			PlaceTime:       timestamppb.New(t0.Add(time.Duration(i%5) * time.Minute))})
		if i%2 == 0 {
			apply(m, id, &orderv1.OrderConfirmed{OrderId: id, BuyerId: fmt.Sprintf("b%d", i%3)})
		}
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	restored := app.NewReadModel(nil)
	if err := restored.Load(&buf); err != nil {
		t.Fatal(err)
	}
	list := func(m *app.ReadModel) string {
		var out []string
		for _, q := range []app.ListQuery{{BuyerID: "b0"}, {BuyerID: "b1"}, {BuyerID: "b2"}, {VendorID: "v0"}, {VendorID: "v1"}} {
			for tok := ""; ; {
				q.PageSize, q.PageToken = 2, tok
				p, err := m.List(q)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range p.Orders {
					out = append(out, fmt.Sprintf("%s %s %d %s %+v", o.Order.ID, o.Order.BuyerID, o.Revision, o.Order.Status, o.Order.Address.GetRecipientName()))
				}
				if tok = p.NextPageToken; tok == "" {
					break
				}
			}
		}
		return strings.Join(out, "\n")
	}
	want := list(m)
	if got := list(restored); got != want || len(want) == 0 {
		t.Fatalf("restored read model lists\n%s\nwant\n%s", got, want)
	}
	apply(m, "o01", &orderv1.OrderConfirmed{OrderId: "o01", BuyerId: "b1"})
	pos--
	revs["o01"]--
	apply(restored, "o01", &orderv1.OrderConfirmed{OrderId: "o01", BuyerId: "b1"})
	if got, want := list(restored), list(m); got != want {
		t.Fatalf("after one more event the restored read model lists\n%s\nwant\n%s", got, want)
	}
	if err := app.NewReadModel(nil).Load(strings.NewReader("not gob")); err == nil {
		t.Error("a corrupt checkpoint loaded")
	}
}
