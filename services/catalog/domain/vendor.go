package domain

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// Vendor is a seller.
type Vendor struct {
	ID           string
	Registered   bool
	DisplayName  string
	CountryCode  string
	RegisteredAt time.Time
}

// VendorCommand is a command to a vendor.
type VendorCommand interface{ command[Vendor] }

// RegisterVendor registers a new vendor.
type RegisterVendor struct {
	VendorID    string
	DisplayName string
	CountryCode string
	Now         time.Time
}

// Vendors is the vendor aggregate: registered once.
var Vendors = createdBy[Vendor, VendorCommand, RegisterVendor]("vendor", func(id string) Vendor { return Vendor{ID: id} }, evolveVendor, nil)

func (s Vendor) created() (string, bool) { return s.ID, s.Registered }

func (c RegisterVendor) decide(s Vendor) ([]proto.Message, error) {
	var v fault.Violations
	if c.VendorID != s.ID || !VendorIDPattern.MatchString(c.VendorID) {
		v.Add("vendor_id", "must be 1-64 letters, digits, '-' or '_'")
	}
	if c.DisplayName == "" {
		v.Add("display_name", "is required")
	}
	if !countryCode(c.CountryCode) {
		v.Add("country_code", "must be an ISO 3166-1 alpha-2 code such as \"DE\"")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []proto.Message{&catalogv1.VendorRegistered{
		VendorId: c.VendorID, DisplayName: c.DisplayName, CountryCode: c.CountryCode,
		RegisteredTime: timestamppb.New(c.Now),
	}}, nil
}

func evolveVendor(s Vendor, e proto.Message) Vendor {
	if e, ok := e.(*catalogv1.VendorRegistered); ok {
		s.Registered = true
		s.DisplayName, s.CountryCode = e.GetDisplayName(), e.GetCountryCode()
		s.RegisteredAt = e.GetRegisteredTime().AsTime()
	}
	return s
}

// countryCode reports whether c has the shape of an ISO 3166-1 alpha-2 code.
func countryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}
