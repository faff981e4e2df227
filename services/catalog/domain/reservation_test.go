package domain_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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

	runScenarios(t, domain.Reservations, "o1", []scenario[domain.ReservationCommand]{
		{name: "request", when: domain.RequestReservation{Lines: l}, then: []proto.Message{requested}},
		{name: "request again", given: []proto.Message{requested}, when: domain.RequestReservation{Lines: l}},
		{name: "request after cancel is a no-op", given: []proto.Message{cancelled}, when: domain.RequestReservation{Lines: l}},
		{name: "complete", given: []proto.Message{requested}, when: domain.CompleteReservation{Now: t1}, then: []proto.Message{reserved}},
		{name: "complete twice", given: []proto.Message{requested, reserved}, when: domain.CompleteReservation{Now: t2}},
		{name: "complete after cancel", given: []proto.Message{requested, cancelled}, when: domain.CompleteReservation{Now: t1}, err: domain.ErrReservationCanceled},
		{name: "complete after fail", given: []proto.Message{requested, failed}, when: domain.CompleteReservation{Now: t1}, err: domain.ErrReservationClosed},
		{name: "complete unrequested", when: domain.CompleteReservation{Now: t1}, err: domain.ErrReservationClosed},
		{name: "fail", given: []proto.Message{requested}, when: fail, then: []proto.Message{failed}},
		{name: "fail twice", given: []proto.Message{requested, failed}, when: fail},
		{name: "fail after cancel says nothing", given: []proto.Message{requested, cancelled}, when: fail},
		{name: "fail after reserve", given: []proto.Message{requested, reserved}, when: fail, err: domain.ErrReservationClosed},
		{name: "cancel before the order was seen", when: cancel, then: []proto.Message{cancelled}},
		{name: "cancel while holding", given: []proto.Message{requested}, when: cancel, then: []proto.Message{cancelled}},
		{name: "cancel when reserved releases", given: []proto.Message{requested, reserved}, when: cancel, then: []proto.Message{releasedR}},
		{name: "cancel after failure", given: []proto.Message{requested, failed}, when: cancel},
		{name: "cancel twice", given: []proto.Message{requested, reserved, releasedR}, when: cancel},
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
