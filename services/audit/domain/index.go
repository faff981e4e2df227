package domain

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
)

// StreamRef names a stream in one service's store.
type StreamRef struct {
	Service string
	Stream  string
}

// String is "service/stream".
func (r StreamRef) String() string { return r.Service + "/" + r.Stream }

// compare orders refs by service, then stream.
func (r StreamRef) compare(o StreamRef) int {
	return cmp.Or(cmp.Compare(r.Service, o.Service), cmp.Compare(r.Stream, o.Stream))
}

// Entry is one stored event as the index keeps it: where the event is and
// what it is, not the event itself. Queries read the events they show from
// their stores again, so the index stays a small fixed size per event
// however large the payloads are.
type Entry struct {
	Service string
	Event   EventRef

	// Learnt from the payload, needed only until the entry is filed.
	buyer   string
	teaches []string
	order   string
}

// EventRef locates a stored event in its service's store.
type EventRef struct {
	Stream     string
	Revision   uint64
	Position   uint64
	RecordedAt time.Time
	Type       string
}

// Ref is the entry's stream.
func (e *Entry) Ref() StreamRef { return StreamRef{Service: e.Service, Stream: e.Event.Stream} }

// Order is the order the entry is filed under ("" while it is not linked).
func (e *Entry) Order() string { return e.order }

// before is the timeline order: recorded time, then service name, then
// position in the service's store. It is total, and within one stream it
// is revision order.
func before(a, b *Entry) bool {
	if !a.Event.RecordedAt.Equal(b.Event.RecordedAt) {
		return a.Event.RecordedAt.Before(b.Event.RecordedAt)
	}
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	return a.Event.Position < b.Event.Position
}

type orderEntries struct {
	id      string
	entries []*Entry // timeline order
	buyer   string
}

// streamSeen is what the index keeps of one stream: its name once, for
// every entry of it, and the hash of each revision as first seen, packed
// (hashSize bytes a revision; zeros where it saw none).
type streamSeen struct {
	ref    StreamRef
	hashes []byte
}

const hashSize = 32

// Index files every event of every service under the order it belongs to
// (see RefsOf for how). An event that names nothing known yet waits under
// each key it names and is filed as soon as an event ties one of them to an
// order, so the services' stores may be read in any interleaving.
//
// An Index holds everything in the heap. The service keeps its index in
// the read-model store instead (app/index.go), filing exactly as this one
// does: Index is the reference the stored index is tested against, and
// where the linking rules are pinned down (index_test.go).
//
// An Index is not safe for concurrent use.
type Index struct {
	orders  map[string]*orderEntries
	links   map[string]string   // key → order id
	pending map[string][]*Entry // key → events waiting for it
	seen    map[StreamRef]*streamSeen
	types   map[string]string // each event type's name, once
	count   int
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{orders: map[string]*orderEntries{}, links: map[string]string{},
		pending: map[string][]*Entry{}, seen: map[StreamRef]*streamSeen{}, types: map[string]string{}}
}

// Add files one stored event of service. payload is its decoded payload,
// or nil when it could not be decoded (a type this binary does not know):
// such an event is filed by its stream only, and shown with why when read
// again (Render).
func (x *Index) Add(service string, ev eventstore.RecordedEvent, payload proto.Message) {
	x.count++
	st := x.see(StreamRef{Service: service, Stream: ev.Stream}, ev)
	typ, ok := x.types[ev.Type]
	if !ok {
		typ = ev.Type
		x.types[typ] = typ
	}
	refs := RefsOf(ev.Stream, payload)
	e := &Entry{Service: st.ref.Service, buyer: refs.BuyerID, teaches: teaches(payload),
		Event: EventRef{Stream: st.ref.Stream, Revision: ev.Revision, Position: ev.Position, RecordedAt: ev.RecordedAt, Type: typ}}
	if refs.OrderID != "" {
		x.attach(e, refs.OrderID)
		return
	}
	for _, k := range refs.Keys {
		if o, ok := x.links[k]; ok {
			x.attach(e, o)
			return
		}
	}
	for _, k := range refs.Keys {
		x.pending[k] = append(x.pending[k], e)
	}
}

// attach files e under orderID, learns the ids it names, and files every
// event that was waiting for one of them.
func (x *Index) attach(e *Entry, orderID string) {
	type job struct {
		e     *Entry
		order string
	}
	work := []job{{e, orderID}}
	for len(work) > 0 {
		j := work[len(work)-1]
		work = work[:len(work)-1]
		if j.e.order != "" {
			continue // also waited under another key, filed already
		}
		oe := x.orders[j.order]
		if oe == nil {
			oe = &orderEntries{id: j.order}
			x.orders[j.order] = oe
		}
		j.e.order = oe.id
		list := oe.entries
		i := sort.Search(len(list), func(i int) bool { return before(j.e, list[i]) })
		oe.entries = slices.Insert(list, i, j.e)
		if oe.buyer == "" {
			oe.buyer = j.e.buyer
		}
		for _, k := range append([]string{streamKey(j.order)}, j.e.teaches...) {
			if _, known := x.links[k]; known {
				continue // the first order to claim an id keeps it
			}
			x.links[k] = j.order
			for _, p := range x.pending[k] {
				work = append(work, job{p, j.order})
			}
			delete(x.pending, k)
		}
		j.e.buyer, j.e.teaches = "", nil // learnt: no longer needed
	}
}

