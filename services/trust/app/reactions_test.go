package app_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/trust/app"
	"github.com/custody/custody/services/trust/domain"
)

// These tests drive the vendor-trust reactions directly (no bus), on real
// JetStream stores, to show that they count every fact once under
// redelivery and restart.

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	order, fulfilment, trust *esjs.Store
	clock                    *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e := &env{clock: clock.NewFake(t0)}
	for _, s := range []struct {
		name string
		to   **esjs.Store
	}{{"order", &e.order}, {"fulfilment", &e.fulfilment}, {"trust", &e.trust}} {
		if *s.to, err = esjs.Open(t.Context(), nc, esjs.Config{Service: s.name, Now: e.clock.Now}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// service starts a fresh service (a fresh process, as far as caches go)
// without consumers: the tests call the handlers.
func (e *env) service(t *testing.T) *app.Service {
	t.Helper()
	svc := app.New(app.Config{}, app.Deps{
		Store: e.trust,
		OpenUpstream: func(_ context.Context, service string) (app.Store, error) {
			if service == "order" {
				return e.order, nil
			}
			return e.fulfilment, nil
		},
		Clock:  e.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return svc
}

func (e *env) emit(t *testing.T, store *esjs.Store, stream, id string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = id
	res, err := store.Append(t.Context(), stream, eventstore.Any, []eventstore.EventData{ed})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := store.ReadStream(t.Context(), stream, res.LastRevision, 1)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func eur(minor int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: minor} }

func TestReactionsCountEveryFactOnce(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	ts := timestamppb.New(t0)
	var fulfilment []eventstore.RecordedEvent
	e.emit(t, e.order, "order-o1", "e1", &orderv1.OrderConfirmed{OrderId: "o1", BuyerId: "b1", Total: eur(1000), ConfirmTime: ts,
		Lines: []*orderv1.OrderLine{{LineId: "1", SkuId: "s", VendorId: "v1", Quantity: 1, UnitPrice: eur(1000), LineTotal: eur(1000)}}})
	for i, m := range []proto.Message{
		&fulfilmentv1.FulfilmentRequested{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipByTime: timestamppb.New(t0.Add(48 * time.Hour))},
		&fulfilmentv1.FulfilmentShipped{FulfilmentId: "f1", OrderId: "o1", VendorId: "v1", ShipmentId: "s1", TrackingNumber: "T1", FullyShipped: true,
			ShipTime: ts, ExpectedDeliveryTime: timestamppb.New(t0.Add(72 * time.Hour)),
			Lines: []*fulfilmentv1.ShippedLine{{LineId: "1", Quantity: 1}}},
		&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", ShipmentId: "s1", TrackingNumber: "T1", CarrierEventId: "c1",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_PICKED_UP, OccurTime: ts},
		&fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f1", ShipmentId: "s1", TrackingNumber: "T1", CarrierEventId: "c2",
			Status: fulfilmentv1.TrackingStatus_TRACKING_STATUS_IN_TRANSIT, OccurTime: ts},
	} {
		fulfilment = append(fulfilment, e.emit(t, e.fulfilment, "fulfilment-f1", string(rune('a'+i))+"-f", m))
	}
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

	// A claim: opened, then refunded by the vendor's silence.
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
