package domain_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/custody/custody/pkg/es"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

func TestDecideTracking(t *testing.T) {
	claim := func(f, s, replaces string) domain.ClaimTracking {
		return domain.ClaimTracking{Carrier: "dhl", TrackingNumber: "1234567890", FulfilmentID: f, ShipmentID: s, VendorID: "v1", Replaces: replaces}
	}
	claimed := func(f, s string) *fulfilmentv1.TrackingNumberClaimed {
		return &fulfilmentv1.TrackingNumberClaimed{Carrier: "dhl", TrackingNumber: "1234567890", FulfilmentId: f, ShipmentId: s, VendorId: "v1"}
	}
	tests := []struct {
		name  string
		given []proto.Message
		when  domain.ClaimTracking
		then  []proto.Message
		inUse bool
		same  bool
		bad   bool
	}{
		{name: "first claim", when: claim("f1", "s1", ""), then: []proto.Message{claimed("f1", "s1")}},
		{name: "same claim again", given: []proto.Message{claimed("f1", "s1")}, when: claim("f1", "s1", "")},
		{name: "another fulfilment", given: []proto.Message{claimed("f1", "s1")}, when: claim("f2", "s1", ""), inUse: true},
		{name: "another fulfilment cannot replace", given: []proto.Message{claimed("f1", "s1")}, when: claim("f2", "s1", "s1"), inUse: true},
		{name: "another shipment of the same fulfilment", given: []proto.Message{claimed("f1", "s1")}, when: claim("f1", "s2", ""), inUse: true, same: true},
		{name: "a stale claim of the same fulfilment is replaced", given: []proto.Message{claimed("f1", "s1")}, when: claim("f1", "s2", "s1"), then: []proto.Message{claimed("f1", "s2")}},
		{name: "replacing another claim than the one held", given: []proto.Message{claimed("f1", "s2")}, when: claim("f1", "s3", "s1"), inUse: true, same: true},
		{name: "incomplete", when: claim("", "s1", ""), bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.Trackings.GivenWhenThen("dhl_1234567890", tt.given, tt.when)
			var iu *domain.TrackingInUseError
			switch {
			case tt.inUse:
				if !errors.As(err, &iu) || iu.SameFulfilment != tt.same {
					t.Fatalf("err = %v, want in use (same fulfilment %v)", err, tt.same)
				}
			case tt.bad:
				if !errors.Is(err, es.ErrBadCommand) {
					t.Fatalf("err = %v", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.then, got, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
