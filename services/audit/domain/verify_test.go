package domain_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

func TestCheckStream(t *testing.T) {
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	ref := domain.FulfilmentAggregate.Stream(s.FulfilmentID)
	good := w.stream(t, ref)
	if len(good) != 5 {
		t.Fatalf("fulfilment stream has %d events", len(good))
	}
	seen := w.index(t).Seen(ref)
	clone := func() []eventstore.RecordedEvent {
		out := make([]eventstore.RecordedEvent, len(good))
		for i, e := range good {
			e.Data = bytes.Clone(e.Data)
			out[i] = e
		}
		return out
	}
	// reseal recomputes the chain from revision from on, as a forger
	// rewriting history would.
	reseal := func(evs []eventstore.RecordedEvent, from int) {
		prev := eventstore.GenesisHash
		if from > 0 {
			prev = evs[from-1].Hash
		}
		for i := from; i < len(evs); i++ {
			eventstore.Seal(prev, &evs[i])
			prev = evs[i].Hash
		}
	}
	recipient := []byte(story.Recipient)
	tests := []struct {
		name    string
		events  func() []eventstore.RecordedEvent
		seen    [][]byte
		broken  bool
		rev     uint64
		reason  string
		checked int
	}{
		{"intact", clone, seen, false, 0, "", 5},
		{"intact, nothing seen before", clone, nil, false, 0, "", 5},
		{"payload edited", func() []eventstore.RecordedEvent {
			evs := clone()
			i := bytes.Index(evs[3].Data, recipient)
			evs[3].Data[i] ^= 0x20 // "grace Hopper"
			return evs
		}, nil, true, 3, "event edited", 3},
		{"actor edited", func() []eventstore.RecordedEvent {
			evs := clone()
			evs[1].Metadata.Actor = "vendor:someone-else"
			return evs
		}, nil, true, 1, "event edited", 1},
		{"event dropped", func() []eventstore.RecordedEvent {
			evs := clone()
			return append(evs[:2], evs[3:]...)
		}, nil, true, 3, "dropped or reordered", 2},
		{"edited and the chain recomputed: the anchor notices", func() []eventstore.RecordedEvent {
			evs := clone()
			i := bytes.Index(evs[3].Data, recipient)
			evs[3].Data[i] ^= 0x20
			reseal(evs, 3)
			return evs
		}, seen, true, 3, "history rewritten", 3},
		{"edited and the chain recomputed, no anchor: undetectable", func() []eventstore.RecordedEvent {
			evs := clone()
			evs[3].Data[0] ^= 1
			reseal(evs, 3)
			return evs
		}, nil, false, 0, "", 5},
		{"history cut short", func() []eventstore.RecordedEvent { return clone()[:3] }, seen, true, 3, "history removed", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := domain.CheckStream(ref, tt.events(), tt.seen)
			if (c.Broken != nil) != tt.broken {
				t.Fatalf("broken = %+v, want broken %v", c.Broken, tt.broken)
			}
			if c.Checked != tt.checked {
				t.Errorf("checked %d, want %d", c.Checked, tt.checked)
			}
			if !tt.broken {
				return
			}
			b := c.Broken
			if b.Service != ref.Service || b.Stream != ref.Stream || b.Revision != tt.rev || !strings.Contains(b.Reason, tt.reason) {
				t.Errorf("broken link %+v, want revision %d because %q", b, tt.rev, tt.reason)
			}
			if tt.rev < uint64(len(good)) && b.EventID != good[tt.rev].ID && tt.name != "event dropped" && tt.reason != "history removed" {
				t.Errorf("event id %s, want %s", b.EventID, good[tt.rev].ID)
			}
		})
	}

	u := domain.Unreadable(ref, good[:2], seen, errors.New("bad header"))
	if u.Broken == nil || u.Broken.Revision != 2 || u.Checked != 2 || !strings.Contains(u.Broken.Reason, "cannot be read") {
		t.Errorf("unreadable: %+v %+v", u, u.Broken)
	}
}

