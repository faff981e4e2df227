// Package money holds Custody's value type for amounts of money: an ISO 4217
// currency code and a signed integer amount in the currency's minor units
// (cents, pence, yen). There are no floats anywhere: arithmetic is exact and
// reports overflow instead of wrapping, rates are integer basis points, and
// every way of dividing an amount ([Split], [Allocate]) hands out exactly the
// amount that was divided, not a minor unit more or less.
//
// The wire form is custody.type.v1.Money; convert with [FromProto] and
// [Money.ToProto] at the API edge.
package money

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Errors returned by this package, wrapped with context; test with errors.Is.
var (
	// ErrInvalidCurrency: the code is not three upper-case ASCII letters, or
	// no currency was given at all.
	ErrInvalidCurrency = errors.New("money: invalid currency code")
	// ErrUnknownCurrency: the code is well formed but not one Custody supports.
	ErrUnknownCurrency = errors.New("money: unsupported currency")
	// ErrCurrencyMismatch: an operation combined amounts in different currencies.
	ErrCurrencyMismatch = errors.New("money: currency mismatch")
	// ErrOverflow: the result does not fit in an int64 number of minor units.
	ErrOverflow = errors.New("money: amount overflows int64 minor units")
	// ErrInvalidRate: a basis-point rate outside 0..10000, or rates that add up
	// to more than 100%.
	ErrInvalidRate = errors.New("money: invalid basis-point rate")
	// ErrInvalidWeights: allocation weights that are empty, negative, all zero
	// or too large to add up.
	ErrInvalidWeights = errors.New("money: invalid allocation weights")
	// ErrInvalidAmount: a decimal amount that cannot be parsed, or has more
	// fractional digits than the currency has minor units.
	ErrInvalidAmount = errors.New("money: invalid amount")
)

// BasisPointsPerUnit is 100% expressed in basis points (1 bps = 0.01%).
const BasisPointsPerUnit = 10_000

// Money is an amount in integer minor units of one currency. The zero value
// has no currency and is not valid; build values with [New] or [FromProto].
// Money is comparable: == is exact equality of currency and amount.
type Money struct {
	// Currency is the upper-case ISO 4217 code, for example "EUR".
	Currency string
	// Minor is the amount in minor units of Currency: 1234 is 12.34 EUR,
	// 500 is 500 JPY. Negative amounts are refunds, reversals, debits.
	Minor int64
}

// New returns minor units of currency after checking that currency is a
// well-formed ISO 4217 code that Custody supports.
func New(currency string, minor int64) (Money, error) {
	if err := ValidateCurrency(currency); err != nil {
		return Money{}, err
	}
	return Money{Currency: currency, Minor: minor}, nil
}

// MustNew is [New] for constants in tests and tables; it panics on error.
func MustNew(currency string, minor int64) Money {
	m, err := New(currency, minor)
	if err != nil {
		panic(err)
	}
	return m
}

// Zero returns a zero amount of currency.
func Zero(currency string) (Money, error) { return New(currency, 0) }

// ValidateCurrency reports whether code is three upper-case ASCII letters
// (ErrInvalidCurrency otherwise) naming a supported currency
// (ErrUnknownCurrency otherwise).
func ValidateCurrency(code string) error {
	if !wellFormed(code) {
		return fmt.Errorf("%w: %q (want three upper-case letters, e.g. \"EUR\")", ErrInvalidCurrency, code)
	}
	if _, ok := exponents[code]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	return nil
}

func wellFormed(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := range 3 {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}

// FromProto converts the wire form, validating the currency. A nil message
// is reported as ErrInvalidCurrency: an amount without a currency means
// nothing.
func FromProto(p *typev1.Money) (Money, error) {
	if p == nil {
		return Money{}, fmt.Errorf("%w: money not set", ErrInvalidCurrency)
	}
	return New(p.GetCurrencyCode(), p.GetAmountMinor())
}

// ToProto returns the wire form of m.
func (m Money) ToProto() *typev1.Money {
	return &typev1.Money{CurrencyCode: m.Currency, AmountMinor: m.Minor}
}

// IsZero reports whether the amount is zero (in any currency).
func (m Money) IsZero() bool { return m.Minor == 0 }

// IsNegative reports whether the amount is below zero.
func (m Money) IsNegative() bool { return m.Minor < 0 }

// Add returns m + o. Both must be in the same currency.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, mismatch("add", m, o)
	}
	s, ok := AddMinor(m.Minor, o.Minor)
	if !ok {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrOverflow, m, o)
	}
	return Money{Currency: m.Currency, Minor: s}, nil
}

