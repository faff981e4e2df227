package apierr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// RequestReused is the field violation of a request whose request_id was
// already used for a different request (es.ErrRequestReused): AIP-155 wants
// it refused rather than answered with the first request's result.
var RequestReused = FieldViolation{Field: "request_id",
	Description: "request_id was already used for a different request: a retry must repeat the request unchanged, a new request needs a new request_id"}

// Fingerprint identifies what a mutating request asks for, so that a
// request_id that comes again can be told a retry (same fingerprint) from
// a reuse for a different request (AIP-155). It is the SHA-256 of the
// request's deterministic wire encoding with request_id and the top-level
// fields named in ignore cleared, truncated to 128 bits, in hex (32
// characters). Ignore only fields that do not change what is asked — how
// long to wait for the outcome, say — and say why where the RPC calls it;
// every other field, unknown ones included, counts. The edge computes it
// and the command carries it (es.Meta.RequestFingerprint). It panics if
// req has no request_id or no field named in ignore: a programming error.
//
// Personal data is left out: every field marked (custody.type.v1.personal),
// in req and in the messages it holds, is cleared before hashing. The
// fingerprint is stored in clear with the events, beside tokens that an
// erasure makes unreadable, and it is an unkeyed hash: with the personal
// fields in it, whoever guessed a buyer's address could confirm the guess
// from it after the erasure. The price: a request_id used again with a
// request that differs only in personal fields (another recipient name,
// another street) is taken as a retry of the first, and answered with its
// result, not refused. A request with no personal field set hashes as it
// always did.
func Fingerprint(req proto.Message, ignore ...protoreflect.Name) string {
	// A shallow copy without the ignored fields (their values are shared,
	// only read): a deep proto.Clone was most of the cost.
	src := req.ProtoReflect()
	fields := src.Descriptor().Fields()
	skip := make([]protoreflect.FieldDescriptor, 0, 1+len(ignore))
	for _, name := range append([]protoreflect.Name{"request_id"}, ignore...) {
		fd := fields.ByName(name)
		if fd == nil {
			panic(fmt.Sprintf("apierr.Fingerprint: %s has no field %s", src.Descriptor().FullName(), name))
		}
		skip = append(skip, fd)
	}
	m := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !slices.Contains(skip, fd) {
			m.Set(fd, v)
		}
		return true
	})
	m.SetUnknown(src.GetUnknown())
	if personalSet(m) {
		// Only now a deep copy: the shallow one shares its messages with req.
		m = proto.Clone(m.Interface()).ProtoReflect()
		clearPersonal(m)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		// Only invalid UTF-8 in a string field fails, and the server refuses
		// such a request when it decodes it. Should one get here, the text
		// form (the same for the same request in one build) stands in.
		b = []byte(prototext.MarshalOptions{}.Format(m.Interface()))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// personal reports whether fd is marked (custody.type.v1.personal).
func personal(fd protoreflect.FieldDescriptor) bool {
	p, _ := proto.GetExtension(fd.Options(), typev1.E_Personal).(bool)
	return p
}

// personalSet reports whether m sets a field marked personal, directly or
// in a message it holds (singular, repeated or a map's values).
func personalSet(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		found = personal(fd) || anyMessage(fd, v, personalSet)
		return !found
	})
	return found
}

// clearPersonal clears every field marked personal in m and in the
// messages it holds.
func clearPersonal(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if personal(fd) {
			m.Clear(fd)
			return true
		}
		anyMessage(fd, v, func(sub protoreflect.Message) bool { clearPersonal(sub); return false })
		return true
	})
}

// anyMessage calls f with each message value v of field fd holds (none
// for a scalar field) until f returns true, and reports whether it did.
func anyMessage(fd protoreflect.FieldDescriptor, v protoreflect.Value, f func(protoreflect.Message) bool) bool {
	switch {
	case fd.IsMap():
		if fd.MapValue().Message() == nil {
			return false
		}
		found := false
		v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
			found = f(mv.Message())
			return !found
		})
		return found
	case fd.Message() == nil:
		return false
	case fd.IsList():
		for i := range v.List().Len() {
			if f(v.List().Get(i).Message()) {
				return true
			}
		}
		return false
	}
	return f(v.Message())
}
