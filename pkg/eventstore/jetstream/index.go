package jetstream

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/custody/custody/pkg/bloom"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
)

// The per-stream index of a partition (docs/eventstore.md, "The index"),
// kept bounded in memory. For each stream of the partition it holds the
// stream's tail — revision, hash and id of its last event, which the next
// append seals onto — and the messages that hold its events (msgRef: the
// message's sequence and the stream's first revision in it).
//
// An entry is stored encoded, under the stream's name: in a map (no kv
// store given: tests, tools) or, in `custody run`, in a kv Space of the
// process's read-model store, one per partition, with an LRU of the hot
// streams' decoded entries in front of it. Cold streams (most of an order's
// streams, minutes after it was placed) then cost no heap at all. A long
// stream's message refs are sealed into chunks of refChunk refs, each under
// a key of its own, so that an entry stays small however long its stream,
// and an append rewrites only its stream's head (the tail and the refs not
// yet sealed).
//
// The kv is derived, never trusted across starts: a partition's Space is
// emptied when the store first uses the partition (a writer's Open folds
// every message again anyway, since the same read checks the stream for
// damage), and written without fsync in batches of up to indexCommitEvery
// entries; until then reads find them in a map. So a crash or a lost kv costs
// nothing the next start does not rebuild.

// indexVersion is the Space version of the index's encoding.
const indexVersion = "eventstore-index-1"

// refChunk is how many message refs make a sealed chunk (a var: tests make
// chunks small to exercise long streams).
var refChunk = 32

// indexCommitEvery bounds the entries a partition keeps pending before it
// commits them to its Space (they are in the heap until then).
const indexCommitEvery = 256

// DefaultIndexCache is how many streams' entries a partition keeps decoded
// in memory in front of Config.Index.
const DefaultIndexCache = 1024

// streamIndex is one stream's entry in its partition's index (its head,
// decoded): the tail, and the message refs not yet in a sealed chunk.
type streamIndex struct {
	rev    uint64 // revision of its last event
	hash   []byte // hash of its last event
	lastID string // id of its last event
	refs   uint64 // how many messages hold its events
	// open are the last refs%refChunk of them, in order; the others are
	// in refs/refChunk sealed chunks (chunkKey).
	open []msgRef
}

// msgRef is a message holding events of a stream, from revision first on.
type msgRef struct {
	seq   uint64
	first uint64
}

// index is a partition's index; its partition's mu guards it.
type index struct {
	mem map[string][]byte // without a kv store

	space *kv.Space // with one
	// hot are the recently used streams' heads, decoded; a nil head says
	// the stream is not in the index (a new stream is looked up more than
	// once: Absent, plan, fold). Every write goes through store, which
	// updates hot, so it is never stale.
	hot *lru.Cache[string, *streamIndex]
	// pending are the writes not committed to space yet, the last of each
	// key only, committed as one kv batch every indexCommitEvery keys
	// rather than one batch per write (the kv then holds them, pending
	// too, until it writes them to Pebble: pkg/kv, "Write-behind").
	pending map[string][]byte
	synced  *uint64 // the partition's: the position pending brings space to
	// written has every key set since space was emptied (nil: none). Every
	// new stream is looked up before its first append (Absent, the plan),
	// and the kv answered "not there" only after searching Pebble's
	// memtables (4 % of the all-in-one's CPU under load). The index is its
	// Space's only writer and empties it with written (reset), so a key
	// written never saw is not there, and the lookup needs no read.
	written *bloom.Filter
}

func newMemoryIndex() *index { return &index{mem: map[string][]byte{}} }

// lookup returns stream's entry; the caller must not change it.
func (x *index) lookup(stream string) (*streamIndex, bool, error) {
	if x.hot != nil {
		if si, ok := x.hot.Get(stream); ok {
			return si, si != nil, nil
		}
	}
	v, ok, err := x.get(stream)
	if err != nil {
		return nil, false, err
	}
	var si *streamIndex
	if ok {
		if si, err = decodeHead(v); err != nil {
			return nil, false, fmt.Errorf("jetstream: index entry of %s: %w", stream, err)
		}
	}
	if x.hot != nil {
		x.hot.Put(stream, si)
	}
	return si, ok, nil
}

// store writes stream's entry si (which the index keeps: the caller must
// not change it after), sealing its open refs into a chunk when they fill
// one.
func (x *index) store(stream string, si *streamIndex) error {
	if len(si.open) >= refChunk {
		if err := x.set(chunkKey(stream, si.refs/uint64(refChunk)-1), appendRefs(nil, si.open)); err != nil {
			return err
		}
		si.open = nil
	}
	if x.hot != nil {
		x.hot.Put(stream, si)
	}
	return x.set(stream, appendHead(nil, si))
}

// refsFrom is the refs of stream (whose entry is si) to the messages that
// may hold revisions >= rev, reading the sealed chunks it needs from the
// last one back.
func (x *index) refsFrom(stream string, si *streamIndex, rev uint64) ([]msgRef, error) {
	out := slices.Clone(si.open)
	for k := int64(si.refs/uint64(refChunk)) - 1; k >= 0 && (len(out) == 0 || out[0].first > rev); k-- {
		key := chunkKey(stream, uint64(k))
		v, ok, err := x.get(key)
		if err != nil {
			return nil, err
		}
		refs, err := decodeRefs(v)
		if err == nil && (!ok || len(refs) != refChunk) {
			err = fmt.Errorf("%d refs where %d were sealed", len(refs), refChunk)
		}
		if err != nil {
			return nil, fmt.Errorf("jetstream: index of %s, chunk %d: %w", stream, k, err)
		}
		out = append(refs, out...)
	}
	i := sort.Search(len(out), func(i int) bool { return out[i].first > rev })
	return out[max(i-1, 0):], nil
}

