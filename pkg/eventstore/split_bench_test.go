package eventstore_test

import (
	"testing"

	"github.com/custody/custody/pkg/eventstore"
)

// BenchmarkSplitStream splits a typical stream name, as every decoded event
// does.
func BenchmarkSplitStream(b *testing.B) {
	const stream = "order-0f8c2d4e-5b6a-4c3d-9e8f-7a6b5c4d3e2f"
	for b.Loop() {
		if _, _, err := eventstore.SplitStream(stream); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidID checks a typical resource id, as services do at their edge.
func BenchmarkValidID(b *testing.B) {
	const id = "0f8c2d4e-5b6a-4c3d-9e8f-7a6b5c4d3e2f"
	for b.Loop() {
		if !eventstore.ValidID(id) {
			b.Fatal("invalid")
		}
	}
}
