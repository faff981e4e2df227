package money_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/custody/custody/pkg/money"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func eur(minor int64) money.Money { return money.MustNew("EUR", minor) }

func TestNew(t *testing.T) {
	tests := []struct {
		code    string
		wantErr error
	}{
		{"EUR", nil},
		{"USD", nil},
		{"JPY", nil},
		{"KWD", nil},
		{"", money.ErrInvalidCurrency},
		{"eur", money.ErrInvalidCurrency},
		{"EURO", money.ErrInvalidCurrency},
		{"EU", money.ErrInvalidCurrency},
		{"E1R", money.ErrInvalidCurrency},
		{"ÉUR", money.ErrInvalidCurrency},
		{"XYZ", money.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			m, err := money.New(tt.code, 42)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New(%q) error = %v, want %v", tt.code, err, tt.wantErr)
			}
			if err == nil && (m.Currency != tt.code || m.Minor != 42) {
				t.Fatalf("New(%q) = %+v", tt.code, m)
			}
		})
	}
}

func TestExponent(t *testing.T) {
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "KWD": 3} {
		if got, err := money.Exponent(code); err != nil || got != want {
			t.Errorf("Exponent(%q) = %d, %v; want %d", code, got, err, want)
		}
	}
	for _, code := range money.Currencies() {
		if _, err := money.New(code, 0); err != nil {
			t.Errorf("listed currency %q rejected: %v", code, err)
		}
	}
	if !slices.IsSorted(money.Currencies()) {
		t.Error("Currencies() not sorted")
	}
}

func TestAddSub(t *testing.T) {
	tests := []struct {
		name   string
		a, b   money.Money
		add    int64
		sub    int64
		addErr error
		subErr error
	}{
		{name: "simple", a: eur(1000), b: eur(234), add: 1234, sub: 766},
		{name: "negative", a: eur(-5), b: eur(7), add: 2, sub: -12},
		{name: "max plus zero", a: eur(math.MaxInt64), b: eur(0), add: math.MaxInt64, sub: math.MaxInt64},
		{name: "max plus one", a: eur(math.MaxInt64), b: eur(1), addErr: money.ErrOverflow, sub: math.MaxInt64 - 1},
		{name: "min minus one", a: eur(math.MinInt64), b: eur(-1), add: 0, addErr: money.ErrOverflow, sub: math.MinInt64 + 1},
		{name: "min minus plus one", a: eur(math.MinInt64), b: eur(1), add: math.MinInt64 + 1, subErr: money.ErrOverflow},
		{name: "zero minus min", a: eur(0), b: eur(math.MinInt64), add: math.MinInt64, subErr: money.ErrOverflow},
		{name: "minus one minus min", a: eur(-1), b: eur(math.MinInt64), addErr: money.ErrOverflow, sub: math.MaxInt64},
		{name: "mismatch", a: eur(1), b: money.MustNew("USD", 1), addErr: money.ErrCurrencyMismatch, subErr: money.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Add(tt.b)
			if !errors.Is(err, tt.addErr) || (err == nil && got != eur(tt.add)) {
				t.Errorf("%v.Add(%v) = %v, %v; want %d, %v", tt.a, tt.b, got, err, tt.add, tt.addErr)
			}
			got, err = tt.a.Sub(tt.b)
			if !errors.Is(err, tt.subErr) || (err == nil && got != eur(tt.sub)) {
				t.Errorf("%v.Sub(%v) = %v, %v; want %d, %v", tt.a, tt.b, got, err, tt.sub, tt.subErr)
			}
		})
	}
}

