package domain_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

// releasedOnce is the release of a hold decided once, or the tombstone of
// FenceOrder: the product keeps no record of the order after it.
func releasedOnce(order, reason string, l ...any) *catalogv1.StockHoldReleased {
	r := released(order, reason, l...)
	r.DecidedOnce = true
	return r
}

// placedAt is h with its order's place time.
func placedAt(h *catalogv1.StockHeld, t time.Time) *catalogv1.StockHeld {
	h = proto.Clone(h).(*catalogv1.StockHeld)
	h.PlaceTime = timestamppb.New(t)
	return h
}

// before is a failure as recorded before holds were pruned.
func before(f *catalogv1.StockReservationFailed) *catalogv1.StockReservationFailed {
	f = proto.Clone(f).(*catalogv1.StockReservationFailed)
	f.DecidedOnce = false
	return f
}

// TestProductPrunesFinishedHolds folds events: a hold decided once is
// dropped when it is released (and a failure or a fence decided once
// leaves none), a sold one is kept for returns until the product decides
// an order placed SoldHorizon later; holds recorded before pruning stay.
// The stock counts are the same either way.
func TestProductPrunesFinishedHolds(t *testing.T) {
	day := 24 * time.Hour
	refused := &catalogv1.StockReservationFailed{OrderId: "o3", SkuId: white, Requested: 9, Available: 2, DecidedOnce: true, PlaceTime: timestamppb.New(t0)}
	cases := []struct {
		name   string
		events []proto.Message
		holds  map[string]domain.HoldStatus // every hold kept
		black  [3]int64                     // available, reserved, sold
	}{
		{"held", []proto.Message{heldOnce("o1", black, 2)},
			map[string]domain.HoldStatus{"o1": domain.HoldHeld}, [3]int64{3, 2, 0}},
		{"released: dropped", []proto.Message{heldOnce("o1", black, 2), releasedOnce("o1", "order cancelled", black, 2)},
			nil, [3]int64{5, 0, 0}},
		{"a failure decided once keeps none", []proto.Message{refused}, nil, [3]int64{5, 0, 0}},
		{"a fence keeps none", []proto.Message{releasedOnce("o9", "order cancelled")}, nil, [3]int64{5, 0, 0}},
		{"released before pruning: kept", []proto.Message{held("o1", black, 2), released("o1", "order cancelled", black, 2), before(refused)},
			map[string]domain.HoldStatus{"o1": domain.HoldReleased, "o3": domain.HoldReleased}, [3]int64{5, 0, 0}},
		{"partly shipped: kept", []proto.Message{heldOnce("o1", black, 2), sold("o1", "s1", black, 1)},
			map[string]domain.HoldStatus{"o1": domain.HoldHeld}, [3]int64{3, 1, 1}},
		{"sold: kept for returns", []proto.Message{placedAt(heldOnce("o1", black, 2), t0), sold("o1", "s1", black, 2),
			placedAt(heldOnce("o2", white, 1), t0.Add(domain.SoldHorizon-day))},
			map[string]domain.HoldStatus{"o1": domain.HoldSold, "o2": domain.HoldHeld}, [3]int64{3, 0, 2}},
		{"sold, past the horizon: dropped", []proto.Message{placedAt(heldOnce("o1", black, 2), t0), sold("o1", "s1", black, 2),
			placedAt(heldOnce("o2", white, 1), t0.Add(domain.SoldHorizon+day))},
			map[string]domain.HoldStatus{"o2": domain.HoldHeld}, [3]int64{3, 0, 2}},
		{"held, past the horizon: kept", []proto.Message{placedAt(heldOnce("o1", black, 2), t0),
			placedAt(heldOnce("o2", white, 1), t0.Add(domain.SoldHorizon+day))},
			map[string]domain.HoldStatus{"o1": domain.HoldHeld, "o2": domain.HoldHeld}, [3]int64{3, 2, 0}},
		{"sold before pruning, past the horizon: kept", []proto.Message{held("o1", black, 2), sold("o1", "s1", black, 2),
			placedAt(heldOnce("o2", white, 1), t0), placedAt(heldOnce("o3", white, 1), t0.Add(domain.SoldHorizon+day))},
			map[string]domain.HoldStatus{"o1": domain.HoldSold, "o2": domain.HoldHeld, "o3": domain.HoldHeld}, [3]int64{3, 0, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := domain.Products.Fold(pid, nil)
			for _, e := range append([]proto.Message{created}, tc.events...) {
				s = domain.Products.Evolve(s, e)
			}
			for _, order := range []string{"o1", "o2", "o3", "o9"} {
				if got, want := s.HoldFor(order).Status, tc.holds[order]; got != want {
					t.Errorf("hold %s = %v, want %v", order, got, want)
				}
			}
			if s.HoldCount() != len(tc.holds) {
				t.Errorf("%d holds kept, want %d", s.HoldCount(), len(tc.holds))
			}
			if k, _ := s.SKU(black); [3]int64{k.Available, k.Reserved, k.Sold} != tc.black {
				t.Errorf("black available/reserved/sold = %v, want %v", [3]int64{k.Available, k.Reserved, k.Sold}, tc.black)
			}
		})
	}
}

