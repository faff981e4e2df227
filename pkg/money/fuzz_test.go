package money_test

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/custody/custody/pkg/money"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzFromProto feeds arbitrary wire bytes through the API-edge conversion:
// it must never panic, must accept exactly the supported currencies, and must
// round-trip what it accepts.
func FuzzFromProto(f *testing.F) {
	for _, seed := range []*typev1.Money{
		{CurrencyCode: "EUR", AmountMinor: 1234},
		{CurrencyCode: "JPY", AmountMinor: -500},
		{CurrencyCode: "eur", AmountMinor: 1},
		{CurrencyCode: "XYZ"},
		{AmountMinor: math.MinInt64},
	} {
		b, err := proto.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p typev1.Money
		if proto.Unmarshal(b, &p) != nil {
			return
		}
		m, err := money.FromProto(&p)
		if err != nil {
			if !errors.Is(err, money.ErrInvalidCurrency) && !errors.Is(err, money.ErrUnknownCurrency) {
				t.Fatalf("FromProto(%v): unexpected error %v", &p, err)
			}
			if money.ValidateCurrency(p.GetCurrencyCode()) == nil {
				t.Fatalf("FromProto(%v) rejected a valid currency: %v", &p, err)
			}
			return
		}
		if !proto.Equal(m.ToProto(), &p) {
			t.Fatalf("round trip: %v -> %v -> %v", &p, m, m.ToProto())
		}
		_ = m.String()
	})
}

// FuzzAllocate checks that any valid allocation adds up exactly, and that
// invalid weights are rejected rather than mis-split.
func FuzzAllocate(f *testing.F) {
	f.Add(int64(100), int64(1), int64(1), int64(1))
	f.Add(int64(-1), int64(0), int64(7), int64(0))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(0))
	f.Add(int64(math.MaxInt64), int64(3), int64(-1), int64(2))
	f.Fuzz(func(t *testing.T, total, w0, w1, w2 int64) {
		weights := []int64{w0, w1, w2}
		parts, err := money.Allocate(eur(total), weights)
		if err != nil {
			if !errors.Is(err, money.ErrInvalidWeights) {
				t.Fatalf("Allocate(%d, %v): unexpected error %v", total, weights, err)
			}
			return
		}
		if len(parts) != len(weights) {
			t.Fatalf("Allocate(%d, %v) = %v: wrong length", total, weights, parts)
		}
		checkParts(t, eur(total), parts, weights)
	})
}

// FuzzCheckedMinor checks AddMinor, SubMinor and MulMinor against exact
// big-integer arithmetic: a result is given exactly when it fits in an
// int64, and refused otherwise.
func FuzzCheckedMinor(f *testing.F) {
	f.Add(int64(1), int64(2))
	f.Add(int64(math.MaxInt64), int64(1))
	f.Add(int64(math.MinInt64), int64(-1))
	f.Add(int64(-1), int64(math.MinInt64))
	f.Add(int64(1<<32), int64(1<<31))
	f.Fuzz(func(t *testing.T, a, b int64) {
		x, y := big.NewInt(a), big.NewInt(b)
		for _, op := range []struct {
			name  string
			fn    func(a, b int64) (int64, bool)
			exact *big.Int
		}{
			{"AddMinor", money.AddMinor, new(big.Int).Add(x, y)},
			{"SubMinor", money.SubMinor, new(big.Int).Sub(x, y)},
			{"MulMinor", money.MulMinor, new(big.Int).Mul(x, y)},
		} {
			got, ok := op.fn(a, b)
			fits := op.exact.IsInt64()
			if ok != fits || (ok && got != op.exact.Int64()) || (!ok && got != 0) {
				t.Fatalf("%s(%d, %d) = %d, %v; exact %v", op.name, a, b, got, ok, op.exact)
			}
		}
	})
}