// The checked helpers of bare minor units refuse exactly what does not
// fit in an int64, at both ends.
func TestCheckedMinor(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	tests := []struct {
		name string
		op   func(a, b int64) (int64, bool)
		a, b int64
		want int64
		ok   bool
	}{
		{"add", money.AddMinor, 1000, 234, 1234, true},
		{"add to max", money.AddMinor, max - 1, 1, max, true},
		{"add past max", money.AddMinor, max, 1, 0, false},
		{"add two halves past max", money.AddMinor, max/2 + 1, max/2 + 1, 0, false},
		{"add down to min", money.AddMinor, min + 1, -1, min, true},
		{"add past min", money.AddMinor, min, -1, 0, false},
		{"add opposite signs", money.AddMinor, max, min, -1, true},
		{"sub", money.SubMinor, 1000, 234, 766, true},
		{"sub down to min", money.SubMinor, -1, max, min, true},
		{"sub past min", money.SubMinor, -2, max, 0, false},
		{"sub min from zero", money.SubMinor, 0, min, 0, false},
		{"sub min from minus one", money.SubMinor, -1, min, max, true},
		{"sub past max", money.SubMinor, max, -1, 0, false},
		{"mul", money.MulMinor, 1999, 3, 5997, true},
		{"mul by zero", money.MulMinor, min, 0, 0, true},
		{"mul negative", money.MulMinor, -250, 4, -1000, true},
		{"mul to min", money.MulMinor, -(1 << 62), 2, min, true},
		{"mul past max", money.MulMinor, 1 << 62, 2, 0, false},
		{"mul min by minus one", money.MulMinor, min, -1, 0, false},
		{"mul the bounds", money.MulMinor, money.MaxUnitPrice * money.MaxLineQuantity, money.MaxOrderLines, money.MaxAmount, true},
		{"mul past max, barely", money.MulMinor, max/7 + 1, 7, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.op(tt.a, tt.b)
			if got != tt.want || ok != tt.ok {
				t.Errorf("%s(%d, %d) = %d, %v; want %d, %v", tt.name, tt.a, tt.b, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The bounds keep one order's arithmetic far from the int64 limit, as
// bounds.go works out: the largest order total, and that plus as much
// again refunded, fit.
func TestBounds(t *testing.T) {
	if money.MaxAmount != 10_000_000_000_000_000 {
		t.Errorf("MaxAmount = %d, want 10^16", int64(money.MaxAmount))
	}
	total, ok := money.MulMinor(money.MaxUnitPrice, money.MaxLineQuantity)
	if ok {
		total, ok = money.MulMinor(total, money.MaxOrderLines)
	}
	if ok {
		_, ok = money.AddMinor(total, total)
	}
	if !ok || total != money.MaxAmount {
		t.Errorf("the largest order total %d (ok %v) is not MaxAmount or does not fit twice", total, ok)
	}
}

func TestMulNeg(t *testing.T) {
	tests := []struct {
		m       int64
		qty     int64
		want    int64
		wantErr error
	}{
		{1999, 3, 5997, nil},
		{1999, 0, 0, nil},
		{-250, 4, -1000, nil},
		{250, -4, -1000, nil},
		{-250, -4, 1000, nil},
		{math.MaxInt64, 1, math.MaxInt64, nil},
		{math.MaxInt64, -1, -math.MaxInt64, nil},
		{math.MinInt64, 1, math.MinInt64, nil},
		{math.MinInt64, -1, 0, money.ErrOverflow},
		{1 << 62, 2, 0, money.ErrOverflow},
		{-(1 << 62), 2, math.MinInt64, nil},
		{1 << 32, 1 << 32, 0, money.ErrOverflow},
		{math.MaxInt64/7 + 1, 7, 0, money.ErrOverflow},
	}
	for _, tt := range tests {
		got, err := eur(tt.m).Mul(tt.qty)
		if !errors.Is(err, tt.wantErr) || (err == nil && got != eur(tt.want)) {
			t.Errorf("%d × %d = %v, %v; want %d, %v", tt.m, tt.qty, got, err, tt.want, tt.wantErr)
		}
	}

	if got, err := eur(5).Neg(); err != nil || got != eur(-5) {
		t.Errorf("Neg(5) = %v, %v", got, err)
	}
	if _, err := eur(math.MinInt64).Neg(); !errors.Is(err, money.ErrOverflow) {
		t.Errorf("Neg(MinInt64) error = %v, want ErrOverflow", err)
	}
}

func TestSum(t *testing.T) {
	if got, err := money.Sum("EUR", eur(1), eur(2), eur(3)); err != nil || got != eur(6) {
		t.Errorf("Sum = %v, %v", got, err)
	}
	if got, err := money.Sum("EUR"); err != nil || got != eur(0) {
		t.Errorf("empty Sum = %v, %v", got, err)
	}
	if _, err := money.Sum("EUR", eur(1), money.MustNew("GBP", 1)); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("mixed Sum error = %v", err)
	}
}

func TestBasisPoints(t *testing.T) {
	tests := []struct {
		name    string
		amount  int64
		bps     int64
		want    int64
		wantErr error
	}{
		{"ten percent", 10000, 1000, 1000, nil},
		{"fee floored", 1001, 1000, 100, nil},        // 100.1 -> 100
		{"fee not rounded up", 1009, 1000, 100, nil}, // 100.9 -> 100
		{"reversal mirrors charge", -1009, 1000, -100, nil},
		{"one cent at 2.9%", 1, 290, 0, nil},
		{"zero rate", 12345, 0, 0, nil},
		{"full rate", 12345, 10000, 12345, nil},
		{"max amount full rate", math.MaxInt64, 10000, math.MaxInt64, nil},
		{"max amount half", math.MaxInt64, 5000, math.MaxInt64 / 2, nil},
		{"min amount full rate", math.MinInt64, 10000, math.MinInt64, nil},
		{"min amount half", math.MinInt64, 5000, math.MinInt64 / 2, nil},
		{"negative rate", 100, -1, 0, money.ErrInvalidRate},
		{"over 100%", 100, 10001, 0, money.ErrInvalidRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := money.BasisPoints(eur(tt.amount), tt.bps)
			if !errors.Is(err, tt.wantErr) || (err == nil && got != eur(tt.want)) {
				t.Fatalf("BasisPoints(%d, %d) = %v, %v; want %d, %v", tt.amount, tt.bps, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	// A 100.01 EUR capture: 12.5% platform fee, 7.5% creator commission.
	shares, vendor, err := money.Split(eur(10001), 1250, 750)
	if err != nil {
		t.Fatal(err)
	}
	if want := []money.Money{eur(1250), eur(750)}; !slices.Equal(shares, want) {
		t.Errorf("shares = %v, want %v", shares, want)
	}
	if vendor != eur(8001) {
		t.Errorf("vendor net = %v, want 80.01 EUR", vendor)
	}

	if _, _, err := money.Split(eur(100), 6000, 4001); !errors.Is(err, money.ErrInvalidRate) {
		t.Errorf("rates over 100%%: error = %v", err)
	}
	if _, _, err := money.Split(eur(100), -1); !errors.Is(err, money.ErrInvalidRate) {
		t.Errorf("negative rate: error = %v", err)
	}
	if shares, rest, err := money.Split(eur(100)); err != nil || len(shares) != 0 || rest != eur(100) {
		t.Errorf("no rates: %v, %v, %v", shares, rest, err)
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name    string
		total   int64
		weights []int64
		want    []int64
		wantErr error
	}{
		{"even", 100, []int64{1, 1, 1, 1}, []int64{25, 25, 25, 25}, nil},
		{"thirds tie to lowest index", 100, []int64{1, 1, 1}, []int64{34, 33, 33}, nil},
		{"two left over", 200, []int64{1, 1, 1}, []int64{67, 67, 66}, nil},
		{"largest remainder wins", 10, []int64{3, 3, 4}, []int64{3, 3, 4}, nil},
		{"largest remainder not first", 11, []int64{30, 25, 45}, []int64{3, 3, 5}, nil}, // 3.3, 2.75, 4.95
		{"negative mirrors", -100, []int64{1, 1, 1}, []int64{-34, -33, -33}, nil},
		{"zero weight gets nothing", 1, []int64{0, 1, 0, 1}, []int64{0, 1, 0, 0}, nil},
		{"zero total", 0, []int64{5, 7}, []int64{0, 0}, nil},
		{"one part", 12345, []int64{7}, []int64{12345}, nil},
		{"huge weights", 3, []int64{math.MaxInt64, math.MaxInt64}, []int64{2, 1}, nil},
		{"max total", math.MaxInt64, []int64{1, 1}, []int64{math.MaxInt64/2 + 1, math.MaxInt64 / 2}, nil},
		{"min total", math.MinInt64, []int64{1, 1, 1}, []int64{-3074457345618258603, -3074457345618258603, -3074457345618258602}, nil},
		{"no weights", 100, nil, nil, money.ErrInvalidWeights},
		{"all zero", 100, []int64{0, 0}, nil, money.ErrInvalidWeights},
		{"negative weight", 100, []int64{2, -1}, nil, money.ErrInvalidWeights},
		{"weights overflow uint64", 100, []int64{math.MaxInt64, math.MaxInt64, 2}, nil, money.ErrInvalidWeights},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := money.Allocate(eur(tt.total), tt.weights)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := make([]money.Money, len(tt.want))
			for i, w := range tt.want {
				want[i] = eur(w)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Allocate(%d, %v) = %v, want %v", tt.total, tt.weights, got, want)
			}
		})
	}
}

// TestSplitsAlwaysAddUp is the property the ledger relies on: however an
// amount is divided, the parts add up to exactly the amount.
func TestSplitsAlwaysAddUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240601, 1))
	amount := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Int64N(100) - 50 // small, where rounding dominates
		case 1:
			return rng.Int64N(10_000_000) - 5_000_000
		default:
			return int64(rng.Uint64()) // anything, including near the limits
		}
	}
	for i := range 20_000 {
		total := eur(amount())

		weights := make([]int64, 1+rng.IntN(8))
		for j := range weights {
			if rng.IntN(2) == 0 {
				weights[j] = rng.Int64N(10)
			} else {
				weights[j] = rng.Int64N(math.MaxInt64 / int64(len(weights)))
			}
		}
		weights[rng.IntN(len(weights))]++ // at least one positive weight
		parts, err := money.Allocate(total, weights)
		if err != nil {
			t.Fatalf("#%d Allocate(%v, %v): %v", i, total, weights, err)
		}
		checkParts(t, total, parts, weights)

		bps := make([]int64, rng.IntN(4))
		left := int64(money.BasisPointsPerUnit)
		for j := range bps {
			bps[j] = rng.Int64N(left + 1)
			left -= bps[j]
		}
		shares, rest, err := money.Split(total, bps...)
		if err != nil {
			t.Fatalf("#%d Split(%v, %v): %v", i, total, bps, err)
		}
		if rest.Minor != 0 && (rest.Minor < 0) != (total.Minor < 0) {
			t.Fatalf("#%d Split(%v, %v): vendor rest %v has the wrong sign", i, total, bps, rest)
		}
		checkParts(t, total, append(shares, rest), nil)
	}
}

// checkParts asserts that parts add up to total without overflow, and when
// weights are given, that each part is within one minor unit of its exact
// proportional share.
func checkParts(t *testing.T, total money.Money, parts []money.Money, weights []int64) {
	t.Helper()
	sum, err := money.Sum(total.Currency, parts...)
	if err != nil {
		// Parts all have total's sign, so a partial sum can't overflow
		// unless the parts overshoot.
		t.Fatalf("parts %v of %v: %v", parts, total, err)
	}
	if sum != total {
		t.Fatalf("parts %v add up to %v, want %v", parts, sum, total)
	}
	if weights == nil {
		return
	}
	var wsum float64
	for _, w := range weights {
		wsum += float64(w)
	}
	for i, p := range parts {
		if weights[i] == 0 && p.Minor != 0 {
			t.Fatalf("zero weight %d got %v", i, p)
		}
		exact := float64(total.Minor) * float64(weights[i]) / wsum
		// float64 is only a sanity check here: allow its rounding error too.
		if d := math.Abs(float64(p.Minor) - exact); d > 1+math.Abs(exact)*1e-12 {
			t.Fatalf("part %d = %v, exact share %.3f (weights %v, total %v)", i, p, exact, weights, total)
		}
	}
}

func TestProto(t *testing.T) {
	m, err := money.FromProto(&typev1.Money{CurrencyCode: "JPY", AmountMinor: 500})
	if err != nil || m != money.MustNew("JPY", 500) {
		t.Fatalf("FromProto = %v, %v", m, err)
	}
	if p := m.ToProto(); p.GetCurrencyCode() != "JPY" || p.GetAmountMinor() != 500 {
		t.Fatalf("ToProto = %v", p)
	}
	if _, err := money.FromProto(nil); !errors.Is(err, money.ErrInvalidCurrency) {
		t.Errorf("FromProto(nil) error = %v", err)
	}
	if _, err := money.FromProto(&typev1.Money{AmountMinor: 1}); !errors.Is(err, money.ErrInvalidCurrency) {
		t.Errorf("FromProto(no currency) error = %v", err)
	}
	if _, err := money.FromProto(&typev1.Money{CurrencyCode: "ABC"}); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("FromProto(ABC) error = %v", err)
	}
}

