package apierr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
