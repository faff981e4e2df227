package app

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/custody/custody/pkg/kv"
)

// ListOrders walks the shortest of the lists a query's filters select,
// counted when asked (no counts are kept): short against long, long
// against short, several past the first counting limit, and a list that
// does not exist (no orders) against a long one.
func TestNarrowestListIsTheShortest(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Space("order/orders")
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{"b:short": 3, "b:long": 700, "v:short": 5, "v:long": 1000, "c:mid": 300, "p:one": 1}
	b := s.Batch()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for owner, n := range sizes {
		for i := range n {
			_ = b.Set(append(kv.ListPrefix(owner[0], owner[2:]), kv.TimeKey(t0.Add(time.Duration(i)*time.Second), fmt.Sprint(owner, i))...), nil)
		}
	}
	if err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		q    ListQuery
		want []byte
	}{
		"no filter":                  {ListQuery{}, kv.ListPrefix(listAll, "")},
		"one filter":                 {ListQuery{VendorID: "long"}, kv.ListPrefix(listVendor, "long")},
		"short buyer, long vendor":   {ListQuery{BuyerID: "short", VendorID: "long"}, kv.ListPrefix(listBuyer, "short")},
		"long buyer, short vendor":   {ListQuery{BuyerID: "long", VendorID: "short"}, kv.ListPrefix(listVendor, "short")},
		"three past the first limit": {ListQuery{BuyerID: "long", VendorID: "long", CreatorID: "mid"}, kv.ListPrefix(listCreator, "mid")},
		"a payment reference":        {ListQuery{BuyerID: "short", PSPReference: "one"}, kv.ListPrefix(listPSP, "one")},
		"a buyer with no orders":     {ListQuery{BuyerID: "nobody", VendorID: "long"}, kv.ListPrefix(listBuyer, "nobody")},
	} {
		got, err := narrowest(s, c.q)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: walks %q (%v), want %q", name, got, err, c.want)
		}
	}
}
