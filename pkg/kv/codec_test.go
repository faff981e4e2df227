package kv_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/kv"
)

// A value reads back as written, and a value cut short, of another
// version or with bytes left over is ErrCorrupt, never a wrong answer.
func TestCodecRoundTripAndCorruption(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 123, time.UTC)
	e := kv.NewEncoder(3, 16)
	e.Uint(1 << 40)
	e.Int(-7)
	e.Str("héllo")
	e.Bytes([]byte{0, 1, 2})
	e.Bool(true)
	e.Time(at)
	e.Time(time.Time{})
	e.Strs([]string{"a", "", "c"})
	read := func(b []byte) (string, error) {
		d := kv.NewDecoder(b, 3)
		u, i, s, raw, ok, t1, t0, ss := d.Uint(), d.Int(), d.Str(), d.Raw(), d.Bool(), d.Time(), d.Time(), d.Strs()
		if err := d.End(); err != nil {
			return "", err
		}
		if u != 1<<40 || i != -7 || s != "héllo" || !slices.Equal(raw, []byte{0, 1, 2}) || !ok || !t1.Equal(at) || !t0.IsZero() || !slices.Equal(ss, []string{"a", "", "c"}) {
			t.Errorf("read back %d %d %q %v %v %v %v %q", u, i, s, raw, ok, t1, t0, ss)
		}
		return "ok", nil
	}
	if _, err := read(e.B); err != nil {
		t.Fatalf("the value as written: %v", err)
	}
	for name, b := range map[string][]byte{
		"cut short":       e.B[:len(e.B)-2],
		"another version": append([]byte{4}, e.B[1:]...),
		"bytes left over": append(slices.Clone(e.B), 0),
		"empty":           nil,
	} {
		if _, err := read(b); !errors.Is(err, kv.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// A key or value with no version byte reads with DecoderOf; Rest is what
// follows what was read.
func TestDecoderOfAndRest(t *testing.T) {
	e := kv.Encoder{}
	e.Str("order-1")
	e.Int(-3)
	b := append(e.B, "EUR"...)
	d := kv.DecoderOf(b)
	if s, n, rest := d.Str(), d.Int(), string(d.Rest()); s != "order-1" || n != -3 || rest != "EUR" || d.Err() != nil {
		t.Errorf("read %q %d, rest %q (%v)", s, n, rest, d.Err())
	}
	d = kv.DecoderOf(b[:3])
	if _ = d.Str(); !errors.Is(d.Err(), kv.ErrCorrupt) || len(d.Rest()) != 0 {
		t.Errorf("a string cut short: %v, rest %q", d.Err(), d.Rest())
	}
}
