// Package memory is an in-process eventstore.Store for pure domain tests.
// It keeps everything in RAM and loses it on exit: never use it to run
// Custody. It honours the same semantics as the real backends and passes the
// same conformance suite.
package memory

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/custody/custody/pkg/eventstore"
)

// Store is the in-memory event store.
type Store struct {
	mu      sync.Mutex
	all     []eventstore.RecordedEvent // index i has Position i+1
	streams map[string][]int           // stream -> indexes into all
	notify  chan struct{}              // closed and replaced on every append
	closed  bool
	now     func() time.Time
}

// New returns an empty store. now may be nil (wall clock).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{streams: map[string][]int{}, notify: make(chan struct{}), now: now}
}

var _ eventstore.Store = (*Store)(nil)

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	idx := s.streams[stream]
	if res, ok := s.alreadyStored(idx, expected, events); ok {
		return res, nil
	}
	exists := len(idx) > 0
	var last uint64
	prev := eventstore.GenesisHash
	if exists {
		e := s.all[idx[len(idx)-1]]
		last, prev = e.Revision, e.Hash
	}
	if !expected.Matches(exists, last) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: last, ActualExists: exists}
	}
	now := s.now().UTC()
	next := uint64(len(idx))
	for i, ed := range events {
		ed.Data = bytes.Clone(ed.Data)
		re := eventstore.RecordedEvent{EventData: ed, Stream: stream, Revision: next + uint64(i), Position: uint64(len(s.all)) + 1, RecordedAt: now}
		eventstore.Seal(prev, &re)
		prev = re.Hash
		s.streams[stream] = append(s.streams[stream], len(s.all))
		s.all = append(s.all, re)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	tail := s.all[len(s.all)-1]
	return eventstore.AppendResult{LastRevision: tail.Revision, LastPosition: tail.Position}, nil
}

// alreadyStored detects a retried append: the events sit in the stream
// right after the expected revision (or, for Any, at its tail).
func (s *Store) alreadyStored(idx []int, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, bool) {
	var start int
	switch {
	case expected.IsNoStream():
		start = 0
	case expected.IsAny():
		start = len(idx) - len(events)
	default:
		r, _ := expected.Revision()
		start = int(r) + 1
	}
	if start < 0 || start+len(events) > len(idx) {
		return eventstore.AppendResult{}, false
	}
	stored := make([]eventstore.RecordedEvent, len(events))
	for i := range events {
		stored[i] = s.all[idx[start+i]]
	}
	return eventstore.StoredAlready(stored, events)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.streams[stream]
	if !ok {
		return nil, eventstore.ErrStreamNotFound
	}
	var out []eventstore.RecordedEvent
	for i := from; i < uint64(len(idx)); i++ {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, clone(s.all[idx[i]]))
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readAllLocked(from, limit), nil
}

func (s *Store) readAllLocked(from uint64, limit int) []eventstore.RecordedEvent {
	from = max(from, 1)
	var out []eventstore.RecordedEvent
	for p := from; p <= uint64(len(s.all)); p++ {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, clone(s.all[p-1]))
	}
	return out
}

// SubscribeAll implements eventstore.Store.
func (s *Store) SubscribeAll(ctx context.Context, from uint64) (eventstore.Subscription, error) {
	return &subscription{s: s, next: max(from, 1), done: make(chan struct{})}, nil
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Tamper rewrites a stored event in place, bypassing every rule. It exists
// only so tests can show that chain verification catches an edit.
func (s *Store) Tamper(stream string, revision uint64, edit func(*eventstore.RecordedEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.all[s.streams[stream][revision]])
}

type subscription struct {
	s    *Store
	next uint64
	done chan struct{}
	once sync.Once
}

func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		sub.s.mu.Lock()
		evs := sub.s.readAllLocked(sub.next, 1)
		wait := sub.s.notify
		sub.s.mu.Unlock()
		if len(evs) == 1 {
			sub.next++
			return evs[0], nil
		}
		select {
		case <-wait:
		case <-sub.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		}
	}
}

func (sub *subscription) Close() error {
	sub.once.Do(func() { close(sub.done) })
	return nil
}

func clone(e eventstore.RecordedEvent) eventstore.RecordedEvent {
	e.Data = slices.Clone(e.Data)
	e.Hash = slices.Clone(e.Hash)
	e.PrevHash = slices.Clone(e.PrevHash)
	return e
}
