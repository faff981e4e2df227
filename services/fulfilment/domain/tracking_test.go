package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/es/estest"
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
	inUse := func(f, s string, same bool) *domain.TrackingInUseError {
		return &domain.TrackingInUseError{Carrier: "dhl", TrackingNumber: "1234567890", FulfilmentID: f, ShipmentID: s, SameFulfilment: same}
	}
	estest.Run(t, domain.Trackings, "dhl_1234567890", []estest.Case[domain.ClaimTracking]{
		{Name: "first claim", When: claim("f1", "s1", ""), Then: []proto.Message{claimed("f1", "s1")}},
		{Name: "same claim again", Given: []proto.Message{claimed("f1", "s1")}, When: claim("f1", "s1", "")},
		{Name: "another fulfilment", Given: []proto.Message{claimed("f1", "s1")}, When: claim("f2", "s1", ""), Err: inUse("f1", "s1", false)},
		{Name: "another fulfilment cannot replace", Given: []proto.Message{claimed("f1", "s1")}, When: claim("f2", "s1", "s1"), Err: inUse("f1", "s1", false)},
		{Name: "another shipment of the same fulfilment", Given: []proto.Message{claimed("f1", "s1")}, When: claim("f1", "s2", ""), Err: inUse("f1", "s1", true)},
		{Name: "a stale claim of the same fulfilment is replaced", Given: []proto.Message{claimed("f1", "s1")}, When: claim("f1", "s2", "s1"), Then: []proto.Message{claimed("f1", "s2")}},
		{Name: "replacing another claim than the one held", Given: []proto.Message{claimed("f1", "s2")}, When: claim("f1", "s3", "s1"), Err: inUse("f1", "s2", true)},
		{Name: "incomplete", When: claim("", "s1", ""), Err: es.ErrBadCommand},
	})
}
