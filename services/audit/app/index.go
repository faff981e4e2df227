package app

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/lru"
	"github.com/custody/custody/services/audit/domain"
)

// IndexVersion names the shape of what the stored index keeps
// (platform.Stored): bump it when a key or a value below changes.
const IndexVersion = "audit-index-3"

// index is the order index kept in the read-model store (pkg/kv), not in
// the heap. It files events exactly as domain.Index does (the same links,
// the same waiting under ids, the first order to claim an id keeps it), and
// is tested against it.
//
// Each indexed store is one projection of the platform with a space of its
// own ("audit/order index (<service>)"): its position, its counts and the
// hashes of its streams. What the stores share — the ids tied to orders,
// the orders and their buyers, the events waiting for an id, the filings —
// is in ONE space beside them (sharedSpace), so that looking an id or an
// order up is one read, not one per store. An event's changes to both
// spaces are written in one batch with its position (kv.Batch.In); since
// the spaces share one store (one log), a crash leaves a prefix of the
// batches, so what the index holds is always that of a prefix of the
// events applied, whole.
//
// Keys (<s> a length-prefixed string, <n> 8 bytes big endian, <t> a
// recorded time as big-endian nanoseconds since 1970 with the sign bit
// flipped, so keys sort by time). In a store's space:
//
//	h<stream>\x00<rev n>                 hash of a revision of its streams, as first seen (32 bytes)
//	c                                    counts: events, filings, orders, skipped (uvarints)
//
// In the shared space:
//
//	l<key>                               the order key is tied to (claimed by an event),
//	                                     or empty: events wait for key
//	p<key s><service>\x00<position n>    an event waiting for key (pendingValue)
//	o<order s><t><service>\x00<position n> an event filed under order (stream, revision, type)
//	r<order>                             an order the index knows, and its buyer ("": none yet)
//	b<buyer s><order>                    an order of the buyer (empty value): the buyer's orders
//	m<service>\x00<position n>           a waiting event that was filed
//
// When an id is tied to an order, the events waiting for it are filed and
// their p keys under it deleted; an event that waited under several ids
// keeps its p keys under the others, and its m key says it was filed.
type index struct {
	services []string               // in scan order
	spaces   map[string]*indexSpace // attached
	shared   *kv.Space              // sharedSpace, from the first attach

	// Read-through caches of what is stored: keys tied to orders, and the
	// buyer of known orders. They only ever grow into what the spaces
	// hold, so they are cleared only when a space is attached.
	links  *lru.Cache[string, string]
	buyers *lru.Cache[string, string]
	// The next revision of the streams seen last ("<service>\x00<stream>"):
	// an event of that revision is one whose hash the index has not seen,
	// so its h key is written without being read first.
	revs *lru.Cache[string, uint64]
}

// cacheSize bounds each of index's caches.
const cacheSize = 8192

// indexSpace is one store's space and its counts as stored.
type indexSpace struct {
	service string
	space   *kv.Space
	counts  indexCounts
}

type indexCounts struct{ events, filed, orders, skipped uint64 }

var countsKey = []byte("c")

// sharedSpace is the name of the space the stores' parts of the index
// share (no projection of the audit module is named so).
const sharedSpace = "audit/order index (all stores)"

func newIndex(services []string) *index {
	return &index{services: services, spaces: map[string]*indexSpace{},
		links: lru.New[string, string](cacheSize), buyers: lru.New[string, string](cacheSize), revs: lru.New[string, uint64](cacheSize)}
}

