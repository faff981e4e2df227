package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// TierView is this service's copy of each vendor's trust tier, projected
// from trust's TrustScoreChanged events (the latest wins). A vendor it has
// not seen is on the standard tier (domain.Policy.Tier).
type TierView struct {
	pos *projection.Position

	mu    sync.RWMutex
	store Store
	tiers map[string]string
}

// NewTierView returns an empty view.
func NewTierView() *TierView { return &TierView{pos: projection.New(), tiers: map[string]string{}} }

// Run projects trust's events until ctx ends.
func (v *TierView) Run(ctx context.Context, log *slog.Logger, store Store) {
	v.mu.Lock()
	v.store = store
	v.mu.Unlock()
	projection.Follow(ctx, log, store, 1, v.Apply)
}

// Apply applies one trust event.
func (v *TierView) Apply(rec eventstore.RecordedEvent) {
	defer v.pos.Advance(rec.Position)
	if rec.Type != string((&trustv1.TrustScoreChanged{}).ProtoReflect().Descriptor().FullName()) {
		return
	}
	ev, err := es.Decode(rec)
	if err != nil {
		return
	}
	e := ev.Payload.(*trustv1.TrustScoreChanged)
	v.mu.Lock()
	v.tiers[e.GetVendorId()] = e.GetTier()
	v.mu.Unlock()
}

// Tier returns a vendor's tier as last seen ("" if never), after waiting
// up to d for the view to catch up with trust's events stored now, so a
// decision sees a tier change that happened just before it. If trust's
// events cannot be read, the tier as known is used.
func (v *TierView) Tier(ctx context.Context, vendorID string, d time.Duration) string {
	v.mu.RLock()
	store := v.store
	v.mu.RUnlock()
	if store != nil {
		cctx, cancel := context.WithTimeout(ctx, d)
		if target, err := store.LastPosition(cctx); err == nil {
			v.pos.Reach(cctx, 0, target)
		}
		cancel()
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.tiers[vendorID]
}
