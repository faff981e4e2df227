package domain

import (
	"regexp"
	"slices"
	"strings"
)

// Carrier is a carrier Custody knows, with the format of its tracking
// numbers.
type Carrier struct {
	// Code is how requests and roles name it: "dhl", carrier:dhl.
	Code string
	// Format describes the tracking number for people.
	Format  string
	pattern *regexp.Regexp
}

// Carriers are the known carriers. Tracking numbers are checked after
// NormaliseTrackingNumber (spaces and dashes dropped, letters upper-cased).
var Carriers = map[string]Carrier{
	"ups":        {Code: "ups", Format: `"1Z" and 16 letters or digits`, pattern: regexp.MustCompile(`^1Z[0-9A-Z]{16}$`)},
	"dhl":        {Code: "dhl", Format: "10 digits", pattern: regexp.MustCompile(`^[0-9]{10}$`)},
	"fedex":      {Code: "fedex", Format: "12 or 15 digits", pattern: regexp.MustCompile(`^([0-9]{12}|[0-9]{15})$`)},
	"usps":       {Code: "usps", Format: "20 to 22 digits", pattern: regexp.MustCompile(`^[0-9]{20,22}$`)},
	"dpd":        {Code: "dpd", Format: "14 digits", pattern: regexp.MustCompile(`^[0-9]{14}$`)},
	"royal_mail": {Code: "royal_mail", Format: `2 letters, 9 digits and "GB"`, pattern: regexp.MustCompile(`^[A-Z]{2}[0-9]{9}GB$`)},
}

// CarrierCodes lists the known carrier codes, sorted.
func CarrierCodes() []string {
	codes := make([]string, 0, len(Carriers))
	for c := range Carriers {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

// NormaliseTrackingNumber drops spaces and dashes and upper-cases letters,
// so "1z 999 aa1 01 2345 6784" and "1Z999AA10123456784" are one number.
func NormaliseTrackingNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// CheckTracking checks a carrier code and a tracking number (fields named
// carrierField and numberField) and returns the normalised number.
func CheckTracking(v *Violations, carrierField, carrier, numberField, number string) string {
	c, ok := Carriers[carrier]
	if !ok {
		if carrier == "" {
			v.Add(carrierField, "required: one of %s", strings.Join(CarrierCodes(), ", "))
		} else {
			v.Add(carrierField, "unknown carrier %q: want one of %s", carrier, strings.Join(CarrierCodes(), ", "))
		}
		return ""
	}
	n := NormaliseTrackingNumber(number)
	switch {
	case n == "":
		v.Add(numberField, "required")
	case !c.pattern.MatchString(n):
		v.Add(numberField, "not a %s tracking number: want %s", c.Code, c.Format)
	}
	return n
}

// TrackingID is the id of the tracking aggregate of a carrier's tracking
// number: "<carrier>_<number>" (stream "tracking-<carrier>_<number>").
func TrackingID(carrier, number string) string { return carrier + "_" + number }