// Sub returns m - o. Both must be in the same currency.
func (m Money) Sub(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, mismatch("subtract", m, o)
	}
	d, ok := SubMinor(m.Minor, o.Minor)
	if !ok {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrOverflow, m, o)
	}
	return Money{Currency: m.Currency, Minor: d}, nil
}

// Neg returns -m; only the most negative int64 amount has no negation.
func (m Money) Neg() (Money, error) {
	if m.Minor == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: -(%s)", ErrOverflow, m)
	}
	return Money{Currency: m.Currency, Minor: -m.Minor}, nil
}

// Mul returns m × qty, for example a unit price times a line quantity.
func (m Money) Mul(qty int64) (Money, error) {
	p, ok := MulMinor(m.Minor, qty)
	if !ok {
		return Money{}, fmt.Errorf("%w: %s × %d", ErrOverflow, m, qty)
	}
	return Money{Currency: m.Currency, Minor: p}, nil
}

// AddMinor returns a + b and true, or 0 and false when the sum does not fit
// in an int64: the checked addition of bare minor-unit amounts (ledger
// balances, sums per currency) that [Money.Add] is made of. Callers refuse
// what overflows with an error wrapping [ErrOverflow]; nothing wraps.
func AddMinor(a, b int64) (int64, bool) {
	s := a + b
	// Overflow iff both operands have the same sign and the sum's differs.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// SubMinor returns a - b and true, or 0 and false when the difference does
// not fit in an int64.
func SubMinor(a, b int64) (int64, bool) {
	d := a - b
	// Overflow iff the operands have different signs and the result's sign
	// differs from a's.
	if (a >= 0) != (b >= 0) && (d >= 0) != (a >= 0) {
		return 0, false
	}
	return d, true
}

// MulMinor returns a × b and true, or 0 and false when the product does
// not fit in an int64.
func MulMinor(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(magnitude(a), magnitude(b))
	p, ok := signed(hi, lo, (a < 0) != (b < 0))
	if !ok {
		return 0, false
	}
	return p, true
}

// Sum adds amounts, all of which must be in currency. Sum of nothing is zero.
func Sum(currency string, amounts ...Money) (Money, error) {
	total := Money{Currency: currency}
	for _, a := range amounts {
		var err error
		if total, err = total.Add(a); err != nil {
			return Money{}, err
		}
	}
	return total, nil
}

// BasisPoints returns bps/10000 of m: a fee, commission or reserve on m.
//
// Rounding rule: fees and commissions are floored; the remainder stays with
// the vendor so splits always add up. Precisely, the exact share is truncated
// toward zero, so a share is never larger in magnitude than the exact rate
// gives, and the share of a reversal is exactly the reversal of the share
// (BasisPoints(-m) == -BasisPoints(m)): refunding a capture gives back
// precisely the fee that was charged on it. bps must be in 0..10000
// (ErrInvalidRate otherwise), so the result never overflows.
func BasisPoints(m Money, bps int64) (Money, error) {
	if bps < 0 || bps > BasisPointsPerUnit {
		return Money{}, fmt.Errorf("%w: %d bps (want 0..%d)", ErrInvalidRate, bps, BasisPointsPerUnit)
	}
	hi, lo := bits.Mul64(magnitude(m.Minor), uint64(bps))
	q, _ := bits.Div64(hi, lo, BasisPointsPerUnit) // hi < 10000 because bps <= 10000
	v, _ := signed(0, q, m.Minor < 0)              // |q| <= |m.Minor|, always fits
	return Money{Currency: m.Currency, Minor: v}, nil
}

// Split takes a share of total for each rate in bps, as [BasisPoints] does,
// and returns the shares in order plus what is left over. The left-over part
// is the vendor's: it absorbs every rounding remainder, so
// sum(shares) + rest == total exactly, and rest has the sign of total (or is
// zero). The rates must each be 0..10000 and add up to at most 10000.
//
//	shares, vendorNet, err := money.Split(captured, platformFeeBps, commissionBps)
func Split(total Money, bps ...int64) (shares []Money, rest Money, err error) {
	var sum int64
	for _, b := range bps {
		if b < 0 || b > BasisPointsPerUnit {
			return nil, Money{}, fmt.Errorf("%w: %d bps (want 0..%d)", ErrInvalidRate, b, BasisPointsPerUnit)
		}
		if sum += b; sum > BasisPointsPerUnit {
			return nil, Money{}, fmt.Errorf("%w: rates add up to more than %d bps", ErrInvalidRate, BasisPointsPerUnit)
		}
	}
	shares = make([]Money, len(bps))
	rest = total
	for i, b := range bps {
		shares[i], _ = BasisPoints(total, b) // b validated above
		// Cannot overflow: the shares have total's sign and together are no
		// larger in magnitude than total.
		rest.Minor -= shares[i].Minor
	}
	return shares, rest, nil
}

// Allocate divides total into len(weights) parts proportional to weights,
// using the largest-remainder method so that the parts add up to exactly
// total. Each part first gets its exact share truncated toward zero; the few
// minor units left over go one each to the parts with the largest truncated
// remainders, ties going to the lower index. The result is deterministic, a
// zero weight always gets zero, and negative totals allocate as the mirror
// image of positive ones.
//
// Weights must be non-negative with a positive sum that fits in a uint64
// (ErrInvalidWeights otherwise).
func Allocate(total Money, weights []int64) ([]Money, error) {
	if len(weights) == 0 {
		return nil, fmt.Errorf("%w: no weights", ErrInvalidWeights)
	}
	var sum uint64
	for i, w := range weights {
		if w < 0 {
			return nil, fmt.Errorf("%w: weight %d is negative (%d)", ErrInvalidWeights, i, w)
		}
		var carry uint64
		if sum, carry = bits.Add64(sum, uint64(w), 0); carry != 0 {
			return nil, fmt.Errorf("%w: weights add up to more than 2^64-1", ErrInvalidWeights)
		}
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: weights add up to zero", ErrInvalidWeights)
	}

	mag := magnitude(total.Minor)
	quot := make([]uint64, len(weights))
	rem := make([]uint64, len(weights))
	left := mag
	for i, w := range weights {
		hi, lo := bits.Mul64(mag, uint64(w))
		quot[i], rem[i] = bits.Div64(hi, lo, sum) // hi < sum because w <= sum
		left -= quot[i]
	}
	// left < number of parts with a non-zero remainder (sum(rem) = left×sum and
	// every rem < sum), so only those parts are topped up, at most once each.
	if left > 0 {
		order := make([]int, len(weights))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rem[b], rem[a]) })
		for _, i := range order[:left] {
			quot[i]++
		}
	}

	parts := make([]Money, len(weights))
	for i, q := range quot {
		v, _ := signed(0, q, total.Minor < 0) // q <= mag, always fits
		parts[i] = Money{Currency: total.Currency, Minor: v}
	}
	return parts, nil
}

