// Package kv is where read models keep their state outside the Go heap: an
// embedded, ordered key-value store (Pebble, CockroachDB's LSM engine) in
// the process's data directory, one keyspace (Space) per read model.
//
// A read model writes the changes one or more events make, together with
// the position of the last of them, in ONE batch (Batch.Commit): after any
// crash the store holds some prefix of the batches, whole, so a read model
// resumes from the position it finds beside its state — nothing applied
// twice, nothing skipped. A Space records the version of the code that
// wrote it; a read model whose version changed starts from an empty Space
// (Reset) and folds from position 1.
//
// Write-behind. A committed batch is not written to Pebble at once: it
// joins the store's pending writes, a map from key to value in memory that
// every read (Get, Scan, a batch's Get) looks at before Pebble, so a commit
// is visible the moment Commit returns. The pending writes go to Pebble in
// one Pebble batch when they pass Options.PendingBytes, every
// Options.FlushEvery, and at Close. A key written again before that is
// written to Pebble once: a read model's position (written with each of
// its events), a hot account's balance, an order's record rewritten at each
// step of its life. Per event that was one Pebble commit per read model and
// every version of every key through Pebble's memtable, log, flushes and
// compactions: a quarter of the all-in-one's CPU. (Kafka Streams puts a
// record cache in front of its RocksDB state stores for the same reason.)
// A flush writes whole commits only, all pending at once, so a crash still
// leaves a prefix of the commits: a killed process loses the pending ones,
// and its read models fold those events again from their positions.
// Pebble keeps no write-ahead log for this store: a commit lives in a
// memtable until the memtable is flushed to a table, and memtables are
// flushed whole and in order, so a killed process (or a machine that loses
// power) loses the writes of the memtables not yet flushed — a suffix of
// the batches, which the read models fold again from the event store, their
// source of truth. Close flushes them. The log held nothing the event store
// does not: it was written without an fsync, and in blocks, so a kill -9
// already lost its unwritten tail; it was a fifth of the bytes the store
// wrote to disk (benchmarks.md, "Eighth session").
//
// Memory is bounded by the options: Pebble's block cache and memtables and
// the pending writes, not the number of events.
package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pebblebloom "github.com/cockroachdb/pebble/v2/bloom"
	"go.opentelemetry.io/otel/metric"

	"github.com/custody/custody/pkg/bloom"
)

// Options bound the store's memory.
type Options struct {
	// CacheBytes is the block cache shared by every Space (default 16 MiB),
	// besides the memtables.
	CacheBytes int64
	// MemTableBytes is the size of one memtable (default 16 MiB; Pebble
	// keeps up to two). A memtable is a table of level 0 once full, and each
	// compaction of level 0 rewrites the tables below it that it overlaps —
	// the whole level, since read models' keys are spread over the key
	// space — so larger memtables compact the same bytes fewer times.
	MemTableBytes uint64
	// Log receives Pebble's errors from its background work (flushes,
	// compactions); nil: slog.Default().
	Log *slog.Logger
	// PendingBytes bounds the committed writes (their keys and values)
	// held in memory before they are written to Pebble (default a quarter
	// of MemTableBytes; see Write-behind).
	PendingBytes int
	// FlushEvery is how long committed writes wait at most before they are
	// written to Pebble (default 100ms).
	FlushEvery time.Duration
	// Scratch is a store that is thrown away after use (custody rebuild's):
	// it must start empty, keeps a Bloom filter of the keys written, so
	// looking up one never written costs no search, and its memtables are
	// not flushed at Close. (It still compacts: without compactions the
	// tables pile up in L0 and every read searches all of them, which slowed
	// a rebuild of a million events to a few thousand a second.)
	Scratch bool
}

// DB is one store, opened by one process at a time (Pebble locks the
// directory).
type DB struct {
	db     *pebble.DB
	closed atomic.Bool

	mu sync.Mutex // serialises numbering new spaces

	metrics metric.Registration // nil: none (a scratch store)

	w writeBehind
}

