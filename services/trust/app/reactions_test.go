package app_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// These tests drive the vendor-trust handlers directly (not through the
// platform's reactions), on real JetStream stores of a platform under test,
// to show that they count every fact once under redelivery and restart.

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	p                        *platformtest.Platform
	order, fulfilment, trust projection.Store
	clock                    *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: clock.NewFake(t0)}
	e.p = platformtest.Start(t, platformtest.Options{Clock: e.clock})
	e.order, e.fulfilment, e.trust = e.p.Store(t, "order"), e.p.Store(t, "fulfilment"), e.p.Store(t, "trust")
	return e
}

// service builds a fresh service (a fresh process, as far as caches go)
// and feeds its read models everything stored so far, as the platform's
// runtime does before a process serves. No reaction runs: the tests call
// the handlers.
func (e *env) service(t *testing.T) *app.Service {
	t.Helper()
	svc := app.New(app.Config{}, e.p.AppDeps(t, "trust"))
	e.catchUp(t, svc)
	return svc
}

// catchUp gives svc's read models a new store and folds what the event
// stores hold now into them.
func (e *env) catchUp(t *testing.T, svc *app.Service) {
	t.Helper()
	attachStores(t, svc)
	for _, f := range []struct {
		store projection.Store
		apply func(eventstore.RecordedEvent)
	}{
		{e.order, func(r eventstore.RecordedEvent) { svc.Record().ApplyFrom(app.OrderService, r) }},
		{e.fulfilment, func(r eventstore.RecordedEvent) { svc.Record().ApplyFrom(app.FulfilmentService, r) }},
		{e.trust, svc.ReadModel().Apply},
	} {
		for from := uint64(1); ; {
			page, err := f.store.ReadAll(t.Context(), from, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				f.apply(r)
			}
			from = page[len(page)-1].Position + 1
		}
	}
}

func (e *env) emit(t *testing.T, service, stream string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	return e.p.Emit(t, service, stream, m)[0]
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

// shippedOrder stores order o1 of vendor v1, confirmed, and its
// fulfilment's events up to two carrier scans, and returns those.
func (e *env) shippedOrder(t *testing.T) (fulfilment []eventstore.RecordedEvent) {
	t.Helper()
	ts := timestamppb.New(t0)
	e.emit(t, "order", "order-o1", &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1", Total: eur(1000), ConfirmTime: ts,
		Lines: []*orderv1.OrderLine{{LineId: "1", SkuId: "s", VendorId: "v1", Quantity: 1, UnitPrice: eur(1000), LineTotal: eur(1000)}}})
	for _, m := range []proto.Message{
		&fulfilmentv1.FulfilmentRequested{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipByTime: timestamppb.New(t0.Add(48 * time.Hour))},
		&fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1", TrackingNumber: "T1", FullyShipped: true,
			ShipTime: ts, ExpectedDeliveryTime: timestamppb.New(t0.Add(72 * time.Hour)),
			Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 1}}},
		&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", ShipmentId: "s1", TrackingNumber: "T1", CarrierEventId: "c1",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, OccurTime: ts},
		&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", ShipmentId: "s1", TrackingNumber: "T1", CarrierEventId: "c2",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, OccurTime: ts},
	} {
		fulfilment = append(fulfilment, e.emit(t, "fulfilment", "fulfilment-f1", m))
	}
	return fulfilment
}

func TestReactionsCountEveryFactOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fulfilment := e.shippedOrder(t)
	svc := e.service(t)
	// Every event handled, then all of them again (redelivery), then again
	// by a fresh process (a restart).
	for _, s := range []*app.Service{svc, svc, e.service(t)} {
		for _, rec := range fulfilment {
			if err := s.HandleFulfilmentEvent(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	v, err := svc.GetVendorTrust(t.Context(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Counts{Fulfilments: 1, Shipments: 1, ShippedOnTime: 1, TrackedShipments: 1}
	if v.Counts != want {
		t.Fatalf("counts %+v, want %+v", v.Counts, want)
	}

	// A claim on a parcel never delivered: refunded at once.
	e.clock.Advance(73 * time.Hour)
	c, err := svc.OpenClaim(t.Context(), app.OpenClaim{RequestID: "r1", OrderID: "o1", Reason: trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED,
		Lines: []domain.LineRequest{{LineID: "1", Quantity: 1}}, Actor: "buyer:b1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Claim.State != domain.StateRefunded {
		t.Fatalf("claim %+v", c.Claim)
	}
	recs, err := e.trust.ReadStream(t.Context(), "claims-o1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, rec := range recs {
			if err := svc.HandleClaimEvent(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	v, _ = svc.GetVendorTrust(t.Context(), "v1")
	want.Claims, want.ClaimsLost = 1, 1
	if v.Counts != want {
		t.Fatalf("counts %+v, want %+v", v.Counts, want)
	}
	recount, err := app.RecountTrust(t.Context(), e.fulfilment, e.trust)
	if err != nil {
		t.Fatal(err)
	}
	if recount["v1"].Counts != want || recount["v1"].Score != v.Score {
		t.Fatalf("recount %+v, live %+v", recount["v1"], v)
	}
}

// notifyingSnapshots closes written once a snapshot has been stored, and
// counts the snapshots read back.
type notifyingSnapshots struct {
	eventstore.Snapshots
	once    sync.Once
	written chan struct{}
	read    atomic.Int64
}

func (n *notifyingSnapshots) Put(ctx context.Context, stream string, data []byte) error {
	err := n.Snapshots.Put(ctx, stream, data)
	if err == nil {
		n.once.Do(func() { close(n.written) })
	}
	return err
}

func (n *notifyingSnapshots) Get(ctx context.Context, stream string) ([]byte, error) {
	data, err := n.Snapshots.Get(ctx, stream)
	if data != nil {
		n.read.Add(1)
	}
	return data, err
}

// With a snapshot after every fact, a fresh process loads the vendor's
// trust from its snapshot: facts delivered again, before and after the
// one it covers, are recognised as counted and count nothing.
func TestFactsRedeliveredAfterASnapshotCountOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fulfilment := e.shippedOrder(t)
	snaps := &notifyingSnapshots{Snapshots: memory.NewSnapshots(), written: make(chan struct{})}
	process := func() *app.Service {
		deps := e.p.AppDeps(t, "trust")
		deps.Handlers = es.Options{Snapshots: snaps, SnapshotEvery: 1}
		svc := app.New(app.Config{}, deps)
		e.catchUp(t, svc)
		return svc
	}
	for _, rec := range fulfilment {
		if err := process().HandleFulfilmentEvent(t.Context(), rec); err != nil { // a process per fact: each loads the vendor
			t.Fatal(err)
		}
	}
	select {
	case <-snaps.written:
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	svc := process()
	for _, rec := range fulfilment {
		if err := svc.HandleFulfilmentEvent(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if snaps.read.Load() == 0 {
		t.Fatal("no process loaded the vendor from a snapshot")
	}
	v, err := svc.GetVendorTrust(t.Context(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	recount, err := app.RecountTrust(t.Context(), e.fulfilment, e.trust)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Counts{Fulfilments: 1, Shipments: 1, ShippedOnTime: 1, TrackedShipments: 1}
	if v.Counts != want || recount["v1"].Counts != want {
		t.Fatalf("counts %+v, recounted %+v; want %+v", v.Counts, recount["v1"].Counts, want)
	}
}
