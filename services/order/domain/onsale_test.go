package domain_test

import (
	"testing"

	"github.com/custody/custody/pkg/es/estest"
	"github.com/custody/custody/services/order/domain"
)

func TestCheckOnSale(t *testing.T) {
	archived := func(id string) (domain.SKU, bool) {
		s, ok := find(id)
		s.Archived = id == "p2-b"
		return s, ok
	}
	for _, tc := range []struct {
		name  string
		lines []domain.LineRequest
		err   error
	}{
		{"every product on sale", []domain.LineRequest{{"p1-a", 1}, {"p3-c", 2}}, nil},
		{"an unknown SKU is PriceLines' to name", []domain.LineRequest{{"p9-x", 1}}, nil},
		{"a line of an archived product", []domain.LineRequest{{"p1-a", 1}, {"p2-b", 1}}, estest.Precondition(domain.ReasonProductArchived)},
	} {
		t.Run(tc.name, func(t *testing.T) { estest.WantErr(t, domain.CheckOnSale(tc.lines, archived), tc.err) })
	}
}

func TestPays(t *testing.T) {
	lines, v := domain.PriceLines([]domain.LineRequest{{"p1-a", 2}, {"p2-b", 3}}, find)
	if len(v) > 0 {
		t.Fatal(v)
	}
	for _, tc := range []struct {
		amount int64
		want   bool
	}{{3500, true}, {3499, false}, {3501, false}} {
		if got := domain.Pays(lines, eur(tc.amount)); got != tc.want {
			t.Errorf("Pays(%d) = %v, want %v", tc.amount, got, tc.want)
		}
	}
	if domain.Pays(nil, eur(0)) {
		t.Error("no lines pay")
	}
}