// attach gives service's events their space (the platform has emptied it
// if it was of another version or past the store's end).
//
// The first attach also opens the shared space, and empties it when it was
// written by another IndexVersion (every store's space is then of another
// version too, and the platform empties them).
func (x *index) attach(service string, s *kv.Space) error {
	if x.shared == nil {
		sh, err := s.Sibling(sharedSpace)
		if err != nil {
			return err
		}
		if _, v, err := sh.State(); err != nil {
			return err
		} else if v != IndexVersion {
			if err := sh.Reset(IndexVersion); err != nil {
				return err
			}
		}
		x.shared = sh
	}
	sp := &indexSpace{service: service, space: s}
	v, ok, err := s.Get(countsKey)
	if err != nil {
		return err
	}
	if ok {
		for _, p := range []*uint64{&sp.counts.events, &sp.counts.filed, &sp.counts.orders, &sp.counts.skipped} {
			n, w := binary.Uvarint(v)
			if w <= 0 {
				return fmt.Errorf("audit index (%s): bad counts %x", service, v)
			}
			*p, v = n, v[w:]
		}
	}
	x.spaces[service] = sp
	x.links.Clear()
	x.buyers.Clear()
	x.revs.Clear()
	return nil
}

// space is service's space; a feed without one is a wiring mistake.
func (x *index) space(service string) *indexSpace {
	sp := x.spaces[service]
	if sp == nil {
		panic(fmt.Sprintf("audit index: %s events applied before their space was attached", service))
	}
	return sp
}

// reader reads the shared space as the index stands: in the batch of the
// event being applied, else as stored.
type reader struct {
	x  *index
	in *kv.BatchIn // nil: no batch
}

func (r reader) get(key []byte) ([]byte, bool, error) {
	if r.in != nil {
		return r.in.Get(key)
	}
	if r.x.shared == nil {
		return nil, false, nil // nothing attached: nothing indexed
	}
	return r.x.shared.Get(key)
}

// link is the order key is tied to ("" none), and, when none, whether
// events wait for key (an l key with an empty value).
func (r reader) link(key string) (order string, waiting bool, err error) {
	if o, ok := r.x.links.Get(key); ok {
		return o, false, nil
	}
	v, ok, err := r.get(linkKey(key))
	switch {
	case err != nil:
		return "", false, err
	case ok && len(v) > 0:
		r.x.links.Put(key, string(v))
		return string(v), false, nil
	}
	return "", ok, nil
}

// buyer is the buyer of order and whether the index knows the order.
func (r reader) buyer(order string) (string, bool, error) {
	if b, ok := r.x.buyers.Get(order); ok {
		return b, true, nil
	}
	v, known, err := r.get(orderRecordKey(order))
	if err != nil || !known {
		return "", false, err
	}
	r.x.buyers.Put(order, string(v))
	return string(v), true, nil
}

// add files one event of service (see domain.Index.Add) and commits its
// changes with its position.
func (x *index) add(service string, ev eventstore.RecordedEvent, payload proto.Message) error {
	sp := x.space(service)
	b := sp.space.Batch()
	defer b.Discard()
	r := reader{x: x, in: b.In(x.shared)}
	counts := sp.counts
	counts.events++

	// The hash of the revision, as first seen.
	h := make([]byte, 32)
	copy(h, ev.Hash)
	hk := hashKey(ev.Stream, ev.Revision)
	rk := service + "\x00" + ev.Stream
	set := false
	if next, ok := x.revs.Get(rk); ok && next == ev.Revision {
		set = true // the stream's next revision: not seen yet
	} else {
		old, ok, err := b.Get(hk)
		if err != nil {
			return err
		}
		set = !ok || (isZero(old) && !isZero(h))
	}
	if set {
		if err := b.Set(hk, h); err != nil {
			return err
		}
	}
	x.revs.Put(rk, ev.Revision+1)

	refs := domain.RefsOf(ev.Stream, payload)
	e := pending{service: service, position: ev.Position, stream: ev.Stream, revision: ev.Revision,
		nanos: ev.RecordedAt.UnixNano(), typ: ev.Type, buyer: refs.BuyerID, teaches: domain.Teaches(payload)}
	order := refs.OrderID
	for _, k := range refs.Keys {
		if order != "" {
			break
		}
		var err error
		if order, _, err = r.link(k); err != nil {
			return err
		}
	}
	if order == "" {
		v := e.encode()
		for _, k := range refs.Keys {
			if err := r.in.Set(pendingKey(k, service, ev.Position), v); err != nil {
				return err
			}
			if err := r.in.Set(linkKey(k), nil); err != nil { // events wait for k
				return err
			}
		}
	} else if err := x.file(r, &counts, e, order); err != nil {
		return err
	}
	return x.commit(sp, b, counts, ev.Position)
}