// writeBehind is the store's committed writes not yet in Pebble (see
// Write-behind). Readers look in pending, then flushing, then Pebble.
type writeBehind struct {
	limit int

	mu       sync.RWMutex
	pending  map[string]entry // committed, by full key
	flushing map[string]entry // being written to Pebble (nil: none)
	bytes    int              // of pending's keys and values

	// written, in a scratch store (which starts empty), has every key
	// written since Open, so a key it never saw is absent without a
	// search of Pebble's memtables (which have no filter): a rebuild looks
	// up new keys all the time (a new order's record, a new id's link).
	written *bloom.Filter

	flushMu sync.Mutex // one flush at a time
	err     error      // the first flush that failed; every commit after it fails

	stop chan struct{}
	done chan struct{}
}

// entry is a pending write: a value, or a deletion.
type entry struct {
	value   []byte
	deleted bool
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
		o.MemTableBytes = 16 << 20
	}
	if o.PendingBytes <= 0 {
		// Under Pebble's large-batch threshold (half a memtable), past
		// which a batch becomes a memtable of its own.
		o.PendingBytes = int(o.MemTableBytes / 4)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	// Pebble reserves each memtable's size in the block cache (one budget
	// for both), so the cache is made larger by the memtables it may hold:
	// CacheBytes is for blocks. (Without this a 16 MiB cache beside 16 MiB
	// memtables kept no block at all, and every read of a table was a
	// pread: 5 % of the all-in-one's CPU.)
	cache := pebble.NewCache(o.CacheBytes + 2*int64(o.MemTableBytes))
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                o.MemTableBytes,
		MemTableStopWritesThreshold: 2,
		DisableWAL:                  true, // see the package's doc: Close flushes the memtables
		Logger:                      pebbleLogger{log},
	}
	// A Bloom filter per table (every level inherits L0's): a read model
	// asks for many keys that are not there yet (a new order, a new buyer's
	// list), and without it each such Get searches every table it overlaps.
	opts.Levels[0].FilterPolicy = pebblebloom.FilterPolicy(10)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	d := &DB{db: db, w: writeBehind{limit: o.PendingBytes, pending: map[string]entry{},
		stop: make(chan struct{}), done: make(chan struct{})}}
	if o.Scratch {
		if used, err := hasData(db); err != nil || used {
			_ = db.Close()
			return nil, errors.Join(err, fmt.Errorf("kv: open %s: a scratch store must start empty", dir))
		}
		d.w.written = bloom.New()
	}
	if !o.Scratch {
		if d.metrics, err = d.observe(); err != nil {
			log.Warn("read-model store: no metrics", "err", err)
		}
	}
	go d.flushEvery(o.FlushEvery, log)
	return d, nil
}

// hasData reports whether the store holds a space's key or has numbered
// a space.
func hasData(db *pebble.DB) (bool, error) {
	if _, ok, err := get(db, nextSpaceKey); err != nil || ok {
		return ok, err
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{1}, UpperBound: []byte{2}})
	if err != nil {
		return false, err
	}
	some := it.First()
	return some, it.Close()
}

// flushEvery writes the pending writes to Pebble every d until Close.
func (d *DB) flushEvery(every time.Duration, log *slog.Logger) {
	defer close(d.w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.w.stop:
			return
		case <-t.C:
			if err := d.Flush(); err != nil {
				log.Error("kv: writing pending read-model writes", "err", err)
			}
		}
	}
}

// Flush writes the pending writes to Pebble now, in one batch.
func (d *DB) Flush() error {
	w := &d.w
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return nil
	}
	batch := w.pending
	w.flushing, w.pending, w.bytes = batch, make(map[string]entry, len(batch)), 0
	w.mu.Unlock()

	// In key order: Pebble inserts a batch's keys into its memtable's
	// skiplist one after the other, starting each search from where the
	// previous key went, so sorted keys are found in a few steps where
	// random ones search the whole list (15 % of an audit rebuild's CPU).
	keys := slices.Sorted(maps.Keys(batch))
	b := d.db.NewBatch()
	var err error
	for _, k := range keys {
		e := batch[k]
		if e.deleted {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), e.value, nil)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	_ = b.Close()
	w.mu.Lock()
	if err != nil {
		// Readers go on seeing the writes (flushing stays); nothing more
		// is committed, so what Pebble holds stays a prefix of the commits.
		w.err = fmt.Errorf("kv: writing committed batches: %w", err)
	} else {
		w.flushing = nil
	}
	w.mu.Unlock()
	return err
}

