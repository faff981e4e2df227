package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/domain"
)

func TestABuyerIsErasedOnce(t *testing.T) {
	at := timestamppb.New(time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC))
	first := &auditv1.BuyerErased{BuyerId: "b1", Reason: "case 1", ErasedBy: "platform", KeyId: "buyer-b1", OrderIds: []string{"o1"}, EraseTime: at}
	second := &auditv1.BuyerErased{BuyerId: "b1", Reason: "case 2", ErasedBy: "platform", KeyId: "buyer-b1", EraseTime: at}
	tests := []struct {
		name  string
		given []proto.Message
		when  *auditv1.BuyerErased
		then  []proto.Message
		err   error
	}{
		{"never erased: recorded", nil, first, []proto.Message{first}, nil},
		{"erased before: refused", []proto.Message{first}, second, nil, &fault.PreconditionError{Reason: domain.ReasonAlreadyErased}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.Erasures.GivenWhenThen("b1", tt.given, domain.EraseBuyer{Event: tt.when})
			if tt.err != nil {
				if !fault.IsA(err, tt.err) || len(got) != 0 {
					t.Fatalf("got %v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.then) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.then)
			}
			for i := range got {
				if !proto.Equal(got[i], tt.then[i]) {
					t.Errorf("event %d: %v, want %v", i, got[i], tt.then[i])
				}
			}
		})
	}
}
