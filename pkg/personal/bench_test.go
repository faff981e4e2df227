package personal_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/personal"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
)

// placeDecider is an order aggregate reduced to its first event: a
// command places the order, with its address.
var placeDecider = es.Decider[bool, *orderv1.OrderPlaced]{
	Aggregate: "order",
	Initial:   func(string) bool { return false },
	Decide: func(placed bool, cmd *orderv1.OrderPlaced) ([]proto.Message, error) {
		if placed {
			return nil, nil
		}
		return []proto.Message{cmd}, nil
	},
	Evolve: func(bool, proto.Message) bool { return true },
}

// BenchmarkWritePath: OrderPlaced commands through the command handler
// into the JetStream event store (every write fsync'd), 64 at a time, with
// the personal fields stored as they are and sealed — for a new buyer each
// order (a data key made and stored per order: the flash sale's case) and
// for returning buyers (the key in the cache). The same run, so the ratios
// are what to read (docs/benchmarks.md). b.N counts orders.
func BenchmarkWritePath(b *testing.B) {
	for _, tc := range []struct {
		name   string
		sealed bool
		buyers int // 0: a new buyer per order
	}{
		{"plain", false, 0},
		{"sealed/new_buyer_each_order", true, 0},
		{"sealed/100_returning_buyers", true, 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b)
			nc := e.js.Conn()
			store, err := jetstream.Open(context.Background(), nc, jetstream.Config{Service: "order"})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			opts := es.Options{}
			if tc.sealed {
				opts.Personal = personal.NewCodec(e.keys(b, masterKey(b, "m1")))
			}
			h := es.NewHandler(placeDecider, store, opts)
			var next atomic.Int64
			b.SetParallelism(32) // 64 writers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					buyer := "b" + strconv.FormatInt(i, 10)
					if tc.buyers > 0 {
						buyer = "b" + strconv.FormatInt(i%int64(tc.buyers), 10)
					}
					cmd := placed(buyer)
					cmd.OrderId = "o" + strconv.FormatInt(i, 10)
					if _, err := h.Handle(context.Background(), es.Command[*orderv1.OrderPlaced]{
						AggregateID: cmd.OrderId, ID: "place-" + cmd.OrderId, Body: cmd}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// BenchmarkCodec: the codec alone on an order's address (four personal
// values) with the buyer's key in the cache: sealing new values, sealing
// an event that copies the order's tokens (OrderConfirmed,
// FulfilmentRequested), and revealing. allocs/op is the figure that does
// not move with the machine's noise.
func BenchmarkCodec(b *testing.B) {
	e := newEnv(b)
	c := personal.NewCodec(e.keys(b, masterKey(b, "m1")))
	ctx := context.Background()
	clear := placed("b1")
	sealed, err := c.Seal(ctx, clear)
	if err != nil {
		b.Fatal(err)
	}
	copied := &orderv1.OrderConfirmed{OrderId: "o-b1", BuyerId: "b1", ShippingAddress: sealed.(*orderv1.OrderPlaced).GetShippingAddress()}
	for _, tc := range []struct {
		name string
		run  func() (proto.Message, error)
	}{
		{"seal/new_values", func() (proto.Message, error) { return c.Seal(ctx, clear) }},
		{"seal/copied_tokens", func() (proto.Message, error) { return c.Seal(ctx, copied) }},
		{"reveal", func() (proto.Message, error) { return c.Reveal(ctx, sealed) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