// call is one command as the saga issues it: its id (the order's decision
// id for ReserveStock, HoldStock and FenceOrder) and its body.
type call struct {
	id   string
	body domain.ProductCommand
}

func decide(order string, body domain.ProductCommand) call {
	return call{domain.DecisionID(pid, order), body}
}

var (
	create    = call{"create", createCmd}
	reserveO1 = decide("o1", domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 2}}, PlacedAt: t0, Now: t1})
	fenceO1   = decide("o1", domain.FenceOrder{OrderID: "o1", Reason: "order cancelled"})
	releaseO1 = call{"cancel-o1", domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"}}
)

// TestProductFences runs the product with the es handler, as the saga
// does: given the commands applied (with their ids), when one more comes,
// then the events it appends (none: a repeat, or nothing to do) and the
// product after it. Each case runs three ways, which must agree: on the
// handler that applied the given commands; after a restart (a new handler
// loading the product from its stream); and on a second handler that
// loaded the product before the given commands, racing the first.
func TestProductFences(t *testing.T) {
	sellO1 := call{"ship-o1", domain.SellStock{OrderID: "o1", ShipmentID: "f1/s1", Lines: []domain.Line{{black, 2}}}}
	cases := []struct {
		name  string
		given []call
		when  call
		then  []proto.Message
		err   error
		black [3]int64 // available, reserved, sold after it
		holds int
	}{
		{name: "a replayed OrderPlaced after the hold was released and dropped holds nothing",
			given: []call{create, reserveO1, releaseO1}, when: reserveO1, black: [3]int64{5, 0, 0}},
		{name: "a re-published OrderPlaced (another event, the same decision id) holds nothing",
			given: []call{create, reserveO1, releaseO1},
			when:  decide("o1", domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 1}}, PlacedAt: t0, Now: t2}), black: [3]int64{5, 0, 0}},
		{name: "a refused order is refused once, even when stock came back",
			given: []call{create, decide("o1", domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 9}}, Now: t1}),
				{"restock", domain.AdjustStock{SkuID: black, Delta: 10, Now: t1}}},
			when: decide("o1", domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 9}}, Now: t2}), black: [3]int64{15, 0, 0}},
		{name: "the multi-product hold is the same decision",
			given: []call{create, reserveO1, releaseO1},
			when:  decide("o1", domain.HoldStock{OrderID: "o1", Lines: []domain.Line{{black, 2}}}), black: [3]int64{5, 0, 0}},
		{name: "a cancellation overtaking its order: the fence is a tombstone, decided once",
			given: []call{create}, when: fenceO1, then: []proto.Message{releasedOnce("o1", "order cancelled")}, black: [3]int64{5, 0, 0}},
		{name: "the OrderPlaced after its cancellation holds nothing",
			given: []call{create, fenceO1, releaseO1}, when: reserveO1, black: [3]int64{5, 0, 0}},
		{name: "a cancellation after the order was reserved: the fence is a repeat",
			given: []call{create, reserveO1}, when: fenceO1, black: [3]int64{3, 2, 0}, holds: 1},
		{name: "… and the release gives the units back, once",
			given: []call{create, reserveO1, fenceO1}, when: releaseO1,
			then: []proto.Message{releasedOnce("o1", "order cancelled", black, 2)}, black: [3]int64{5, 0, 0}},
		{name: "a late cancellation of a released order releases nothing",
			given: []call{create, reserveO1, releaseO1, fenceO1},
			when:  call{"cancel-o1-again", domain.ReleaseStock{OrderID: "o1", Reason: "order cancelled"}}, black: [3]int64{5, 0, 0}},
		{name: "a late cancellation of a refused order releases nothing",
			given: []call{create, decide("o1", domain.ReserveStock{OrderID: "o1", Lines: []domain.Line{{black, 9}}, Now: t1}), fenceO1},
			when:  releaseO1, black: [3]int64{5, 0, 0}},
		{name: "a late cancellation of a sold order releases nothing",
			given: []call{create, reserveO1, sellO1, fenceO1}, when: releaseO1, black: [3]int64{3, 0, 2}, holds: 1},
		{name: "a return of a sold order within the horizon restocks",
			given: []call{create, reserveO1, sellO1},
			when:  call{"return-r1", domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 1}}}},
			then:  []proto.Message{&catalogv1.StockRestocked{ProductId: pid, OrderId: "o1", Lines: lines(black, 1), ReturnId: "r1"}},
			black: [3]int64{4, 0, 1}, holds: 1},
		{name: "a return of a sold order past the horizon is refused: NO_HOLD",
			given: []call{create, reserveO1, sellO1, reserveLater("o2", domain.SoldHorizon+24*time.Hour)},
			when:  call{"return-r1", domain.RestockReturn{OrderID: "o1", ReturnID: "r1", Lines: []domain.Line{{black, 1}}}},
			err:   domain.ErrNoHold, black: [3]int64{2, 1, 2}, holds: 1},
		{name: "a shipment published again after the hold was dropped sells nothing: NO_HOLD",
			given: []call{create, reserveO1, sellO1, reserveLater("o2", domain.SoldHorizon+24*time.Hour)},
			when:  call{"ship-o1-again", domain.SellStock{OrderID: "o1", ShipmentID: "f1/s1", Lines: []domain.Line{{black, 2}}}},
			err:   domain.ErrNoHold, black: [3]int64{2, 1, 2}, holds: 1},
	}
	for _, tc := range cases {
		for _, how := range []string{"same handler", "after a restart", "second instance"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				ctx := t.Context()
				store := memory.New(func() time.Time { return t0 })
				first := es.NewHandler(domain.Products, store, es.Options{})
				second := es.NewHandler(domain.Products, store, es.Options{})
				if _, _, _, err := second.Load(ctx, pid); err != nil { // its copy is stale from here on
					t.Fatal(err)
				}
				for _, c := range tc.given {
					handle(t, first, c)
				}
				h := first
				switch how {
				case "after a restart":
					h = es.NewHandler(domain.Products, store, es.Options{})
				case "second instance":
					h = second
				}
				n := streamLen(t, store)
				res, err := h.Handle(ctx, es.Command[domain.ProductCommand]{AggregateID: pid, ID: tc.when.id, Body: tc.when.body})
				estest.WantErr(t, err, tc.err)
				recs, _ := store.ReadStream(ctx, "product-"+pid, uint64(n), 0)
				var got []proto.Message
				for _, r := range recs {
					ev, err := es.Decode(r)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ev.Payload)
				}
				if !slices.EqualFunc(got, tc.then, proto.Equal) {
					t.Fatalf("events:\ngot:\n%s\nwant:\n%s", estest.Format(got), estest.Format(tc.then))
				}
				if err == nil && len(tc.then) == 0 && tc.when.id == domain.DecisionID(pid, "o1") && !res.Duplicate {
					t.Fatal("a decision for o1 came again and was not answered as a repeat")
				}
				p, _, _, err := h.Load(ctx, pid)
				if err != nil {
					t.Fatal(err)
				}
				if k, _ := p.SKU(black); [3]int64{k.Available, k.Reserved, k.Sold} != tc.black {
					t.Fatalf("black available/reserved/sold = %v, want %v", [3]int64{k.Available, k.Reserved, k.Sold}, tc.black)
				}
				if p.HoldCount() != tc.holds {
					t.Fatalf("%d holds kept, want %d", p.HoldCount(), tc.holds)
				}
			})
		}
	}
}