// skipped counts an event the store delivered that cannot be read, and
// moves the position past it.
func (x *index) skipped(service string, pos uint64) error {
	sp := x.space(service)
	b := sp.space.Batch()
	defer b.Discard()
	counts := sp.counts
	counts.skipped++
	return x.commit(sp, b, counts, pos)
}

func (x *index) commit(sp *indexSpace, b *kv.Batch, counts indexCounts, pos uint64) error {
	v := make([]byte, 0, 4*binary.MaxVarintLen64)
	for _, n := range []uint64{counts.events, counts.filed, counts.orders, counts.skipped} {
		v = binary.AppendUvarint(v, n)
	}
	if err := b.Set(countsKey, v); err != nil {
		return err
	}
	if err := b.Commit(pos); err != nil {
		return err
	}
	sp.counts = counts
	return nil
}

// file files e under order, ties the ids it names to order, and files
// every event waiting for one of them (domain.Index.attach), all in the
// batch of r.
func (x *index) file(r reader, counts *indexCounts, e pending, order string) error {
	b := r.in
	type job struct {
		e       pending
		waiting bool // found waiting under an id
	}
	work := []job{{e: e}}
	for len(work) > 0 {
		j := work[len(work)-1]
		work = work[:len(work)-1]
		if j.waiting {
			mk := markKey(j.e.service, j.e.position)
			if _, filed, err := r.get(mk); err != nil {
				return err
			} else if filed {
				continue // also waited under another id, filed already
			}
			if err := b.Set(mk, nil); err != nil {
				return err
			}
		}
		// Whether the index knows order, and its buyer. The first event
		// filed under an order claims the order's stream key unless another
		// order has: when nobody has, the order is new.
		sk := domain.StreamKey(order)
		skOrder, skWait, skLooked := "", false, false
		buyer, known := x.buyers.Get(order)
		if !known {
			var err error
			if skOrder, skWait, err = r.link(sk); err != nil {
				return err
			}
			skLooked = true
			if skOrder != "" {
				if buyer, known, err = r.buyer(order); err != nil {
					return err
				}
			}
		}
		if !known || (buyer == "" && j.e.buyer != "") {
			if !known {
				counts.orders++
			}
			if buyer == "" {
				buyer = j.e.buyer
			}
			if err := b.Set(orderRecordKey(order), []byte(buyer)); err != nil {
				return err
			}
			if buyer != "" {
				if err := b.Set(buyerOrderKey(buyer, order), nil); err != nil {
					return err
				}
			}
			x.buyers.Put(order, buyer)
		}
		if err := b.Set(filingKey(order, j.e.nanos, j.e.service, j.e.position), j.e.filingValue()); err != nil {
			return err
		}
		counts.filed++
		for i, k := range append([]string{sk}, j.e.teaches...) {
			o, waits := skOrder, skWait
			if i > 0 || !skLooked {
				var err error
				if o, waits, err = r.link(k); err != nil {
					return err
				}
			}
			if o != "" {
				continue // the first order to claim an id keeps it
			}
			if err := b.Set(linkKey(k), []byte(order)); err != nil {
				return err
			}
			x.links.Put(k, order)
			if !waits {
				continue
			}
			waiting, err := x.waitingFor(b, k)
			if err != nil {
				return err
			}
			for _, p := range waiting {
				work = append(work, job{e: p, waiting: true})
			}
		}
	}
	return nil
}