// lookup finds key among the pending writes; never is true when the
// store knows key was never written.
func (w *writeBehind) lookup(key []byte) (e entry, found, never bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if e, ok := w.pending[string(key)]; ok {
		return e, true, false
	}
	if e, ok := w.flushing[string(key)]; ok {
		return e, true, false
	}
	return entry{}, false, w.written != nil && !w.written.MayHave(string(key))
}

// noteWritten records keys written to Pebble directly (Reset).
func (w *writeBehind) noteWritten(keys ...[]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written != nil {
		for _, k := range keys {
			w.written.Add(string(k))
		}
	}
}

// get reads key as committed: pending, else Pebble.
func (d *DB) get(key []byte) ([]byte, bool, error) {
	e, found, never := d.w.lookup(key)
	switch {
	case found && e.deleted, never:
		return nil, false, nil
	case found:
		return bytes.Clone(e.value), true, nil
	}
	return get(d.db, key)
}

// commit adds a batch's writes to the pending ones, at once, and writes
// them all to Pebble when they pass the limit.
func (d *DB) commit(writes map[string]entry) error {
	w := &d.w
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	for k, e := range writes {
		if w.written != nil {
			w.written.Add(k)
		}
		if old, ok := w.pending[k]; ok {
			w.bytes -= len(k) + len(old.value)
		}
		w.pending[k] = e
		w.bytes += len(k) + len(e.value)
	}
	full := w.bytes >= w.limit
	w.mu.Unlock()
	if full {
		return d.Flush()
	}
	return nil
}

// pendingIn returns the pending writes with keys in [lo, hi), sorted.
func (w *writeBehind) pendingIn(lo, hi []byte) []pendingKV {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if len(w.pending) == 0 && len(w.flushing) == 0 {
		return nil
	}
	var out []pendingKV
	add := func(m map[string]entry, skip map[string]entry) {
		for k, e := range m {
			if k < string(lo) || k >= string(hi) {
				continue
			}
			if _, newer := skip[k]; newer {
				continue
			}
			out = append(out, pendingKV{key: k, entry: e})
		}
	}
	add(w.pending, nil)
	add(w.flushing, w.pending)
	slices.SortFunc(out, func(a, b pendingKV) int { return strings.Compare(a.key, b.key) })
	return out
}

