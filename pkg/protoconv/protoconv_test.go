package protoconv_test

import (
	"testing"
	"time"

	"github.com/custody/custody/pkg/protoconv"
)

func TestTimestamp(t *testing.T) {
	t.Parallel()
	if ts := protoconv.Timestamp(time.Time{}); ts != nil {
		t.Errorf("zero time = %v, want unset", ts)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 7, time.UTC)
	if got := protoconv.Timestamp(at).AsTime(); !got.Equal(at) {
		t.Errorf("round trip = %v, want %v", got, at)
	}
}

type state string
type wireState int32

func TestEnum(t *testing.T) {
	t.Parallel()
	e := protoconv.NewEnum(map[state]wireState{"": 0, "open": 1, "closed": 2})
	if e.Len() != 3 || e.Wire("open") != 1 || e.Wire("unknown") != 0 {
		t.Errorf("Wire: len %d, open %d, unknown %d", e.Len(), e.Wire("open"), e.Wire("unknown"))
	}
	for w, want := range map[wireState]state{0: "", 2: "closed"} {
		if d, ok := e.Domain(w); !ok || d != want {
			t.Errorf("Domain(%d) = %q, %v; want %q", w, d, ok, want)
		}
	}
	if d, ok := e.Domain(9); ok {
		t.Errorf("Domain(9) = %q, want none", d)
	}
	defer func() {
		if recover() == nil {
			t.Error("a table mapping two values to one did not panic")
		}
	}()
	protoconv.NewEnum(map[state]wireState{"open": 1, "reopened": 1})
}
