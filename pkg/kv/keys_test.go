package kv_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/custody/custody/pkg/kv"
)

// Time keys sort by time (before 1970 too) and read back; a list's keys
// fall between its prefix and PrefixEnd, another owner's do not.
func TestListKeys(t *testing.T) {
	times := []time.Time{time.Unix(-5, 0), time.Unix(0, 0), time.Unix(0, 1), time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(kv.TimeKey(times[i-1], "z"), kv.TimeKey(times[i], "a")) >= 0 {
			t.Errorf("%v does not sort before %v", times[i-1], times[i])
		}
	}
	for _, at := range times {
		if got, ok := kv.TimeOfKey(kv.TimeKey(at, "id")); !ok || !got.Equal(at) {
			t.Errorf("TimeOfKey(TimeKey(%v)) = %v, %v", at, got, ok)
		}
	}
	if _, ok := kv.TimeOfKey([]byte{1, 2}); ok {
		t.Error("a key of two bytes read as a time")
	}
	p := kv.ListPrefix('v', "acme")
	end := kv.PrefixEnd(p)
	for name, c := range map[string]struct {
		key []byte
		in  bool
	}{
		"its entry":                 {append(p, kv.TimeKey(times[3], "o1")...), true},
		"an owner it prefixes":      {append(kv.ListPrefix('v', "acme2"), kv.TimeKey(times[3], "o1")...), false},
		"another list's same owner": {append(kv.ListPrefix('b', "acme"), kv.TimeKey(times[3], "o1")...), false},
	} {
		if in := bytes.Compare(c.key, p) >= 0 && bytes.Compare(c.key, end) < 0; in != c.in {
			t.Errorf("%s: in [prefix, PrefixEnd) = %v, want %v", name, in, c.in)
		}
	}
	if got := kv.PrefixEnd([]byte{'a', 0xff, 0xff}); !bytes.Equal(got, []byte{'b'}) {
		t.Errorf("PrefixEnd(a ff ff) = %x, want 62", got)
	}
	if got := kv.PrefixEnd([]byte{0xff}); got != nil {
		t.Errorf("PrefixEnd(ff) = %x, want nil (to the end)", got)
	}
}
