package domain_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func TestReservation(t *testing.T) {
	l := []domain.Line{{SkuID: "pb-x", Quantity: 1}, {SkuID: "pa-y", Quantity: 2}}
	requested := &catalogv1.ReservationRequested{OrderId: "o1", Lines: lines("pb-x", 1, "pa-y", 2)}
	reserved := &catalogv1.StockReserved{OrderId: "o1", Lines: lines("pb-x", 1, "pa-y", 2), ReserveTime: timestamppb.New(t1)}
	failed := &catalogv1.StockReservationFailed{OrderId: "o1", SkuId: "pa-y", Requested: 2, Available: 1, Reason: "short", FailTime: timestamppb.New(t1)}
	cancelled := &catalogv1.ReservationCancelled{OrderId: "o1", Reason: "order cancelled", CancelTime: timestamppb.New(t1)}
	releasedR := &catalogv1.StockReleased{OrderId: "o1", Reason: "order cancelled", ReleaseTime: timestamppb.New(t1)}
	fail := domain.FailReservation{SkuID: "pa-y", Requested: 2, Available: 1, Reason: "short", Now: t1}
	cancel := domain.CancelReservation{Reason: "order cancelled", Now: t1}

	estest.Run(t, domain.Reservations, "o1", []estest.Case[domain.ReservationCommand]{
		{Name: "request", When: domain.RequestReservation{Lines: l}, Then: []proto.Message{requested}},
		{Name: "request again", Given: []proto.Message{requested}, When: domain.RequestReservation{Lines: l}},
		{Name: "request after cancel is a no-op", Given: []proto.Message{cancelled}, When: domain.RequestReservation{Lines: l}},
		{Name: "complete", Given: []proto.Message{requested}, When: domain.CompleteReservation{Now: t1}, Then: []proto.Message{reserved}},
		{Name: "complete twice", Given: []proto.Message{requested, reserved}, When: domain.CompleteReservation{Now: t2}},
		{Name: "complete after cancel", Given: []proto.Message{requested, cancelled}, When: domain.CompleteReservation{Now: t1}, Err: domain.ErrReservationCanceled},
		{Name: "complete after fail", Given: []proto.Message{requested, failed}, When: domain.CompleteReservation{Now: t1}, Err: domain.ErrReservationClosed},
		{Name: "complete unrequested", When: domain.CompleteReservation{Now: t1}, Err: domain.ErrReservationClosed},
		{Name: "fail", Given: []proto.Message{requested}, When: fail, Then: []proto.Message{failed}},
		{Name: "fail twice", Given: []proto.Message{requested, failed}, When: fail},
		{Name: "fail after cancel says nothing", Given: []proto.Message{requested, cancelled}, When: fail},
		{Name: "fail after reserve", Given: []proto.Message{requested, reserved}, When: fail, Err: domain.ErrReservationClosed},
		{Name: "cancel before the order was seen", When: cancel, Then: []proto.Message{cancelled}},
		{Name: "cancel while holding", Given: []proto.Message{requested}, When: cancel, Then: []proto.Message{cancelled}},
		{Name: "cancel when reserved releases", Given: []proto.Message{requested, reserved}, When: cancel, Then: []proto.Message{releasedR}},
		{Name: "cancel after failure", Given: []proto.Message{requested, failed}, When: cancel},
		{Name: "cancel twice", Given: []proto.Message{requested, reserved, releasedR}, When: cancel},
	})

	s := domain.Reservations.Fold("o1", nil)
	s = domain.Reservations.Evolve(s, &catalogv1.ReservationRequested{OrderId: "o1", Lines: lines("pb-x", 1, "pa-y", 2, "bad sku", 1, "pa-z", 1)})
	if s.Status != domain.ReservationRequested || !slices.Equal(s.Products(), []string{"pa", "pb"}) {
		t.Fatalf("state %+v products %v", s, s.Products())
	}
	for st, final := range map[domain.ReservationStatus]bool{domain.ReservationRequested: false, domain.ReservationReserved: false,
		domain.ReservationFailed: true, domain.ReservationCancelled: true, domain.ReservationReleased: true} {
		if st.Final() != final {
			t.Errorf("%v.Final() = %v", st, !final)
		}
	}
}
