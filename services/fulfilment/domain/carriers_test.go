package domain_test

import (
	"testing"

	"github.com/custody/custody/services/fulfilment/domain"
)

func TestCheckTracking(t *testing.T) {
	tests := []struct {
		carrier, number string
		want            string // normalised; "" when refused
		field           string
	}{
		{"ups", "1Z999AA10123456784", "1Z999AA10123456784", ""},
		{"ups", "1z 999 aa1 0123 4567 84", "1Z999AA10123456784", ""},
		{"ups", "1Z999AA1012345678", "", "tracking_number"},  // 15 after 1Z
		{"ups", "2Z999AA10123456784", "", "tracking_number"}, // not 1Z
		{"ups", "1Z999AA1012345678!", "", "tracking_number"}, // punctuation
		{"dhl", "1234567890", "1234567890", ""},
		{"dhl", "123456789", "", "tracking_number"},
		{"dhl", "12345678901", "", "tracking_number"},
		{"dhl", "12345678AB", "", "tracking_number"},
		{"fedex", "123456789012", "123456789012", ""},
		{"fedex", "123456789012345", "123456789012345", ""},
		{"fedex", "1234567890123", "", "tracking_number"},
		{"usps", "94001000000000000000", "94001000000000000000", ""},
		{"usps", "9400 1000 0000 0000 0000 00", "9400100000000000000000", ""},
		{"usps", "9400100000000000000", "", "tracking_number"},
		{"usps", "94001000000000000000000", "", "tracking_number"},
		{"dpd", "01234567890123", "01234567890123", ""},
		{"dpd", "0123456789012", "", "tracking_number"},
		{"royal_mail", "AB123456789GB", "AB123456789GB", ""},
		{"royal_mail", "ab123456789gb", "AB123456789GB", ""},
		{"royal_mail", "AB12345678GB", "", "tracking_number"},
		{"royal_mail", "AB123456789US", "", "tracking_number"},
		{"dhl", "", "", "tracking_number"},
		{"hermes", "1234567890", "", "carrier"},
		{"DHL", "1234567890", "", "carrier"},
		{"", "1234567890", "", "carrier"},
	}
	for _, tt := range tests {
		t.Run(tt.carrier+"/"+tt.number, func(t *testing.T) {
			var v domain.Violations
			got := domain.CheckTracking(&v, "carrier", tt.carrier, "tracking_number", tt.number)
			if tt.field == "" {
				if len(v) > 0 || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, v, tt.want)
				}
				return
			}
			if len(v) != 1 || v[0].Field != tt.field {
				t.Fatalf("violations %v, want one on %s", v, tt.field)
			}
		})
	}
}

func TestFulfilmentIDIsDeterministic(t *testing.T) {
	a, b := domain.FulfilmentID("o1", "v1"), domain.FulfilmentID("o1", "v1")
	if a != b || len(a) != 25 || a[0] != 'f' {
		t.Fatalf("ids %q %q", a, b)
	}
	if domain.FulfilmentID("o1", "v2") == a || domain.FulfilmentID("o2", "v1") == a {
		t.Fatal("different parts share an id")
	}
}