type pendingKV struct {
	key string
	entry
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
	close(d.w.stop)
	<-d.w.done
	if d.metrics != nil {
		_ = d.metrics.Unregister()
	}
	err := d.Flush()
	if err == nil && d.w.written == nil { // a scratch store is thrown away
		err = d.db.Flush() // no log: the memtables are written now or never
	}
	return errors.Join(err, d.db.Close())
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

// batchKey is key(k), the same bytes, as a batch's writes hold it: a
// string made in one allocation.
func (s *Space) batchKey(k []byte) string {
	var b strings.Builder
	b.Grow(len(s.prefix) + 1 + len(k))
	b.Write(s.prefix)
	b.WriteByte(1)
	b.Write(k)
	return b.String()
}

// Get returns a copy of key's value as committed; ok false when it is
// absent.
func (s *Space) Get(key []byte) (value []byte, ok bool, err error) { return s.owner.get(s.key(key)) }

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

func (s *Space) getMeta(m []byte) ([]byte, bool, error) { return s.owner.get(s.meta(m)) }

// Reset empties the space and records version at position 0, in one batch.
// Nothing may write the space meanwhile.
func (s *Space) Reset(version string) error {
	if err := s.owner.Flush(); err != nil { // its pending writes go first, then the range
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	end := append(bytes.Clone(s.prefix), 2) // the first key after the space
	if err := b.DeleteRange(s.prefix, end, nil); err != nil {
		return err
	}
	if err := b.Set(s.meta(metaVersion), []byte(version), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	s.owner.w.noteWritten(s.meta(metaVersion))
	return nil
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
	// The pending writes in range first (a flush that ends meanwhile puts
	// them in Pebble too: they then come from both, equal), then Pebble's.
	pend := s.owner.w.pendingIn(lo, hi)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	n := len(s.prefix) + 1
	valid := it.First
	step := it.Next
	dir := 1
	if reverse {
		valid, step, dir = it.Last, it.Prev, -1
		slices.Reverse(pend)
	}
	// Merge the two in key order (dir): a pending write hides Pebble's
	// value of its key; a pending deletion hides the key.
	ok := valid()
	for ok || len(pend) > 0 {
		var c int // <0: Pebble's key first, >0: the pending one, 0: the same key
		switch {
		case !ok:
			c = 1
		case len(pend) == 0:
			c = -1
		default:
			c = dir * bytes.Compare(it.Key(), []byte(pend[0].key))
		}
		if c < 0 {
			v, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return err
			}
			if !fn(it.Key()[n:], v) {
				break
			}
			ok = step()
			continue
		}
		p := pend[0]
		pend = pend[1:]
		if c == 0 {
			ok = step()
		}
		if !p.deleted && !fn([]byte(p.key)[n:], p.value) {
			break
		}
	}
	return it.Close()
}

// Batch gathers the changes of one or more events; Commit writes them and
// the position at once.
type Batch struct {
	s      *Space
	writes map[string]entry // nil once committed or discarded
}

// Batch starts a batch of changes to the space.
func (s *Space) Batch() *Batch { return &Batch{s: s, writes: map[string]entry{}} }

// Set sets key to value.
func (b *Batch) Set(key, value []byte) error { return b.set(b.s.batchKey(key), value) }

// Delete removes key.
func (b *Batch) Delete(key []byte) error { return b.del(b.s.batchKey(key)) }

// Get reads key as the batch would leave it: the batch's own change, else
// the stored value.
func (b *Batch) Get(key []byte) (value []byte, ok bool, err error) { return b.get(b.s.key(key)) }

var errBatchEnded = errors.New("kv: batch already committed or discarded")

func (b *Batch) set(full string, value []byte) error {
	if b.writes == nil {
		return errBatchEnded
	}
	b.writes[full] = entry{value: bytes.Clone(value)}
	return nil
}

func (b *Batch) del(full string) error {
	if b.writes == nil {
		return errBatchEnded
	}
	b.writes[full] = entry{deleted: true}
	return nil
}

func (b *Batch) get(full []byte) ([]byte, bool, error) {
	if e, ok := b.writes[string(full)]; ok {
		if e.deleted {
			return nil, false, nil
		}
		return bytes.Clone(e.value), true, nil
	}
	return b.s.owner.get(full)
}

// In is the batch as seen from other, a space of the same store
// (Space.Sibling): its changes to other's keys are written by the batch's
// Commit with the rest, all or nothing, and a Discard drops them. other's
// position is not changed. It panics when other is of another store.
func (b *Batch) In(other *Space) *BatchIn {
	if other.owner != b.s.owner {
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
func (w *BatchIn) Set(key, value []byte) error { return w.b.set(w.s.batchKey(key), value) }

// Delete removes the space's key.
func (w *BatchIn) Delete(key []byte) error { return w.b.del(w.s.batchKey(key)) }

// Get reads the space's key as the batch would leave it.
func (w *BatchIn) Get(key []byte) (value []byte, ok bool, err error) {
	return w.b.get(w.s.key(key))
}

// Commit writes the batch's changes and position as the space's position,
// all or nothing, and ends the batch. They are visible to every reader
// when it returns, and written to Pebble with the store's other pending
// writes (Write-behind).
func (b *Batch) Commit(position uint64) error {
	if b.writes == nil {
		return errBatchEnded
	}
	p := binary.BigEndian.AppendUint64(nil, position)
	b.writes[string(b.s.meta(metaPosition))] = entry{value: p}
	writes := b.writes
	b.writes = nil
	return b.s.owner.commit(writes)
}

// Discard ends the batch without writing it; after Commit or Discard it
// does nothing.
func (b *Batch) Discard() { b.writes = nil }

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