func (x *index) get(key string) ([]byte, bool, error) {
	if x.space == nil {
		v, ok := x.mem[key]
		return v, ok, nil
	}
	if x.written == nil || !x.written.MayHave(key) {
		return nil, false, nil
	}
	if v, ok := x.pending[key]; ok {
		return v, true, nil
	}
	return x.space.Get([]byte(key))
}

func (x *index) set(key string, v []byte) error {
	if x.space == nil {
		x.mem[key] = v
		return nil
	}
	if x.written == nil {
		x.written = bloom.New()
	}
	x.written.Add(key)
	if x.pending == nil {
		x.pending = make(map[string][]byte, indexCommitEvery)
	}
	x.pending[key] = v
	if len(x.pending) >= indexCommitEvery {
		return x.commit()
	}
	return nil
}

// commit writes the pending writes, if any, in one batch with the
// partition's last folded sequence as the Space's position: the kv is
// complete up to there.
func (x *index) commit() error {
	if len(x.pending) == 0 {
		return nil
	}
	b := x.space.Batch()
	defer b.Discard()
	for k, v := range x.pending {
		if err := b.Set([]byte(k), v); err != nil {
			return err
		}
	}
	x.pending = nil
	return b.Commit(*x.synced)
}

// reset empties the index.
func (x *index) reset() error {
	if x.space == nil {
		x.mem = map[string][]byte{}
		return nil
	}
	x.pending, x.written = nil, nil
	x.hot.Clear()
	return x.space.Reset(indexVersion)
}

// Keys. A stream's head is under its name, its sealed chunk k under the
// name, 0x00 and k (stream names never hold 0x00).
func chunkKey(stream string, k uint64) string {
	return string(binary.BigEndian.AppendUint32(append([]byte(stream), 0), uint32(k)))
}

// Encoding of a head:
//
//	uvarint rev
//	uvarint len, hash
//	uvarint len, lastID
//	uvarint refs
//	open refs (appendRefs)
//
// and of refs (a sealed chunk, or a head's open refs): for each, the
// sequence as a uvarint delta from the previous one's (from 0 for the
// first) and the first revision as a varint delta (a damaged stream, folded
// as stored, may go back).
func appendHead(b []byte, si *streamIndex) []byte {
	b = binary.AppendUvarint(b, si.rev)
	b = binary.AppendUvarint(b, uint64(len(si.hash)))
	b = append(b, si.hash...)
	b = binary.AppendUvarint(b, uint64(len(si.lastID)))
	b = append(b, si.lastID...)
	b = binary.AppendUvarint(b, si.refs)
	return appendRefs(b, si.open)
}

func appendRefs(b []byte, refs []msgRef) []byte {
	var seq, first uint64
	for _, r := range refs {
		b = binary.AppendUvarint(b, r.seq-seq)
		b = binary.AppendVarint(b, int64(r.first-first))
		seq, first = r.seq, r.first
	}
	return b
}

func decodeHead(b []byte) (*streamIndex, error) {
	d := kv.DecoderOf(b)
	si := &streamIndex{rev: d.Uint()}
	si.hash = slices.Clone(d.Raw())
	si.lastID = d.Str()
	si.refs = d.Uint()
	if d.Err() != nil {
		return nil, d.Err()
	}
	open, err := decodeRefs(d.Rest())
	if err != nil || uint64(len(open)) != si.refs%uint64(refChunk) {
		return nil, fmt.Errorf("%w: %d open refs of %d", kv.ErrCorrupt, len(open), si.refs)
	}
	si.open = open
	return si, nil
}

func decodeRefs(b []byte) ([]msgRef, error) {
	d := kv.DecoderOf(b)
	var out []msgRef
	var seq, first uint64
	for len(d.Rest()) > 0 && d.Err() == nil {
		seq += d.Uint()
		first += uint64(d.Int())
		out = append(out, msgRef{seq: seq, first: first})
	}
	return out, d.Err()
}

// Index names. Every store that keeps its index in a kv store claims a
// name there, under which it keeps a Space per partition: the service's
// for a writer, "<service>/read" for a read-only store, and "#2", "#3", …
// after it when a store of the same name is open (two read-only stores of
// a service, two writers in a test). A name is given back by Close, so the
// Spaces are reused (and emptied) by the next start rather than piling up.
var indexNames = struct {
	sync.Mutex
	taken map[*kv.DB]map[string]bool
}{taken: map[*kv.DB]map[string]bool{}}

func claimIndexName(db *kv.DB, base string) string {
	indexNames.Lock()
	defer indexNames.Unlock()
	taken := indexNames.taken[db]
	if taken == nil {
		taken = map[string]bool{}
		indexNames.taken[db] = taken
	}
	name := base
	for n := 2; taken[name]; n++ {
		name = base + "#" + strconv.Itoa(n)
	}
	taken[name] = true
	return name
}

func releaseIndexName(db *kv.DB, name string) {
	indexNames.Lock()
	defer indexNames.Unlock()
	delete(indexNames.taken[db], name)
	if len(indexNames.taken[db]) == 0 {
		delete(indexNames.taken, db)
	}
}
