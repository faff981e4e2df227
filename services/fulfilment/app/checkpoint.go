package app

import (
	"cmp"
	"encoding/gob"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/projection"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// The read model's checkpoint (platform.Checkpointer): every fulfilment as
// projected (byVendor and byOrder are rebuilt from them) and the position
// of the last event applied, gob-encoded.
//
// Deadlines: Load hands every restored fulfilment to onChange, as the last
// event of each did in a fold from position 1, so the deadline scheduler
// ends as such a fold leaves it: every pending ship-by deadline scheduled
// at its time (one that passed while the process was down fires at once),
// nothing else.
//
// Watches: the model keeps no history of changes. A watch with a cursor
// replays the changes after it from the store (Service.replay) up to the
// position the model has applied, then follows live ones; a snapshot watch
// takes its cursor from that position. Both work alike whether the model
// was folded from position 1 or restored, because the applied position is
// saved with the state: a watch whose cursor is older than the restored
// position replays from the store as it always did, and a cursor past the
// store's end is refused as before (CursorError).
type savedReadModel struct {
	Applied uint64
	Views   []savedView
}

// savedView is a View, its address (a protobuf message) as protobuf bytes.
type savedView struct {
	Fulfilment domain.Fulfilment // Address nil
	Revision   uint64
	HasAddress bool
	Address    []byte
}

// Version names the checkpoint's shape; bump it when savedReadModel,
// domain.Fulfilment or what Apply keeps changes.
func (m *ReadModel) Version() string { return "fulfilments-1" }

// Save writes the read model's state.
func (m *ReadModel) Save(w io.Writer) error {
	m.mu.RLock()
	s := savedReadModel{Applied: m.applied, Views: make([]savedView, 0, len(m.entries))}
	for _, v := range m.entries {
		sv := savedView{Fulfilment: v.Fulfilment, Revision: v.Revision}
		if a := v.Fulfilment.Address; a != nil {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
			if err != nil {
				m.mu.RUnlock()
				return fmt.Errorf("fulfilment %s: address: %w", v.Fulfilment.ID, err)
			}
			sv.HasAddress, sv.Address = true, b
			sv.Fulfilment.Address = nil
		}
		s.Views = append(s.Views, sv)
	}
	m.mu.RUnlock()
	slices.SortFunc(s.Views, func(a, b savedView) int { return cmp.Compare(a.Fulfilment.ID, b.Fulfilment.ID) })
	return gob.NewEncoder(w).Encode(&s)
}

// Load replaces the state of an empty read model with what Save wrote,
// then hands every restored fulfilment to onChange (so the scheduler holds
// every pending ship-by deadline, as after a fold). On error it leaves the
// model as it was and calls nothing. The projection's Position is the
// runtime's to advance.
func (m *ReadModel) Load(r io.Reader) error {
	var s savedReadModel
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	entries := make(map[string]*View, len(s.Views))
	byVendor, byOrder := map[string][]*View{}, map[string][]*View{}
	restored := make([]View, 0, len(s.Views))
	for i := range s.Views {
		sv := &s.Views[i]
		f := sv.Fulfilment
		switch {
		case f.ID == "" || !f.Requested:
			return fmt.Errorf("checkpoint fulfilment %d (%q) was never requested", i, f.ID)
		case entries[f.ID] != nil:
			return fmt.Errorf("checkpoint holds fulfilment %s twice", f.ID)
		}
		if sv.HasAddress {
			a := &typev1.Address{}
			if err := proto.Unmarshal(sv.Address, a); err != nil {
				return fmt.Errorf("checkpoint fulfilment %s: address: %w", f.ID, err)
			}
			f.Address = a
		}
		v := &View{Fulfilment: f, Revision: sv.Revision}
		entries[f.ID] = v
		byVendor[f.VendorID] = append(byVendor[f.VendorID], v)
		byOrder[f.OrderID] = append(byOrder[f.OrderID], v)
		restored = append(restored, *v)
	}
	// One sort a list: inserting the fulfilments one by one, in no
	// particular order, moved a vendor's whole list each time (0.7 s of a
	// restart with a vendor of 120,000, and growing with the square).
	for _, lists := range []map[string][]*View{byVendor, byOrder} {
		for _, list := range lists {
			projection.Sort(list, pages.Key)
		}
	}
	m.mu.Lock()
	m.applied, m.entries, m.byVendor, m.byOrder = s.Applied, entries, byVendor, byOrder
	m.mu.Unlock()
	if m.onChange != nil {
		for _, v := range restored {
			m.onChange(v)
		}
	}
	return nil
}
