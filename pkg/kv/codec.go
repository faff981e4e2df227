package kv

import (
	"encoding/binary"
	"errors"
	"time"
)

// The stored read models' values share one hand binary encoding: varints,
// length-prefixed strings, bytes and lists, a bool as one byte, a time as
// one byte (0: the zero time) then seconds and nanoseconds since 1970. It
// costs no reflection and a few hundred bytes a record; what a read model
// writes with it is part of the read model's Version. A value starts with
// its encoding's version byte, so a value of another shape is an error, not
// a silently wrong answer.

// ErrCorrupt is a value that does not decode.
var ErrCorrupt = errors.New("kv: corrupt value")

// Encoder appends a value to B.
type Encoder struct{ B []byte }

// NewEncoder starts a value of the given version with room for size bytes.
func NewEncoder(version byte, size int) Encoder {
	return Encoder{B: append(make([]byte, 0, size), version)}
}

func (e *Encoder) Uint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) Int(v int64)   { e.B = binary.AppendVarint(e.B, v) }
func (e *Encoder) Str(s string)  { e.Uint(uint64(len(s))); e.B = append(e.B, s...) }
func (e *Encoder) Bytes(b []byte) {
	e.Uint(uint64(len(b)))
	e.B = append(e.B, b...)
}

func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

func (e *Encoder) Time(t time.Time) {
	if t.IsZero() {
		e.B = append(e.B, 0)
		return
	}
	e.B = append(e.B, 1)
	e.Int(t.Unix())
	e.Uint(uint64(t.Nanosecond()))
}

func (e *Encoder) Strs(ss []string) {
	e.Uint(uint64(len(ss)))
	for _, s := range ss {
		e.Str(s)
	}
}

// Decoder reads a value; after the first error it reads zero values, and
// Err (or End) reports it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder starts reading a value of the given version.
func NewDecoder(b []byte, version byte) Decoder {
	d := Decoder{b: b}
	if d.Byte() != version {
		d.Fail(ErrCorrupt)
	}
	return d
}

// DecoderOf reads b, which has no version byte of its own (a key, or a
// value whose shape the space's Version names).
func DecoderOf(b []byte) Decoder { return Decoder{b: b} }

// Rest is what is left to read.
func (d *Decoder) Rest() []byte { return d.b }

// Fail records err (the first one counts) and stops reading.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

// Err is the first error met.
func (d *Decoder) Err() error { return d.err }

// End is the error of a value read whole, or ErrCorrupt for one with bytes
// left over.
func (d *Decoder) End() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrCorrupt
	}
	return d.err
}

func (d *Decoder) Uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail(ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) Int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.Fail(ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// N reads a length or count, which cannot exceed what is left.
func (d *Decoder) N() int {
	v := d.Uint()
	if v > uint64(len(d.b)) {
		d.Fail(ErrCorrupt)
		return 0
	}
	return int(v)
}

// Raw reads length-prefixed bytes (they alias the value).
func (d *Decoder) Raw() []byte {
	n := d.N()
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *Decoder) Str() string { return string(d.Raw()) }

func (d *Decoder) Byte() byte {
	if len(d.b) == 0 {
		d.Fail(ErrCorrupt)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail(ErrCorrupt)
	return false
}

func (d *Decoder) Time() time.Time {
	switch d.Byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := d.Int()
		nsec := d.Uint()
		if nsec >= 1e9 {
			d.Fail(ErrCorrupt)
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	}
	d.Fail(ErrCorrupt)
	return time.Time{}
}

// Strs reads a list of strings (nil when empty).
func (d *Decoder) Strs() []string {
	n := d.N()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.Str()
	}
	return out
}
