package eventstore_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
)

// The regexps SplitStream used before its byte loops: the definition of the
// stream-name language that the loops must keep accepting, exactly.
var (
	aggregatePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// checkSplitStream fails unless SplitStream and ValidID agree with the
// regexps on stream, and returns whether SplitStream accepted it.
func checkSplitStream(t *testing.T, stream string) bool {
	t.Helper()
	wantAgg, wantID, cut := strings.Cut(stream, "-")
	want := cut && aggregatePattern.MatchString(wantAgg) && idPattern.MatchString(wantID)
	agg, id, err := eventstore.SplitStream(stream)
	switch {
	case want && err != nil:
		t.Fatalf("SplitStream(%q) = %v; the regexps accept it", stream, err)
	case !want && err == nil:
		t.Fatalf("SplitStream(%q) = %q, %q; the regexps reject it", stream, agg, id)
	case want && (agg != wantAgg || id != wantID):
		t.Fatalf("SplitStream(%q) = %q, %q; want %q, %q", stream, agg, id, wantAgg, wantID)
	case err != nil && !errors.Is(err, eventstore.ErrInvalidAppend):
		t.Fatalf("SplitStream(%q) error %v is not ErrInvalidAppend", stream, err)
	}
	for _, s := range []string{stream, wantID} {
		if got := eventstore.ValidID(s); got != idPattern.MatchString(s) {
			t.Fatalf("ValidID(%q) = %v; the regexp says %v", s, got, !got)
		}
	}
	return err == nil
}

var splitStreamCases = map[string]bool{
	"order-0f8c2d4e-5b6a-4c3d-9e8f-7a6b5c4d3e2f": true,
	"a-b":                                true,
	"a_1-B_-":                            true,
	"order--":                            true, // the id may start with '-'
	"order-" + strings.Repeat("x", 128):  true,
	"order-" + strings.Repeat("x", 129):  false,
	"a" + strings.Repeat("b", 39) + "-x": true, // 40-byte aggregate
	"a" + strings.Repeat("b", 40) + "-x": false,
	"z09_-Z09_":                          true,
	"":                                   false,
	"-":                                  false,
	"order":                              false,
	"order-":                             false,
	"-id":                                false,
	"Order-1":                            false,
	"0rder-1":                            false,
	"_order-1":                           false,
	"or.der-1":                           false,
	"order-1.2":                          false,
	"order-1 ":                           false,
	"order-1\n":                          false,
	"order\n-1":                          false,
	"order-é":                            false,
	"ordér-1":                            false,
	"order-\xff":                         false,
	"order-\x00":                         false,
	"order-" + strings.Repeat("é", 64):   false, // 128 bytes, 64 runes
	"order-" + strings.Repeat("x", 127) + "\u212a": false, // a non-ASCII letter at the end
	"{-}":     false,
	"`-@":     false,
	"order-[": false,
	"order-/": false,
	"order-:": false,
	strings.Repeat("a", 40) + "-" + strings.Repeat("Z", 128): true,
}

func TestSplitStreamMatchesPattern(t *testing.T) {
	t.Parallel()
	for stream, want := range splitStreamCases {
		if got := checkSplitStream(t, stream); got != want {
			t.Errorf("SplitStream(%q) accepted = %v, want %v", stream, got, want)
		}
	}
}

// FuzzSplitStreamMatchesPattern checks that SplitStream's byte loops accept
// exactly the language of the regexps it used to call, and that ValidID,
// which still uses idPattern, agrees with it.
func FuzzSplitStreamMatchesPattern(f *testing.F) {
	for stream := range splitStreamCases {
		f.Add(stream)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		checkSplitStream(t, stream)
	})
}
