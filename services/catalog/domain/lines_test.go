package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es/estest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// partly is the release of some of an order's units (ReleaseLines): the
// hold stands with the rest.
func partly(order string, l ...any) *catalogv1.StockHoldReleased {
	r := released(order, "order lines cancelled", l...)
	r.Partial = true
	return r
}

// TestProductReleasesLines: an order cancels some of its lines; the
// product gives back those units, at most what it holds unshipped, and a
// later release of the whole hold gives back only the rest.
func TestProductReleasesLines(t *testing.T) {
	cancel := func(l ...domain.Line) domain.ReleaseLines {
		return domain.ReleaseLines{OrderID: "o1", Lines: l, Reason: "order lines cancelled"}
	}
	whole := domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"}
	estest.Run(t, domain.Products, pid, []estest.Case[domain.ProductCommand]{
		{Name: "one unit of one sku", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1)},
			When: cancel(domain.Line{black, 1}), Then: []proto.Message{partly("o1", black, 1)}},
		{Name: "a whole sku", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1)},
			When: cancel(domain.Line{white, 1}), Then: []proto.Message{partly("o1", white, 1)}},
		{Name: "repeated skus add up", Given: []proto.Message{created, heldOnce("o1", black, 3)},
			When: cancel(domain.Line{black, 1}, domain.Line{black, 1}), Then: []proto.Message{partly("o1", black, 2)}},
		{Name: "everything: the whole hold goes", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1)},
			When: cancel(domain.Line{black, 2}, domain.Line{white, 1}), Then: []proto.Message{releasedOnce("o1", "order lines cancelled", black, 2, white, 1)}},
		{Name: "the rest after a first cancellation: the whole hold goes", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), partly("o1", white, 1)},
			When: cancel(domain.Line{black, 2}), Then: []proto.Message{releasedOnce("o1", "order lines cancelled", black, 2)}},
		{Name: "no more than held", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), partly("o1", black, 1)},
			When: cancel(domain.Line{black, 2}), Then: []proto.Message{partly("o1", black, 1)}},
		{Name: "no more than unshipped", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), sold("o1", "s1", black, 2)},
			When: cancel(domain.Line{black, 1}, domain.Line{white, 1}), Then: []proto.Message{partly("o1", white, 1)}},
		{Name: "shipped units stay", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), sold("o1", "s1", black, 2)},
			When: cancel(domain.Line{black, 1})},
		{Name: "a sku of another product is ignored", Given: []proto.Message{created, heldOnce("o1", black, 2)},
			When: cancel(domain.Line{"p2-red", 1})},
		{Name: "nothing held: released before", Given: []proto.Message{created, heldOnce("o1", black, 2), releasedOnce("o1", "order cancelled", black, 2)},
			When: cancel(domain.Line{black, 1})},
		{Name: "nothing held: never decided here", Given: []proto.Message{created}, When: cancel(domain.Line{black, 1})},
		{Name: "then the whole order: only the rest", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), partly("o1", black, 1)},
			When: whole, Then: []proto.Message{releasedOnce("o1", "order cancelled", black, 1, white, 1)}},
		{Name: "then the whole order after every unit: nothing", Given: []proto.Message{created, heldOnce("o1", black, 2), releasedOnce("o1", "order lines cancelled", black, 2)},
			When: whole},
		{Name: "ship what is left, not more", Given: []proto.Message{created, heldOnce("o1", black, 2, white, 1), partly("o1", black, 1)},
			When: domain.SellStock{OrderID: "o1", ShipmentID: "f1/s1", Lines: []domain.Line{{black, 2}}}, Err: domain.ErrNoHold},
	})
}

// TestReleasedLinesFold: the ledger and the hold after a partial release,
// and once what is left has shipped.
func TestReleasedLinesFold(t *testing.T) {
	s := domain.Products.Fold(pid, nil)
	for _, e := range []proto.Message{created, heldOnce("o1", black, 3), partly("o1", black, 1)} {
		s = domain.Products.Evolve(s, e)
	}
	if k, _ := s.SKU(black); [3]int64{k.Available, k.Reserved, k.Sold} != [3]int64{3, 2, 0} || s.HoldFor("o1").Status != domain.HoldHeld {
		t.Fatalf("after releasing 1 of 3: %+v, hold %v", k, s.HoldFor("o1"))
	}
	s = domain.Products.Evolve(s, sold("o1", "f1/s1", black, 2))
	if k, _ := s.SKU(black); [3]int64{k.Available, k.Reserved, k.Sold} != [3]int64{3, 0, 2} || s.HoldFor("o1").Status != domain.HoldSold {
		t.Fatalf("after shipping the rest: %+v, hold %v", k, s.HoldFor("o1"))
	}
}
