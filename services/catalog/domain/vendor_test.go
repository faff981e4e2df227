package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func TestVendor(t *testing.T) {
	registered := &catalogv1.VendorRegistered{VendorId: "v1", DisplayName: "Acme", CountryCode: "DE", RegisteredTime: timestamppb.New(t0)}
	runScenarios(t, domain.Vendors, "v1", []scenario[domain.VendorCommand]{
		{name: "register", when: domain.RegisterVendor{VendorID: "v1", DisplayName: "Acme", CountryCode: "DE", Now: t0},
			then: []proto.Message{registered}},
		{name: "register twice", given: []proto.Message{registered},
			when: domain.RegisterVendor{VendorID: "v1", DisplayName: "Other", CountryCode: "FR", Now: t1},
			err:  &domain.ExistsError{Resource: "vendor", ID: "v1"}},
		{name: "bad fields", when: domain.RegisterVendor{VendorID: "v1", CountryCode: "germany", Now: t0},
			err: invalid("display_name", "country_code")},
		{name: "id does not match the aggregate", when: domain.RegisterVendor{VendorID: "v2", DisplayName: "Acme", CountryCode: "DE"},
			err: invalid("vendor_id")},
	})
	s := domain.Vendors.Evolve(domain.Vendors.Initial("v1"), registered)
	if !s.Registered || s.DisplayName != "Acme" || s.CountryCode != "DE" || !s.RegisteredAt.Equal(t0) {
		t.Fatalf("state %+v", s)
	}
}
