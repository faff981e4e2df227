package app

import (
	"encoding/gob"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// TrackingIndex maps a carrier's tracking number to the orders a part of
// which shipped with it, projected from the fulfilment store's
// FulfilmentShipped events (the fulfilment service owns shipments; the
// order service only reads its events, as the catalog view reads the
// catalog's). It holds order ids, nothing else of an order: ListOrders
// looks them up in the ReadModel. It is a platform.Checkpointer of its own,
// since its position is in another store than the orders'.
type TrackingIndex struct {
	pos *projection.Position

	mu     sync.RWMutex
	orders map[string][]string // trackingKey → order ids, each once
}

// NewTrackingIndex returns an empty index.
func NewTrackingIndex() *TrackingIndex {
	return &TrackingIndex{pos: projection.New(), orders: map[string][]string{}}
}

// Position is the index's progress through the fulfilment store.
func (x *TrackingIndex) Position() *projection.Position { return x.pos }

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

func trackingKey(carrier, number string) string {
	return carrier + "\x00" + NormaliseTrackingNumber(number)
}

// Apply applies one event of the fulfilment store.
func (x *TrackingIndex) Apply(rec eventstore.RecordedEvent) {
	defer x.pos.Advance(rec.Position)
	if rec.Type != fulfilmentShipped {
		return
	}
	ev, err := es.Decode(rec)
	if err != nil {
		return
	}
	e, ok := ev.Payload.(*fulfilmentv1.FulfilmentShipped)
	if !ok || e.GetOrderId() == "" || e.GetTrackingNumber() == "" {
		return
	}
	k := trackingKey(e.GetCarrier(), e.GetTrackingNumber())
	x.mu.Lock()
	defer x.mu.Unlock()
	if !slices.Contains(x.orders[k], e.GetOrderId()) {
		x.orders[k] = append(x.orders[k], e.GetOrderId())
	}
}

// Orders returns the ids of the orders shipped with carrier's tracking
// number (a copy).
func (x *TrackingIndex) Orders(carrier, number string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.orders[trackingKey(carrier, number)])
}

// Version names the checkpoint's shape (platform.Checkpointer): the map of
// tracking keys to order ids, gob-encoded. Bump it when that changes.
func (x *TrackingIndex) Version() string { return "tracking-1" }

// Save writes the index.
func (x *TrackingIndex) Save(w io.Writer) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return gob.NewEncoder(w).Encode(x.orders)
}

// Load replaces the state of an empty index with what Save wrote; on error
// it leaves the index as it was.
func (x *TrackingIndex) Load(r io.Reader) error {
	orders := map[string][]string{}
	if err := gob.NewDecoder(r).Decode(&orders); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.orders = orders
	return nil
}