// waitingFor are the events that wait for key, as committed (the event
// being applied, which is being filed, waits for nothing), in the order of
// the services, then of their positions; their p keys under key are
// deleted in b (key is tied now: nothing looks for them again).
func (x *index) waitingFor(b *kv.BatchIn, key string) ([]pending, error) {
	var out []pending
	var keys [][]byte
	prefix := pendingPrefix(key)
	var derr error
	err := x.shared.Scan(prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) bool {
		tail := k[len(prefix):]
		if len(tail) < 1+8 || tail[len(tail)-9] != 0 {
			derr = errBadValue
			return false
		}
		p, err := decodePending(string(tail[:len(tail)-9]), binary.BigEndian.Uint64(tail[len(tail)-8:]), v)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, p)
		keys = append(keys, bytes.Clone(k))
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b pending) int {
		if a.service != b.service {
			return compare(slices.Index(x.services, a.service), slices.Index(x.services, b.service))
		}
		return compare(a.position, b.position)
	})
	return out, nil
}

// order returns what the index holds of an order.
func (x *index) order(id string) (domain.OrderView, bool, error) {
	prefix := filingPrefix(id)
	end := kv.PrefixEnd(prefix)
	type filed struct {
		nanos int64
		e     *domain.Entry
	}
	var all []filed
	if x.shared != nil {
		var derr error
		err := x.shared.Scan(prefix, end, false, func(k, v []byte) bool {
			f, e, err := decodeFiling(k[len(prefix):], v)
			if err != nil {
				derr = err
				return false
			}
			all = append(all, filed{f, e})
			return true
		})
		if err = errors.Join(err, derr); err != nil {
			return domain.OrderView{}, false, err
		}
	}
	if len(all) == 0 {
		return domain.OrderView{}, false, nil
	}
	// Timeline order: recorded time, service, position (domain's before).
	slices.SortFunc(all, func(a, b filed) int {
		switch {
		case a.nanos != b.nanos:
			return compare(a.nanos, b.nanos)
		case a.e.Service != b.e.Service:
			return compare(a.e.Service, b.e.Service)
		}
		return compare(a.e.Event.Position, b.e.Event.Position)
	})
	buyer, _, err := reader{x: x}.buyer(id)
	if err != nil {
		return domain.OrderView{}, false, err
	}
	v := domain.OrderView{ID: id, BuyerID: buyer, Entries: make([]*domain.Entry, len(all))}
	for i, f := range all {
		v.Entries[i] = f.e
	}
	return v, true, nil
}