func TestVerify(t *testing.T) {
	a := domain.StreamCheck{Ref: domain.StreamRef{Service: "order", Stream: "order-o1"}, Checked: 4}
	b := domain.StreamCheck{Ref: domain.StreamRef{Service: "payouts", Stream: "orderledger-o1"}, Checked: 1,
		Broken: &domain.BrokenLink{Service: "payouts", Stream: "orderledger-o1", Revision: 1}}
	c := domain.StreamCheck{Ref: domain.StreamRef{Service: "trust", Stream: "claims-o1"}, Checked: 0,
		Broken: &domain.BrokenLink{Service: "trust", Stream: "claims-o1", Revision: 0}}
	if v := domain.Verify([]domain.StreamCheck{a}, nil); !v.Valid || v.EventsChecked != 4 || v.First != nil {
		t.Errorf("intact: %+v", v)
	}
	v := domain.Verify([]domain.StreamCheck{a, b, c}, nil)
	if v.Valid || v.EventsChecked != 5 || v.First != b.Broken || len(v.Streams) != 3 {
		t.Errorf("broken: %+v", v)
	}
	gaps := []domain.StoreGap{{Service: "catalog", After: 1, Last: 9}, {Service: "order", After: 65536, Last: 131072}}
	v = domain.Verify([]domain.StreamCheck{a}, gaps)
	if v.Valid || len(v.Gaps) != 1 || v.First == nil || v.First.Service != "order" || v.First.Stream != "" ||
		!strings.Contains(v.First.Reason, "none after position 65536") {
		t.Errorf("gap in a store of the order: %+v %+v", v, v.First)
	}
	if v := domain.Verify([]domain.StreamCheck{a, b}, gaps); v.First != b.Broken || len(v.Gaps) != 1 {
		t.Errorf("a broken stream comes before a gap: %+v", v)
	}

	// Damage a store found in itself: a record whose stream cannot be told
	// fails every order, one naming another service's stream does not.
	unknown := domain.StoreGap{Service: "trust", Damage: &eventstore.Damage{Seq: 7, Reason: "checksum"}}
	named := domain.StoreGap{Service: "catalog", Damage: &eventstore.Damage{Seq: 3, Stream: "product-p1", EventID: "e3", Reason: "edited"}}
	v = domain.Verify([]domain.StreamCheck{a}, []domain.StoreGap{named, unknown})
	if v.Valid || len(v.Gaps) != 1 || v.First == nil || v.First.Service != "trust" || !strings.Contains(v.First.Reason, "trust store is damaged: message 7") {
		t.Errorf("unattributable damage elsewhere: %+v %+v", v, v.First)
	}
	v = domain.Verify([]domain.StreamCheck{a, {Ref: domain.StreamRef{Service: "catalog", Stream: "product-p1"}, Checked: 3}}, []domain.StoreGap{named})
	if v.Valid || v.First.Stream != "product-p1" || v.First.EventID != "e3" {
		t.Errorf("damage in a store the order touched: %+v %+v", v, v.First)
	}

	// A stream broken in a store that found itself damaged (the stored
	// index saw events the damaged store no longer serves): the first link
	// names the damage; the stream's own finding stays in its check. A
	// stream broken in a sound store is not hidden by damage elsewhere.
	damaged := domain.StoreGap{Service: "payouts", Damage: &eventstore.Damage{Seq: 2, Reason: "checksum"}}
	v = domain.Verify([]domain.StreamCheck{a, b}, []domain.StoreGap{damaged})
	if v.Valid || v.First == nil || !strings.Contains(v.First.Reason, "payouts store is damaged: message 2") ||
		v.Streams[1].Broken != b.Broken || len(v.Gaps) != 1 {
		t.Errorf("a broken stream in a damaged store: %+v %+v", v, v.First)
	}
	if v := domain.Verify([]domain.StreamCheck{a, b}, []domain.StoreGap{unknown}); v.First != b.Broken {
		t.Errorf("damage elsewhere named before a stream broken in a sound store: %+v", v.First)
	}
}
