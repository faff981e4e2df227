package domain_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es/estest"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/domain"
)

func TestVendor(t *testing.T) {
	registered := &catalogv1.VendorRegistered{VendorId: "v1", DisplayName: "Acme", CountryCode: "DE", RegisteredTime: timestamppb.New(t0)}
	estest.Run(t, domain.Vendors, "v1", []estest.Case[domain.VendorCommand]{
		{Name: "register", When: domain.RegisterVendor{VendorID: "v1", DisplayName: "Acme", CountryCode: "DE", Now: t0},
			Then: []proto.Message{registered}},
		{Name: "register twice", Given: []proto.Message{registered},
			When: domain.RegisterVendor{VendorID: "v1", DisplayName: "Other", CountryCode: "FR", Now: t1},
			Err:  &domain.ExistsError{Resource: "vendor", ID: "v1"}},
		{Name: "bad fields", When: domain.RegisterVendor{VendorID: "v1", CountryCode: "germany", Now: t0},
			Err: estest.Invalid("display_name", "country_code")},
		{Name: "id does not match the aggregate", When: domain.RegisterVendor{VendorID: "v2", DisplayName: "Acme", CountryCode: "DE"},
			Err: estest.Invalid("vendor_id")},
	})
	s := domain.Vendors.Evolve(domain.Vendors.Initial("v1"), registered)
	if !s.Registered || s.DisplayName != "Acme" || s.CountryCode != "DE" || !s.RegisteredAt.Equal(t0) {
		t.Fatalf("state %+v", s)
	}
}
