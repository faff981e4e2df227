package eventstore_test

import (
	"strings"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
)

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"o_1-A":                  true,
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"":                       false,
		"o.1":                    false,
		"o 1":                    false,
		"o/1":                    false,
	} {
		if got := eventstore.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
		if _, _, err := eventstore.SplitStream("order-" + id); (err == nil) != want {
			t.Errorf("SplitStream(order-%s) = %v, but ValidID says %v", id, err, want)
		}
	}
}
