package app

import (
	"context"
	"encoding/gob"
	"io"
	"sync"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// TierView is this service's copy of each vendor's trust tier, projected
// from trust's TrustScoreChanged events (the latest wins). A vendor it has
// not seen is on the standard tier (domain.Policy.Tier). It is a
// platform.Checkpointer, held in the heap: it keeps one short string per
// vendor ever scored (the latest wins), which grows with the vendors, not
// with the events, so it stays there rather than in the read-model store.
type TierView struct {
	pos *projection.Position

	mu    sync.RWMutex
	tiers map[string]string
}

// NewTierView returns an empty view.
func NewTierView() *TierView { return &TierView{pos: projection.New(), tiers: map[string]string{}} }

// Position is the trust store position of the last event applied.
func (v *TierView) Position() *projection.Position { return v.pos }

var scoreChanged = es.EventType(&trustv1.TrustScoreChanged{})

// Apply applies one trust event.
func (v *TierView) Apply(rec eventstore.RecordedEvent) {
	defer v.pos.Advance(rec.Position)
	if rec.Type != scoreChanged {
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

// Tier returns a vendor's tier as last seen ("" if never).
func (v *TierView) Tier(vendorID string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.tiers[vendorID]
}

// tier returns a vendor's tier after waiting (at most ReadWait) for the
// view to catch up with trust's events stored now, so a decision sees a
// tier change that happened just before it. If trust's events cannot be
// read, the tier as known is used.
func (s *Service) tier(ctx context.Context, vendorID string) string {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadWait)
	defer cancel()
	_ = s.trust.CatchUp(ctx, s.tiers.pos) // else the tier as known
	return s.tiers.Tier(vendorID)
}

// Version names the checkpoint's shape (platform.Checkpointer): the
// vendors' tiers, gob-encoded. Bump it when that changes.
func (v *TierView) Version() string { return "tiers-1" }

// Save writes the view's state: each vendor's tier.
func (v *TierView) Save(w io.Writer) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return gob.NewEncoder(w).Encode(v.tiers)
}

// Load replaces the state of an empty view with what Save wrote; on error
// it leaves the view as it was.
func (v *TierView) Load(r io.Reader) error {
	var tiers map[string]string
	if err := gob.NewDecoder(r).Decode(&tiers); err != nil {
		return err
	}
	if tiers == nil {
		tiers = map[string]string{}
	}
	v.mu.Lock()
	v.tiers = tiers
	v.mu.Unlock()
	return nil
}
