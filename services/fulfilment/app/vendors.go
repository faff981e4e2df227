package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
)

// VendorTimes is the handling time of every vendor that set one, folded
// from the catalog's events (VendorRegistered, VendorHandlingTimeSet): the
// ship-by deadline of a vendor's part is its confirmation plus the
// vendor's handling time, or Config.HandlingTime for a vendor without one.
// It holds one duration per such vendor, nothing per event.
type VendorTimes struct {
	pos *projection.Position

	mu    sync.RWMutex
	times map[string]time.Duration
}

// NewVendorTimes returns an empty view.
func NewVendorTimes() *VendorTimes {
	return &VendorTimes{pos: projection.New(), times: map[string]time.Duration{}}
}

// Position is the view's progress through the catalog's events; the
// platform's runtime marks it ready once the view has caught up.
func (v *VendorTimes) Position() *projection.Position { return v.pos }

// vendorTimeTypes are the catalog events the view decodes; the others
// only advance its position.
var vendorTimeTypes = map[string]bool{}

func init() {
	for _, t := range projection.EventTypes(&catalogv1.VendorRegistered{}, &catalogv1.VendorHandlingTimeSet{}) {
		vendorTimeTypes[t] = true
	}
}

// Apply folds one catalog event.
func (v *VendorTimes) Apply(e eventstore.RecordedEvent) {
	defer v.pos.Advance(e.Position)
	if !vendorTimeTypes[e.Type] {
		return
	}
	ev, err := es.Decode(e)
	if err != nil {
		return
	}
	var vendor string
	var d time.Duration
	switch p := ev.Payload.(type) {
	case *catalogv1.VendorRegistered:
		vendor, d = p.GetVendorId(), p.GetHandlingTime().AsDuration()
	case *catalogv1.VendorHandlingTimeSet:
		vendor, d = p.GetVendorId(), p.GetHandlingTime().AsDuration()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if d > 0 {
		v.times[vendor] = d
	} else {
		delete(v.times, vendor) // the platform's default
	}
}

// Of is vendorID's handling time, if it set one.
func (v *VendorTimes) Of(vendorID string) (time.Duration, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	d, ok := v.times[vendorID]
	return d, ok
}

// errVendorTimesBehind: the view is catching up with the catalog's events
// after a start; the event is retried rather than given the default.
var errVendorTimesBehind = errors.New("the vendors' handling times are still catching up with the catalog's events")

// handlingTime is how long vendorID has to ship a part confirmed now: its
// own handling time, else Config.HandlingTime. While the view catches up
// after a start it waits (bounded by ReadWait) rather than answer the
// default for a vendor it has not reached yet; with no catalog event at
// all (no catalog has run) every vendor has the default.
func (s *Service) handlingTime(ctx context.Context, vendorID string) (time.Duration, error) {
	if pos, ready := s.vendors.Position().Get(); !ready && pos > 0 {
		if !s.vendors.Position().WaitFor(ctx, s.cfg.ReadWait, func(_ uint64, ready bool) bool { return ready }) {
			return 0, errVendorTimesBehind
		}
	}
	if d, ok := s.vendors.Of(vendorID); ok {
		return d, nil
	}
	return s.cfg.HandlingTime, nil
}
