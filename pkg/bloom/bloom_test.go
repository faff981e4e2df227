package bloom

import (
	"fmt"
	"testing"
)

// Every key added is found, across the filter's levels; keys never added
// are mostly not, and the filter stays a few bytes per key.
func TestNoFalseNegatives(t *testing.T) {
	for _, n := range []int{1, first, 100_000} {
		p := New()
		for i := range n {
			p.Add(fmt.Sprint("order-", i))
		}
		for i := range n {
			if !p.MayHave(fmt.Sprint("order-", i)) {
				t.Fatalf("%d keys: order-%d added and not found", n, i)
			}
		}
		fp := 0
		const absent = 100_000
		for i := range absent {
			if p.MayHave(fmt.Sprint("claim-", i)) {
				fp++
			}
		}
		if rate := float64(fp) / absent; rate > 0.02 {
			t.Errorf("%d keys: false positive rate %.4f", n, rate)
		}
		if n == 100_000 {
			if per := float64(p.Bytes()) / float64(n); per > 6 {
				t.Errorf("%.1f bytes per key", per)
			}
			t.Logf("%d keys: %d levels, %d bytes (%.1f a key), %d false positives in %d", n, len(p.levels), p.Bytes(), float64(p.Bytes())/float64(n), fp, absent)
		}
	}
	if New().MayHave("x") {
		t.Error("an empty filter has a key")
	}
}