// Parse reads a decimal amount in major units ("12.34", "-0.5", "500") as
// Money in currency. More fractional digits than the currency has minor units
// are an error rather than silently rounded.
func Parse(currency, amount string) (Money, error) {
	if err := ValidateCurrency(currency); err != nil {
		return Money{}, err
	}
	exp := exponents[currency]
	s := amount
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > exp || strings.ContainsAny(whole+frac, "+-") {
		return Money{}, fmt.Errorf("%w: %q for %s (%d decimal places at most)", ErrInvalidAmount, amount, currency, exp)
	}
	digits := whole + frac + strings.Repeat("0", exp-len(frac))
	u, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return Money{}, fmt.Errorf("%w: %q %s", ErrOverflow, amount, currency)
		}
		return Money{}, fmt.Errorf("%w: %q for %s", ErrInvalidAmount, amount, currency)
	}
	v, ok := signed(0, u, neg)
	if !ok {
		return Money{}, fmt.Errorf("%w: %q %s", ErrOverflow, amount, currency)
	}
	return Money{Currency: currency, Minor: v}, nil
}

// String formats m in major units with the currency's number of decimals,
// for logs and people: "12.34 EUR", "-0.05 USD", "500 JPY". Amounts in an
// unsupported currency are shown in minor units.
func (m Money) String() string {
	exp, ok := exponents[m.Currency]
	if !ok {
		return fmt.Sprintf("%d minor %s", m.Minor, m.Currency)
	}
	digits := strconv.FormatUint(magnitude(m.Minor), 10)
	if exp > 0 {
		if len(digits) <= exp {
			digits = strings.Repeat("0", exp-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if m.Minor < 0 {
		digits = "-" + digits
	}
	return digits + " " + m.Currency
}

func mismatch(op string, a, b Money) error {
	return fmt.Errorf("%w: cannot %s %s and %s", ErrCurrencyMismatch, op, a.Currency, b.Currency)
}

// magnitude returns |v| as a uint64; unlike -v it is right for math.MinInt64.
func magnitude(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}

// signed returns the int64 with magnitude hi:lo and the given sign, and
// whether it fits.
func signed(hi, lo uint64, negative bool) (int64, bool) {
	switch {
	case hi != 0:
		return 0, false
	case negative && lo <= 1<<63:
		return int64(-lo), true // -(1<<63) wraps to MinInt64, as wanted
	case !negative && lo <= math.MaxInt64:
		return int64(lo), true
	default:
		return 0, false
	}
}
