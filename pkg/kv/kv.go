// Package kv is where read models keep their state outside the Go heap: an
// embedded, ordered key-value store (Pebble, CockroachDB's LSM engine) in
// the process's data directory, one keyspace (Space) per read model.
//
// A read model writes the changes one or more events make, together with
// the position of the last of them, in ONE batch (Batch.Commit): after any
// crash the store holds some prefix of the batches, whole, so a read model
// resumes from the position it finds beside its state — nothing applied
// twice, nothing skipped. Batches are written to Pebble's log without an
// fsync: a killed process loses nothing (the kernel has the bytes); a
// machine that loses power loses a suffix of batches, which the read model
// folds again from the event store, its source of truth. A Space records
// the version of the code that wrote it; a read model whose version changed
// starts from an empty Space (Reset) and folds from position 1.
//
// Memory is bounded by the options: Pebble's block cache and memtables,
// not the number of events.
package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Options bound the store's memory.
type Options struct {
	// CacheBytes is the block cache shared by every Space (default 16 MiB).
	CacheBytes int64
	// MemTableBytes is the size of one memtable (default 4 MiB; Pebble
	// keeps up to two).
	MemTableBytes uint64
	// Log receives Pebble's errors from its background work (flushes,
	// compactions); nil: slog.Default().
	Log *slog.Logger
	// Scratch is a store that is thrown away after use (custody rebuild's):
	// it keeps no log. (It still compacts: without compactions the tables
	// pile up in L0 and every read searches all of them, which slowed a
	// rebuild of a million events to a few thousand a second.)
	Scratch bool
}

// DB is one store, opened by one process at a time (Pebble locks the
// directory).
type DB struct {
	db     *pebble.DB
	closed atomic.Bool

	mu sync.Mutex // serialises numbering new spaces
}

// Layout. A space is known by a number, not its name: every key of a
// space starts with 0x01 and the space's number (4 bytes), so the name
// (30-odd bytes) is not repeated in each of its keys, compared at each
// search and rewritten by each compaction. The names' numbers, and the
// layout's version, are kept under 0x00:
//
//	0x00 "layout"          layoutVersion
//	0x00 "space/" <name>   the space's number (4 bytes)
//	0x00 "next"            the next number to give
//	0x01 <number> 0x00 <m> the space's bookkeeping (position, version)
//	0x01 <number> 0x01 <k> the space's key k
//
// A store written in another layout (spaces by name, before) is emptied
// when opened: it is derived, and its read models fold again.
const layoutVersion = "2"

var (
	layoutKey     = []byte("\x00layout")
	nextSpaceKey  = []byte("\x00next")
	spaceNamesKey = []byte("\x00space/")
)

// Open opens (creating it if needed) the store in dir.
func Open(dir string, o Options) (*DB, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 16 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 4 << 20
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                o.MemTableBytes,
		MemTableStopWritesThreshold: 2,
		Logger:                      pebbleLogger{log},
	}
	// A Bloom filter per table (every level inherits L0's): a read model
	// asks for many keys that are not there yet (a new order, a new buyer's
	// list), and without it each such Get searches every table it overlaps.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	if o.Scratch {
		opts.DisableWAL = true
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	return &DB{db: db}, nil
}

// checkLayout empties a store of another layout (or none: new) and
// records this one.
func checkLayout(db *pebble.DB) error {
	v, ok, err := get(db, layoutKey)
	if err != nil || (ok && string(v) == layoutVersion) {
		return err
	}
	b := db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, bytes.Repeat([]byte{0xff}, 8), nil); err != nil {
		return err
	}
	if err := b.Set(layoutKey, []byte(layoutVersion), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync) // as every batch: a prefix of them survives anything
}

// Close releases the directory; closing again does nothing.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.db.Close()
}

// Space is one read model's keyspace: every key is stored behind the
// space's number (see Layout), and the space's own bookkeeping (position,
// version) under a key no caller's key can equal.
type Space struct {
	db     *pebble.DB
	owner  *DB
	name   string
	prefix []byte // 0x01, its number
}

