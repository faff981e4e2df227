package app

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The read model is fed recorded events directly: no event store is
// involved (its read-model store is real, in a temporary directory).

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type feeder struct {
	t   *testing.T
	m   *ReadModel
	pos uint64
	rev map[string]uint64
}

func (f *feeder) apply(stream string, msg proto.Message) {
	f.t.Helper()
	ed, err := es.Encode(msg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.pos++
	rev, ok := f.rev[stream]
	if ok {
		rev++
	}
	f.rev[stream] = rev
	f.m.Apply(eventstore.RecordedEvent{EventData: ed, Stream: stream, Revision: rev, Position: f.pos})
}

func requested(id, vendor string, at time.Duration) *fulfilmentv1.FulfilmentRequested {
	return &fulfilmentv1.FulfilmentRequested{FulfilmentId: id, OrderId: "o-" + id, VendorId: vendor, BuyerId: "b",
		Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", SkuId: "s", Quantity: 1}}, ShipByTime: timestamppb.New(t0.Add(72 * time.Hour)),
		RequestTime: timestamppb.New(t0.Add(at))}
}

func TestWatcherThatFallsBehindIsCutOff(t *testing.T) {
	t.Parallel()
	var changes []View
	m, _ := attached(t, t.TempDir(), func(v View) { changes = append(changes, v) })
	f := &feeder{t: t, m: m, rev: map[string]uint64{}}
	f.apply("fulfilment-f1", requested("f1", "v1", 0))
	slow, at, snap, _ := f.m.subscribe("v1", 2, true)
	fast, _, _, _ := f.m.subscribe("v1", 10, false)
	if at != 1 || len(snap) != 1 || f.m.Watchers() != 2 {
		t.Fatalf("subscribe: at %d, %d in snapshot, %d watchers", at, len(snap), f.m.Watchers())
	}
	f.apply("tracking-dhl_1234567890", &fulfilmentv1.TrackingNumberClaimed{FulfilmentId: "f1"}) // not a fulfilment change
	f.apply("fulfilment-f2", requested("f2", "v2", time.Second))                                // another vendor's
	for i := range 3 {
		f.apply("fulfilment-f1", &fulfilmentv1.ShipByDeadlineMissed{FulfilmentId: "f1", Action: "grace",
			GraceUntilTime: timestamppb.New(t0.Add(time.Duration(96+i) * time.Hour))})
	}
	if !slow.behind.Load() {
		t.Fatal("the slow watcher was not cut off")
	}
	var got []uint64
	for c := range slow.ch { // closed: two buffered changes, then the end
		got = append(got, c.Position)
	}
	if fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("slow watcher got %v", got)
	}
	if len(fast.ch) != 3 || fast.behind.Load() || f.m.Watchers() != 1 {
		t.Fatalf("fast watcher: %d buffered, behind %v, %d watchers", len(fast.ch), fast.behind.Load(), f.m.Watchers())
	}
	c := <-fast.ch
	if c.Position != 4 || c.EventType != "custody.fulfilment.v1.ShipByDeadlineMissed" || c.View.Revision != 1 || !c.View.Fulfilment.ShipByMissed {
		t.Fatalf("change %+v", c)
	}
	f.m.unsubscribe("v1", fast)
	if f.m.Watchers() != 0 || f.m.pos.Last() != 6 || len(changes) != 5 {
		t.Fatalf("%d watchers, position %d, %d changes", f.m.Watchers(), f.m.pos.Last(), len(changes))
	}
	if v, ok := f.m.Get("f1"); !ok || !v.Fulfilment.ShipBy.Equal(t0.Add(98*time.Hour)) || !v.Fulfilment.DeadlinePending() {
		t.Fatalf("f1 %+v", v)
	}
	if open := f.m.Open(); len(open) != 2 {
		t.Fatalf("open %d", len(open))
	}
	if _, err := f.m.List(ListQuery{VendorID: "v1", Status: domain.StatusRequested}); err != nil {
		t.Fatal(err)
	}
}
