package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/custody/custody/pkg/eventstore"
)

// Snapshots is an in-process eventstore.Snapshots for tests.
type Snapshots struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ eventstore.Snapshots = (*Snapshots)(nil)

// NewSnapshots returns an empty snapshot store.
func NewSnapshots() *Snapshots { return &Snapshots{m: map[string][]byte{}} }

// Get implements eventstore.Snapshots.
func (s *Snapshots) Get(_ context.Context, stream string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.m[stream]), nil
}

// Put implements eventstore.Snapshots.
func (s *Snapshots) Put(_ context.Context, stream string, snapshot []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[stream] = slices.Clone(snapshot)
	return nil
}