// Space returns the keyspace name (not empty, no 0x00 byte), numbering it
// the first time.
func (d *DB) Space(name string) (*Space, error) {
	if name == "" || bytes.IndexByte([]byte(name), 0) >= 0 {
		return nil, fmt.Errorf("kv: bad space name %q", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	nameKey := append(bytes.Clone(spaceNamesKey), name...)
	num, ok, err := get(d.db, nameKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		next, _, err := get(d.db, nextSpaceKey)
		if err != nil {
			return nil, err
		}
		n := uint32(1)
		if len(next) == 4 {
			n = binary.BigEndian.Uint32(next)
		}
		num = binary.BigEndian.AppendUint32(nil, n)
		b := d.db.NewBatch()
		defer b.Close()
		_ = b.Set(nameKey, num, nil)
		_ = b.Set(nextSpaceKey, binary.BigEndian.AppendUint32(nil, n+1), nil)
		if err := b.Commit(pebble.NoSync); err != nil { // before any key of the space
			return nil, err
		}
	}
	if len(num) != 4 {
		return nil, fmt.Errorf("kv: space %q: number of %d bytes", name, len(num))
	}
	return &Space{db: d.db, owner: d, name: name, prefix: append([]byte{1}, num...)}, nil
}

// Sibling returns the space name of the same store as s: a read model that
// keeps its state in more than one space writes them together with
// Batch.In.
func (s *Space) Sibling(name string) (*Space, error) { return s.owner.Space(name) }

// Data keys are prefix+0x01+key; the meta keys prefix+0x00+name sort before
// them (see Layout).
var (
	metaPosition = []byte{0, 'p'}
	metaVersion  = []byte{0, 'v'}
)

func (s *Space) key(k []byte) []byte {
	out := make([]byte, 0, len(s.prefix)+1+len(k))
	out = append(append(out, s.prefix...), 1)
	return append(out, k...)
}

func (s *Space) meta(m []byte) []byte {
	return append(append([]byte(nil), s.prefix...), m...)
}

// Get returns a copy of key's value; ok false when it is absent.
func (s *Space) Get(key []byte) (value []byte, ok bool, err error) { return get(s.db, s.key(key)) }

// get reads key from r (the store, or a batch and the store under it).
func get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// State is where the space stands: the position of the last event folded
// into it (0: none) and the version that wrote it ("" for a new space).
func (s *Space) State() (position uint64, version string, err error) {
	p, ok, err := s.getMeta(metaPosition)
	if err != nil {
		return 0, "", err
	}
	if ok {
		if len(p) != 8 {
			return 0, "", fmt.Errorf("kv: space %q: position of %d bytes", s.name, len(p))
		}
		position = binary.BigEndian.Uint64(p)
	}
	v, _, err := s.getMeta(metaVersion)
	return position, string(v), err
}

func (s *Space) getMeta(m []byte) ([]byte, bool, error) { return get(s.db, s.meta(m)) }

// Reset empties the space and records version at position 0, in one batch.
func (s *Space) Reset(version string) error {
	b := s.db.NewBatch()
	defer b.Close()
	end := append(bytes.Clone(s.prefix), 2) // the first key after the space
	if err := b.DeleteRange(s.prefix, end, nil); err != nil {
		return err
	}
	if err := b.Set(s.meta(metaVersion), []byte(version), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// Scan calls fn with every key (without the space's prefix) and value in
// [from, to) — to nil: to the end — in key order, or in reverse order, until
// fn returns false. key and value are valid only during the call.
func (s *Space) Scan(from, to []byte, reverse bool, fn func(key, value []byte) bool) error {
	lo := s.key(from)
	var hi []byte
	if to != nil {
		hi = s.key(to)
	} else {
		hi = append(bytes.Clone(s.prefix), 2)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	n := len(s.prefix) + 1
	valid := it.First
	step := it.Next
	if reverse {
		valid, step = it.Last, it.Prev
	}
	for ok := valid(); ok; ok = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if !fn(it.Key()[n:], v) {
			break
		}
	}
	return it.Close()
}

// Batch gathers the changes of one or more events; Commit writes them and
// the position at once.
type Batch struct {
	s *Space
	b *pebble.Batch
}

// Batch starts a batch of changes to the space.
func (s *Space) Batch() *Batch { return &Batch{s: s, b: s.db.NewIndexedBatch()} }

// Set sets key to value.
func (b *Batch) Set(key, value []byte) error { return b.b.Set(b.s.key(key), value, nil) }

// Delete removes key.
func (b *Batch) Delete(key []byte) error { return b.b.Delete(b.s.key(key), nil) }

// Get reads key as the batch would leave it: the batch's own change, else
// the stored value.
func (b *Batch) Get(key []byte) (value []byte, ok bool, err error) { return get(b.b, b.s.key(key)) }

// In is the batch as seen from other, a space of the same store
// (Space.Sibling): its changes to other's keys are written by the batch's
// Commit with the rest, all or nothing, and a Discard drops them. other's
// position is not changed. It panics when other is of another store.
func (b *Batch) In(other *Space) *BatchIn {
	if other.db != b.s.db {
		panic("kv: Batch.In a space of another store")
	}
	return &BatchIn{b: b, s: other}
}

// BatchIn writes and reads another space's keys in a batch (Batch.In).
type BatchIn struct {
	b *Batch
	s *Space
}

// Set sets the space's key to value.
func (w *BatchIn) Set(key, value []byte) error { return w.b.b.Set(w.s.key(key), value, nil) }

// Delete removes the space's key.
func (w *BatchIn) Delete(key []byte) error { return w.b.b.Delete(w.s.key(key), nil) }

// Get reads the space's key as the batch would leave it.
func (w *BatchIn) Get(key []byte) (value []byte, ok bool, err error) {
	return get(w.b.b, w.s.key(key))
}

// Commit writes the batch's changes and position as the space's position,
// all or nothing, and ends the batch.
func (b *Batch) Commit(position uint64) error {
	defer b.Discard()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], position)
	if err := b.b.Set(b.s.meta(metaPosition), p[:], nil); err != nil {
		return err
	}
	return b.b.Commit(pebble.NoSync)
}

// Discard ends the batch without writing it; after Commit or Discard it
// does nothing (a Pebble batch closed twice goes back to Pebble's pool
// twice, and two later batches would then be one).
func (b *Batch) Discard() {
	if b.b != nil {
		_ = b.b.Close()
		b.b = nil
	}
}

// pebbleLogger keeps Pebble's informational lines (every flush and
// compaction) out of the service's log, and logs its errors.
type pebbleLogger struct{ log *slog.Logger }

func (pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("kv: " + fmt.Sprintf(format, args...))
}
func (pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("kv: pebble: "+format, args...))
}