// OrderView is what the index holds of one order.
type OrderView struct {
	ID string
	// BuyerID is the buyer_id of the order's events (empty if none has one).
	BuyerID string
	// Entries in timeline order. The entries are shared: do not change them.
	Entries []*Entry
}

// Order returns what the index holds of an order.
func (x *Index) Order(id string) (OrderView, bool) {
	oe, ok := x.orders[id]
	if !ok {
		return OrderView{}, false
	}
	return OrderView{ID: id, BuyerID: oe.buyer, Entries: slices.Clone(oe.entries)}, true
}

// OrdersOf returns the orders whose buyer is buyerID (the first buyer_id
// their events named), sorted.
func (x *Index) OrdersOf(buyerID string) []string {
	var out []string
	for id, oe := range x.orders {
		if buyerID != "" && oe.buyer == buyerID {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Streams are the streams an order's events are in, sorted by service,
// then stream.
func (v OrderView) Streams() []StreamRef {
	set := map[StreamRef]bool{}
	for _, e := range v.Entries {
		set[e.Ref()] = true
	}
	out := make([]StreamRef, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.SortFunc(out, StreamRef.compare)
	return out
}

// StreamsOf returns the order's streams in service's store whose aggregate
// is aggregate ("fulfilment" for "fulfilment-<id>"), as ids.
func (v OrderView) StreamsOf(service, aggregate string) []string {
	var ids []string
	for _, r := range v.Streams() {
		if r.Service != service {
			continue
		}
		if agg, id, err := eventstore.SplitStream(r.Stream); err == nil && agg == aggregate {
			ids = append(ids, id)
		}
	}
	return ids
}

// see remembers the hash of each revision of each stream as first seen.
func (x *Index) see(ref StreamRef, ev eventstore.RecordedEvent) *streamSeen {
	st := x.seen[ref]
	if st == nil {
		st = &streamSeen{ref: ref}
		x.seen[ref] = st
	}
	at := ev.Revision * hashSize
	if need := at + hashSize; uint64(len(st.hashes)) < need {
		st.hashes = append(st.hashes, make([]byte, need-uint64(len(st.hashes)))...)
	}
	if h := st.hashes[at : at+hashSize]; isZero(h) { // the first sighting is the anchor
		copy(h, ev.Hash)
	}
	return st
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Seen returns the hash of each revision of a stream as the index first
// saw it (nil where it saw none), whichever orders the events belong to.
// Verification compares the store with it: a history that got shorter, or
// that was rewritten with a recomputed chain while the index was watching,
// does not match.
func (x *Index) Seen(r StreamRef) [][]byte {
	st := x.seen[r]
	if st == nil {
		return nil
	}
	out := make([][]byte, len(st.hashes)/hashSize)
	for i := range out {
		if h := st.hashes[i*hashSize : (i+1)*hashSize]; !isZero(h) {
			out[i] = slices.Clone(h)
		}
	}
	return out
}

// Stats counts what the index holds.
type Stats struct {
	Events int // every event added
	Orders int
	// Unlinked are events not (yet) filed under any order: catalog
	// products, vendor trust, payout runs, and anything still waiting.
	Unlinked int
}

// Stats returns the index's counts.
func (x *Index) Stats() Stats {
	s := Stats{Events: x.count, Orders: len(x.orders)}
	linked := 0
	for _, oe := range x.orders {
		linked += len(oe.entries)
	}
	s.Unlinked = x.count - linked
	return s
}

// IsUnknownType reports whether a payload error is that of a type the
// binary does not know.
func IsUnknownType(payloadErr string) bool { return strings.HasPrefix(payloadErr, UnknownTypePrefix) }

// UnknownTypePrefix starts the PayloadError of events of unknown types.
const UnknownTypePrefix = "(unknown type)"

// OrderOf is the order an event with these refs is filed under, as far as
// the index knows: its order_id, else the order an id it names is tied to;
// "" if none.
func (x *Index) OrderOf(refs Refs) string {
	if refs.OrderID != "" {
		return refs.OrderID
	}
	for _, k := range refs.Keys {
		if o, ok := x.links[k]; ok {
			return o
		}
	}
	return ""
}
