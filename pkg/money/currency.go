package money

import (
	"maps"
	"slices"
)

// exponents maps the supported ISO 4217 codes to their minor-unit exponent:
// the number of decimal places between major and minor units (2 for EUR:
// 100 cents to the euro; 0 for JPY; 3 for KWD). Values are ISO 4217's, even
// where everyday practice differs (HUF and TWD are 2 in the standard).
//
// Adding a currency is a data change, not a code change; removing one would
// make stored amounts unreadable, so don't.
var exponents = map[string]int{
	// Major currencies.
	"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2,
	"CNY": 2, "HKD": 2, "SGD": 2,
	// Europe outside the euro.
	"SEK": 2, "NOK": 2, "DKK": 2, "ISK": 0, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2,
	"BGN": 2, "TRY": 2, "UAH": 2,
	// Asia-Pacific.
	"INR": 2, "KRW": 0, "TWD": 2, "THB": 2, "IDR": 2, "MYR": 2, "PHP": 2, "VND": 0,
	// Americas.
	"BRL": 2, "MXN": 2, "CLP": 0, "COP": 2, "ARS": 2, "PEN": 2,
	// Middle East and Africa.
	"ILS": 2, "AED": 2, "SAR": 2, "QAR": 2, "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3,
	"ZAR": 2, "EGP": 2, "NGN": 2, "KES": 2, "MAD": 2,
}

// Exponent returns the number of minor-unit decimal places of a supported
// currency (2 for "EUR", 0 for "JPY"), or ErrInvalidCurrency /
// ErrUnknownCurrency.
func Exponent(currency string) (int, error) {
	if err := ValidateCurrency(currency); err != nil {
		return 0, err
	}
	return exponents[currency], nil
}

// Currencies returns the supported currency codes, sorted.
func Currencies() []string { return slices.Sorted(maps.Keys(exponents)) }