func compare[T int | int64 | uint64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seen returns the hash of each revision of a stream as first seen (nil
// where none was seen), as domain.Index.Seen.
func (x *index) seen(ref domain.StreamRef) ([][]byte, error) {
	sp := x.spaces[ref.Service]
	if sp == nil {
		return nil, nil
	}
	prefix := hashPrefix(ref.Stream)
	var out [][]byte
	err := sp.space.Scan(prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) bool {
		rev := binary.BigEndian.Uint64(k[len(prefix):])
		for uint64(len(out)) <= rev {
			out = append(out, nil)
		}
		if !isZero(v) {
			out[rev] = bytes.Clone(v)
		}
		return true
	})
	return out, err
}

// ordersOf returns the orders of buyer the index knows, sorted, as
// domain.Index.OrdersOf.
func (x *index) ordersOf(buyer string) ([]string, error) {
	if x.shared == nil || buyer == "" {
		return nil, nil
	}
	prefix := buyerOrderPrefix(buyer)
	var out []string
	err := x.shared.Scan(prefix, kv.PrefixEnd(prefix), false, func(k, _ []byte) bool {
		out = append(out, string(k[len(prefix):]))
		return true
	})
	return out, err
}

// orderOf is the order an event with these refs is filed under, as far as
// the index knows ("" if none): domain.Index.OrderOf.
func (x *index) orderOf(refs domain.Refs) (string, error) {
	if refs.OrderID != "" {
		return refs.OrderID, nil
	}
	for _, k := range refs.Keys {
		o, _, err := reader{x: x}.link(k)
		if err != nil || o != "" {
			return o, err
		}
	}
	return "", nil
}

// stats sums the spaces' counts.
func (x *index) stats() (domain.Stats, int) {
	var c indexCounts
	for _, sp := range x.spaces {
		c.events += sp.counts.events
		c.filed += sp.counts.filed
		c.orders += sp.counts.orders
		c.skipped += sp.counts.skipped
	}
	return domain.Stats{Events: int(c.events), Orders: int(c.orders), Unlinked: int(c.events - c.filed)}, int(c.skipped)
}

// pending is an event as the index files it.
type pending struct {
	service  string
	position uint64
	stream   string
	revision uint64
	nanos    int64
	typ      string
	// Learnt from the payload, needed until it is filed.
	buyer   string
	teaches []string
}

// encode is the value of a p key: stream, revision, time, type, buyer,
// then the ids it teaches.
func (p pending) encode() []byte {
	v := p.filingValue()
	v = binary.AppendVarint(v, p.nanos)
	v = appendString(v, p.buyer)
	v = binary.AppendUvarint(v, uint64(len(p.teaches)))
	for _, t := range p.teaches {
		v = appendString(v, t)
	}
	return v
}

// filingValue is the value of an o key: stream, revision, type.
func (p pending) filingValue() []byte {
	v := make([]byte, 0, 3+len(p.stream)+binary.MaxVarintLen64+len(p.typ))
	v = appendString(v, p.stream)
	v = binary.AppendUvarint(v, p.revision)
	return appendString(v, p.typ)
}

var errBadValue = errors.New("audit index: bad stored value")

func decodePending(service string, pos uint64, v []byte) (pending, error) {
	p := pending{service: service, position: pos}
	d := kv.DecoderOf(v)
	p.stream = d.Str()
	p.revision = d.Uint()
	p.typ = d.Str()
	p.nanos = d.Int()
	p.buyer = d.Str()
	p.teaches = d.Strs()
	return p, d.Err()
}

// decodeFiling reads an o key's tail (<t><service>\x00<position n>) and
// value.
func decodeFiling(tail, v []byte) (int64, *domain.Entry, error) {
	if len(tail) < 8+1+8 {
		return 0, nil, errBadValue
	}
	nanos := int64(binary.BigEndian.Uint64(tail) ^ (1 << 63))
	svc := tail[8 : len(tail)-9]
	if tail[len(tail)-9] != 0 {
		return 0, nil, errBadValue
	}
	d := kv.DecoderOf(v)
	e := &domain.Entry{Service: string(svc), Event: domain.EventRef{Stream: d.Str(), Revision: d.Uint(),
		Position: binary.BigEndian.Uint64(tail[len(tail)-8:]), RecordedAt: time.Unix(0, nanos).UTC()}}
	e.Event.Type = d.Str()
	return nanos, e, d.Err()
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func hashPrefix(stream string) []byte {
	return append(append([]byte{'h'}, stream...), 0)
}

func hashKey(stream string, rev uint64) []byte {
	return binary.BigEndian.AppendUint64(hashPrefix(stream), rev)
}

func pendingPrefix(key string) []byte { return appendString([]byte{'p'}, key) }

func pendingKey(key, service string, pos uint64) []byte {
	k := append(append(pendingPrefix(key), service...), 0)
	return binary.BigEndian.AppendUint64(k, pos)
}

func filingPrefix(order string) []byte { return appendString([]byte{'o'}, order) }

func filingKey(order string, nanos int64, service string, pos uint64) []byte {
	k := binary.BigEndian.AppendUint64(filingPrefix(order), uint64(nanos)^(1<<63))
	k = append(append(k, service...), 0)
	return binary.BigEndian.AppendUint64(k, pos)
}

func linkKey(key string) []byte { return append([]byte{'l'}, key...) }

func orderRecordKey(order string) []byte { return append([]byte{'r'}, order...) }

func buyerOrderPrefix(buyer string) []byte { return appendString([]byte{'b'}, buyer) }

func buyerOrderKey(buyer, order string) []byte { return append(buyerOrderPrefix(buyer), order...) }

func markKey(service string, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(append([]byte{'m'}, service...), 0), pos)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
