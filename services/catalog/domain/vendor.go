package domain

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
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
	// HandlingTime is how long the vendor takes to ship an order part
	// after the order is confirmed; 0: the platform's default (the
	// fulfilment service's setting).
	HandlingTime time.Duration
}

// Bounds of a vendor's handling time, which is a whole number of seconds.
const (
	MinHandlingTime = time.Hour
	MaxHandlingTime = 30 * 24 * time.Hour
)

// VendorCommand is a command to a vendor.
type VendorCommand interface{ command[Vendor] }

// RegisterVendor registers a new vendor.
type RegisterVendor struct {
	VendorID    string
	DisplayName string
	CountryCode string
	// HandlingTime: 0 for the platform's default.
	HandlingTime time.Duration
	Now          time.Time
}

// SetHandlingTime sets the vendor's handling time (0: back to the
// platform's default). Setting the one it has decides nothing.
type SetHandlingTime struct {
	HandlingTime time.Duration
	Now          time.Time
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
	checkHandlingTime(&v, c.HandlingTime)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []proto.Message{&catalogv1.VendorRegistered{
		VendorId: c.VendorID, DisplayName: c.DisplayName, CountryCode: c.CountryCode,
		RegisteredTime: timestamppb.New(c.Now), HandlingTime: durationOrNil(c.HandlingTime),
	}}, nil
}

func (c SetHandlingTime) decide(s Vendor) ([]proto.Message, error) {
	var v fault.Violations
	checkHandlingTime(&v, c.HandlingTime)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c.HandlingTime == s.HandlingTime {
		return nil, nil
	}
	return []proto.Message{&catalogv1.VendorHandlingTimeSet{VendorId: s.ID, HandlingTime: durationOrNil(c.HandlingTime), SetTime: timestamppb.New(c.Now)}}, nil
}

// checkHandlingTime adds the violation of a handling time d, if any (0 is
// the platform's default).
func checkHandlingTime(v *fault.Violations, d time.Duration) {
	if d != 0 && (d < MinHandlingTime || d > MaxHandlingTime || d%time.Second != 0) {
		v.Add("handling_time", "must be whole seconds from %s to %s, or unset for the platform's default; got %s", MinHandlingTime, MaxHandlingTime, d)
	}
}

// durationOrNil is d as a proto duration, nil for 0.
func durationOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func evolveVendor(s Vendor, e proto.Message) Vendor {
	switch e := e.(type) {
	case *catalogv1.VendorRegistered:
		s.Registered = true
		s.DisplayName, s.CountryCode = e.GetDisplayName(), e.GetCountryCode()
		s.RegisteredAt = e.GetRegisteredTime().AsTime()
		s.HandlingTime = e.GetHandlingTime().AsDuration()
	case *catalogv1.VendorHandlingTimeSet:
		s.HandlingTime = e.GetHandlingTime().AsDuration()
	}
	return s
}

// countryCode reports whether c has the shape of an ISO 3166-1 alpha-2 code.
func countryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}
