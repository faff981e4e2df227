// Package protoconv converts values to their protobuf wire forms and back
// where every service's gRPC edge does it alike: timestamps, whose zero is
// an unset field, and enumerations, mapped by one table in both
// directions.
package protoconv

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Timestamp is t on the wire: nil, an unset field, for the zero time
// (something that has not happened yet).
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Enum maps a domain enumeration to its wire enum and back. Both
// directions come from one table, so they cannot disagree.
type Enum[D, W comparable] struct {
	wire   map[D]W
	domain map[W]D
}

// NewEnum returns the Enum of table, which maps each domain value to its
// wire value. Two domain values with one wire value are a programming
// error: NewEnum panics, when the package is loaded.
func NewEnum[D, W comparable](table map[D]W) Enum[D, W] {
	e := Enum[D, W]{wire: table, domain: make(map[W]D, len(table))}
	for d, w := range table {
		if other, dup := e.domain[w]; dup {
			panic(fmt.Sprintf("protoconv: %v and %v both map to %v", other, d, w))
		}
		e.domain[w] = d
	}
	return e
}

// Wire returns the wire value of d: the wire zero value (UNSPECIFIED) for
// a value the table lacks.
func (e Enum[D, W]) Wire(d D) W { return e.wire[d] }

// Domain returns the domain value of w, and whether the table has one.
func (e Enum[D, W]) Domain(w W) (D, bool) {
	d, ok := e.domain[w]
	return d, ok
}

// Len is the number of values in the table.
func (e Enum[D, W]) Len() int { return len(e.wire) }