// reserveLater reserves one unit for order, placed after t0 by d.
func reserveLater(order string, d time.Duration) call {
	return decide(order, domain.ReserveStock{OrderID: order, Lines: []domain.Line{{black, 1}}, PlacedAt: t0.Add(d), Now: t0.Add(d)})
}

func handle(t *testing.T, h *es.Handler[domain.Product, domain.ProductCommand], c call) {
	t.Helper()
	if _, err := h.Handle(t.Context(), es.Command[domain.ProductCommand]{AggregateID: pid, ID: c.id, Body: c.body}); err != nil {
		t.Fatalf("given %s: %v", c.id, err)
	}
}

func streamLen(t *testing.T, store eventstore.Store) int {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), "product-"+pid, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	return len(recs)
}

// TestProductHoldsStayBounded: many orders finish on one product —
// refused, cancelled after being reserved, cancelled before they arrived,
// shipped — each decided as the saga decides it, one order placed an hour
// after the other. The holds kept are the open ones and those sold within
// SoldHorizon, however many orders came; before holds were pruned there
// was one per order.
func TestProductHoldsStayBounded(t *testing.T) {
	const orders = 9000 // an order an hour: a little over a year
	ctx := t.Context()
	store := memory.New(func() time.Time { return t0 })
	h := es.NewHandler(domain.Products, store, es.Options{})
	handle(t, h, create)
	handle(t, h, call{"stock", domain.AdjustStock{SkuID: black, Delta: orders, Now: t0}})
	most := 0
	for i := range orders {
		order := fmt.Sprint("o", i)
		at := t0.Add(time.Duration(i) * time.Hour)
		reserve := decide(order, domain.ReserveStock{OrderID: order, Lines: []domain.Line{{black, 1}}, PlacedAt: at, Now: at})
		fence := decide(order, domain.FenceOrder{OrderID: order, Reason: "order cancelled"})
		release := call{"cancel-" + order, domain.ReleaseStock{OrderID: order, Reason: "order cancelled"}}
		switch i % 4 {
		case 0: // refused: more than there is
			handle(t, h, decide(order, domain.ReserveStock{OrderID: order, Lines: []domain.Line{{white, 99}}, PlacedAt: at, Now: at}))
		case 1: // reserved, then cancelled
			handle(t, h, reserve)
			handle(t, h, fence)
			handle(t, h, release)
		case 2: // cancelled before it arrived
			handle(t, h, fence)
			handle(t, h, release)
			handle(t, h, reserve)
		case 3: // reserved and shipped
			handle(t, h, reserve)
			handle(t, h, call{"ship-" + order, domain.SellStock{OrderID: order, ShipmentID: "f/" + order, Lines: []domain.Line{{black, 1}}}})
		}
		p, _, _, err := h.Load(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, p.HoldCount())
	}
	// Sold holds of the last SoldHorizon (one order in four, an hour
	// apart), plus at most a day's until the next sweep.
	bound := int((domain.SoldHorizon+24*time.Hour)/time.Hour)/4 + 1
	p, _, _, err := h.Load(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if most > bound {
		t.Fatalf("up to %d holds kept for %d orders, want at most %d", most, orders, bound)
	}
	if k, _ := p.SKU(black); k.Available != 5+orders-orders/4 || k.Reserved != 0 || k.Sold != orders/4 {
		t.Fatalf("black: %+v", k)
	}
	// A restart loads the same: the pruning is a fold of the events.
	again, _, _, err := es.NewHandler(domain.Products, store, es.Options{}).Load(ctx, pid)
	if err != nil || again.HoldCount() != p.HoldCount() {
		t.Fatalf("after a restart %d holds (%v), before %d", again.HoldCount(), err, p.HoldCount())
	}
}
