package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/domain"
)

func TestARecordIsHandedBackOnce(t *testing.T) {
	ev := &auditv1.ParkedEventRedriven{Consumer: "c", DeadLetterSequence: 7, EventId: "e1", Reason: "fixed"}
	got, err := domain.Redrives.GivenWhenThen("c-7", nil, domain.RedriveParked{Event: ev})
	if err != nil || len(got) != 1 || !proto.Equal(got[0], ev) {
		t.Fatalf("first redrive: %v, %v", got, err)
	}
	again := &auditv1.ParkedEventRedriven{Consumer: "c", DeadLetterSequence: 7, EventId: "e1", Reason: "again"}
	got, err = domain.Redrives.GivenWhenThen("c-7", []proto.Message{ev}, domain.RedriveParked{Event: again})
	if err != nil || len(got) != 0 {
		t.Fatalf("second redrive: %v, %v; want nothing", got, err)
	}
	if id := domain.RedriveID("catalog-on-order", 12); id != "catalog-on-order-12" {
		t.Fatalf("RedriveID = %q", id)
	}
}
