package apierrtest

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzRequests hands check every request the fuzzer's bytes decode to,
// starting from seed and the empty request: whatever a client sends, an
// edge's validation must not panic, and check judges what it accepted.
// Bytes that are no request of type R never reach a handler, so they are
// skipped.
func FuzzRequests[R any, P interface {
	*R
	proto.Message
}](f *testing.F, seed P, check func(t *testing.T, req P)) {
	f.Helper()
	b, err := proto.Marshal(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		req := P(new(R))
		if proto.Unmarshal(b, req) != nil {
			return
		}
		check(t, req)
	})
}
