package app

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// TrackingIndex maps a carrier's tracking number to the orders a part of
// which shipped with it, projected from the fulfilment store's
// FulfilmentShipped events (the fulfilment service owns shipments; the
// order service only reads its events, as the catalog view reads the
// catalog's). It holds order ids, nothing else of an order: ListOrders
// looks them up in the ReadModel. It is a stored read model of its own
// (platform.Stored), since its position is in another store than the
// orders'; its space holds a key per shipped order and tracking number:
//
//	<carrier> 0x00 <normalised tracking number> 0x00 <order id>
type TrackingIndex struct {
	pos   *projection.Position
	space atomic.Pointer[kv.Space] // set by Attach, before any event
}

// NewTrackingIndex returns an index with no space yet (Attach gives it
// one).
func NewTrackingIndex() *TrackingIndex {
	return &TrackingIndex{pos: projection.New()}
}

// Position is the index's progress through the fulfilment store.
func (x *TrackingIndex) Position() *projection.Position { return x.pos }

// Version names the shape of what the index stores (platform.Stored).
func (x *TrackingIndex) Version() string { return "tracking-kv-1" }

// Attach gives the index its space (platform.Stored).
func (x *TrackingIndex) Attach(s *kv.Space) error {
	x.space.Store(s)
	return nil
}

var fulfilmentShipped = es.EventType(&fulfilmentv1.FulfilmentShipped{})

// NormaliseTrackingNumber drops spaces and dashes and upper-cases letters,
// as the fulfilment service does before it records a tracking number, so
// that "1z 999-aa1" finds what was shipped as "1Z999AA1".
func NormaliseTrackingNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// trackingPrefix is the prefix of the keys of carrier's tracking number.
func trackingPrefix(carrier, number string) []byte {
	return []byte(carrier + "\x00" + NormaliseTrackingNumber(number) + "\x00")
}

// Apply applies one event of the fulfilment store: every event moves the
// position, a FulfilmentShipped adds its order under its tracking number
// (once, whatever the number of its parts shipped with it).
func (x *TrackingIndex) Apply(rec eventstore.RecordedEvent) {
	defer x.pos.Advance(rec.Position)
	b := x.space.Load().Batch()
	defer b.Discard()
	if rec.Type == fulfilmentShipped {
		if ev, err := es.Decode(rec); err == nil {
			if e, ok := ev.Payload.(*fulfilmentv1.FulfilmentShipped); ok && e.GetOrderId() != "" && e.GetTrackingNumber() != "" {
				_ = b.Set(append(trackingPrefix(e.GetCarrier(), e.GetTrackingNumber()), e.GetOrderId()...), nil)
			}
		}
	}
	if err := b.Commit(rec.Position); err != nil {
		panic(fmt.Errorf("tracking index: %w", err)) // following cannot go on correctly
	}
}

// Orders returns the ids of the orders shipped with carrier's tracking
// number, in id order.
func (x *TrackingIndex) Orders(carrier, number string) ([]string, error) {
	s := x.space.Load()
	if s == nil {
		return nil, nil
	}
	prefix := trackingPrefix(carrier, number)
	var ids []string
	err := s.Scan(prefix, kv.PrefixEnd(prefix), false, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	return ids, err
}
