package apierr

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/protoconv"
)

// Checks of request fields that several services' edges share. They add
// to the fault.Violations a service's validation collects (its domain's
// checks add to the same list), which FromError answers as one
// InvalidArgument naming every bad field.

// MaxPageToken bounds page_token: a longer one is no token a service
// issued (AIP-158 page tokens are opaque, and ours are short).
const MaxPageToken = 1024

// MaxRequestID bounds request_id, the idempotency key of a mutating
// request (AIP-155).
const MaxRequestID = 128

// RequestID checks the request_id of a mutating request: present and at
// most MaxRequestID bytes.
func RequestID(v *fault.Violations, id string) {
	switch {
	case id == "":
		v.Add("request_id", "required: an idempotency key, unique per request")
	case len(id) > MaxRequestID:
		v.Add("request_id", "at most %d characters", MaxRequestID)
	}
}

// Paging checks the paging fields of a List request (AIP-158): page_size
// not negative (0 asks for the service's default) and page_token no
// longer than MaxPageToken. What a token means is the service's to check.
func Paging(v *fault.Violations, size int32, token string) {
	if size < 0 {
		v.Add("page_size", "must not be negative")
	}
	if len(token) > MaxPageToken {
		v.Add("page_token", "not a page token of this service")
	}
}

// Known checks an enum field of a request against the service's mapping
// of its values and returns the domain value of w; a value the mapping
// lacks is "unknown <field> <number>".
func Known[D comparable, W ~int32](v *fault.Violations, field string, e protoconv.Enum[D, W], w W) D {
	d, ok := e.Domain(w)
	if !ok {
		v.Add(field, "unknown %s %d", field, w)
	}
	return d
}

// OneOf checks a required enum field: w must be a value its enum defines
// other than the zero value (UNSPECIFIED). Else the field is "required:
// A, B or C", naming those values without the enum's prefix, in the order
// of their numbers: the proto enum is the one list of what the field takes.
// OneOf reports whether w is one of them.
func OneOf(v *fault.Violations, field string, w protoreflect.Enum) bool {
	values := w.Descriptor().Values()
	if w.Number() != 0 && values.ByNumber(w.Number()) != nil {
		return true
	}
	v.Add(field, "required: %s", enumNames(values))
	return false
}

// OneOfKnown is OneOf for an enum field the service maps to its domain, as
// Known is for an optional one: it returns the domain value of w, and a
// value the mapping lacks is refused like UNSPECIFIED.
func OneOfKnown[D comparable, W interface {
	comparable
	protoreflect.Enum
}](v *fault.Violations, field string, e protoconv.Enum[D, W], w W) D {
	d, ok := e.Domain(w)
	if !ok || w.Number() == 0 {
		v.Add(field, "required: %s", enumNames(w.Descriptor().Values()))
	}
	return d
}

// enumNames lists an enum's values but the zero one, "A, B or C", without
// the prefix of its zero value ("CLAIM_DECISION_" of
// CLAIM_DECISION_UNSPECIFIED).
func enumNames(values protoreflect.EnumValueDescriptors) string {
	var named []protoreflect.EnumValueDescriptor
	prefix := ""
	for i := range values.Len() {
		switch val := values.Get(i); {
		case val.Number() != 0:
			named = append(named, val)
		case strings.HasSuffix(string(val.Name()), "_UNSPECIFIED"):
			prefix = strings.TrimSuffix(string(val.Name()), "UNSPECIFIED")
		}
	}
	slices.SortFunc(named, func(a, b protoreflect.EnumValueDescriptor) int { return cmp.Compare(a.Number(), b.Number()) })
	names := make([]string, len(named))
	for i, val := range named {
		names[i] = strings.TrimPrefix(string(val.Name()), prefix)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Require checks a required field: "required" when value is empty, else
// bad when valid is false (the field's own words for its format).
func Require(v *fault.Violations, field, value string, valid bool, bad string) {
	switch {
	case value == "":
		v.Add(field, "required")
	case !valid:
		v.Add(field, "%s", bad)
	}
}

// Timestamp checks an optional timestamp field and returns its time: the
// zero time when the field is unset or invalid.
func Timestamp(v *fault.Violations, field string, ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	if err := ts.CheckValid(); err != nil {
		v.Add(field, "%v", err)
		return time.Time{}
	}
	return ts.AsTime()
}