func TestStringParse(t *testing.T) {
	tests := []struct {
		currency string
		minor    int64
		str      string
	}{
		{"EUR", 1234, "12.34 EUR"},
		{"EUR", -5, "-0.05 EUR"},
		{"EUR", 0, "0.00 EUR"},
		{"USD", 100, "1.00 USD"},
		{"JPY", 500, "500 JPY"},
		{"KWD", 1, "0.001 KWD"},
		{"EUR", math.MinInt64, "-92233720368547758.08 EUR"},
		{"EUR", math.MaxInt64, "92233720368547758.07 EUR"},
	}
	for _, tt := range tests {
		m := money.MustNew(tt.currency, tt.minor)
		if got := m.String(); got != tt.str {
			t.Errorf("String(%d %s) = %q, want %q", tt.minor, tt.currency, got, tt.str)
		}
		amount := tt.str[:len(tt.str)-4]
		if got, err := money.Parse(tt.currency, amount); err != nil || got != m {
			t.Errorf("Parse(%q, %q) = %v, %v; want %v", tt.currency, amount, got, err, m)
		}
	}
	if got := (money.Money{Currency: "XYZ", Minor: 7}).String(); got != "7 minor XYZ" {
		t.Errorf("unknown currency String = %q", got)
	}

	parseTests := []struct {
		currency, amount string
		want             int64
		wantErr          error
	}{
		{"EUR", "12.3", 1230, nil},
		{"EUR", "12", 1200, nil},
		{"EUR", "-0.5", -50, nil},
		{"EUR", "007.10", 710, nil},
		{"EUR", "1.234", 0, money.ErrInvalidAmount},
		{"JPY", "1.0", 0, money.ErrInvalidAmount},
		{"EUR", "", 0, money.ErrInvalidAmount},
		{"EUR", "-", 0, money.ErrInvalidAmount},
		{"EUR", ".5", 0, money.ErrInvalidAmount},
		{"EUR", "5.", 0, money.ErrInvalidAmount},
		{"EUR", "+5", 0, money.ErrInvalidAmount},
		{"EUR", "--5", 0, money.ErrInvalidAmount},
		{"EUR", "5.-1", 0, money.ErrInvalidAmount},
		{"EUR", "1,5", 0, money.ErrInvalidAmount},
		{"EUR", " 1", 0, money.ErrInvalidAmount},
		{"EUR", "1e3", 0, money.ErrInvalidAmount},
		{"EUR", "92233720368547758.08", 0, money.ErrOverflow},
		{"EUR", "99999999999999999999", 0, money.ErrOverflow},
		{"eur", "1", 0, money.ErrInvalidCurrency},
	}
	for _, tt := range parseTests {
		got, err := money.Parse(tt.currency, tt.amount)
		if !errors.Is(err, tt.wantErr) || (err == nil && got != money.MustNew(tt.currency, tt.want)) {
			t.Errorf("Parse(%q, %q) = %v, %v; want %d, %v", tt.currency, tt.amount, got, err, tt.want, tt.wantErr)
		}
	}
}
