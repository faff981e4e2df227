package memory_test

import (
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/conformance"
	"github.com/custody/custody/pkg/eventstore/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		DensePositions: true,
		New:            func(*testing.T) eventstore.Store { return memory.New(nil) },
		SkipRestart:    "memory backend keeps nothing across restarts by design",
		SkipDelete:     "memory backend has no delete or purge API at all",
	})
}
