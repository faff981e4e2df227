package domain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/custody/custody/pkg/eventstore"
)

// BrokenLink is the first event of a stream whose hash chain does not
// verify.
type BrokenLink struct {
	Service  string
	Stream   string
	Revision uint64
	// EventID is empty when the event could not be read at all.
	EventID string
	Reason  string
}

// StreamCheck is the verdict on one stream.
type StreamCheck struct {
	Ref StreamRef
	// Checked is how many events verified, from revision 0 up to the first
	// broken link.
	Checked int
	// Broken is nil when the whole stream verified.
	Broken *BrokenLink
}

// CheckStream verifies a stream's history as re-read from the store, from
// revision 0: consecutive revisions, each previous hash the hash before it,
// each hash what the content hashes to (eventstore.VerifyChain).
//
// seen are the hashes the index saw for each revision when it indexed them
// (Index.Seen; nil entries are not compared). They anchor the chain: a
// store that now holds fewer events lost history, and a hash that differs
// from the one seen means the history was rewritten with a recomputed
// chain — which VerifyChain alone cannot notice, since the chain has no
// secret. The first broken link is the lowest revision either check fails.
func CheckStream(ref StreamRef, events []eventstore.RecordedEvent, seen [][]byte) StreamCheck {
	n, err := eventstore.VerifyChain(events)
	c := StreamCheck{Ref: ref, Checked: n}
	var ce *eventstore.ChainError
	switch {
	case errors.As(err, &ce):
		c.Broken = &BrokenLink{Service: ref.Service, Stream: ref.Stream, Revision: ce.Revision, EventID: ce.EventID, Reason: ce.Reason}
	case err != nil:
		c.Broken = &BrokenLink{Service: ref.Service, Stream: ref.Stream, Revision: uint64(n), Reason: err.Error()}
	}
	// Compare with the anchor up to the break (beyond it nothing verified).
	for i := 0; i < n && i < len(seen); i++ {
		if seen[i] != nil && !bytes.Equal(seen[i], events[i].Hash) {
			c.Checked = i
			c.Broken = &BrokenLink{Service: ref.Service, Stream: ref.Stream, Revision: events[i].Revision, EventID: events[i].ID,
				Reason: fmt.Sprintf("the store's hash %s differs from the hash %s the audit index saw for this revision (history rewritten, chain recomputed)",
					short(events[i].Hash), short(seen[i]))}
			return c
		}
	}
	if c.Broken == nil && len(events) < len(seen) {
		c.Broken = &BrokenLink{Service: ref.Service, Stream: ref.Stream, Revision: uint64(len(events)),
			Reason: fmt.Sprintf("the store holds %d events but the audit index saw %d (history removed)", len(events), len(seen))}
	}
	return c
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Unreadable is the verdict on a stream whose event at revision (after
// verified good events) cannot be read from the store at all.
func Unreadable(ref StreamRef, good []eventstore.RecordedEvent, seen [][]byte, cause error) StreamCheck {
	c := CheckStream(ref, good, seen[:min(len(seen), len(good))])
	if c.Broken != nil {
		return c
	}
	c.Broken = &BrokenLink{Service: ref.Service, Stream: ref.Stream, Revision: uint64(len(good)),
		Reason: fmt.Sprintf("the event cannot be read from the store: %v", cause)}
	return c
}

// StoreGap is a service's store that holds events it cannot deliver: its
// newest position is Last, but nothing after After can be read (nats-server
// refuses a record whose checksum fails and reads it as missing). Which
// stream the unreadable events belong to cannot be told.
//
// Damage, when set, is what the store itself found damaged when its owner
// opened it (eventstore.Damage), which may lie anywhere in it.
type StoreGap struct {
	Service     string
	After, Last uint64
	Damage      *eventstore.Damage
}

// Link is the broken link a gap makes of every order with events in the
// service: their history may continue in what cannot be read.
func (g StoreGap) Link() *BrokenLink {
	if d := g.Damage; d != nil {
		return &BrokenLink{Service: g.Service, Stream: d.Stream, Revision: d.Revision, EventID: d.EventID, Reason: fmt.Sprintf(
			"the %s store is damaged: %s; which orders' events it held cannot always be told, so this order's history there cannot be verified",
			g.Service, d)}
	}
	return &BrokenLink{Service: g.Service, Reason: fmt.Sprintf(
		"the %s store holds events up to position %d but none after position %d can be read (unreadable or corrupt records); "+
			"the stream they belong to cannot be told, so this order's history there cannot be verified", g.Service, g.Last, g.After)}
}

// Verification is the verdict on every stream an order touched.
type Verification struct {
	Valid         bool
	EventsChecked int
	// First is the first broken link, in stream order (service, then
	// stream), then the gaps; nil when Valid.
	First   *BrokenLink
	Streams []StreamCheck
	// Gaps are the stores with unreadable events among the order's
	// services.
	Gaps []StoreGap
}

// Verify sums up stream checks given in stream order, and the gaps of the
// stores those streams are in. Damage whose stream cannot be told counts
// for every order: the order may have had events in what cannot be read,
// which is also why the index may not know the order touched that store.
//
// A store that found itself damaged explains what is broken in it: where
// the first broken stream is in such a store, the first link names the
// damage (the stream's own finding — a history shorter than the index saw,
// say, since the stored index remembers what the store served before — is
// in its check).
func Verify(checks []StreamCheck, gaps []StoreGap) Verification {
	v := Verification{Valid: true, Streams: checks}
	touched := map[string]bool{}
	for _, c := range checks {
		touched[c.Ref.Service] = true
		v.EventsChecked += c.Checked
		if c.Broken != nil && v.First == nil {
			v.Valid, v.First = false, c.Broken
			if d := damageOf(gaps, c.Ref.Service); d != nil {
				v.First = d.Link()
			}
		}
	}
	for _, g := range gaps {
		if g.Damage != nil && g.Damage.Stream == "" {
			touched[g.Service] = true
		}
		if !touched[g.Service] {
			continue
		}
		v.Gaps = append(v.Gaps, g)
		if v.First == nil {
			v.Valid, v.First = false, g.Link()
		}
	}
	return v
}

// damageOf is the first gap of service with damage the store found in
// itself; nil if none.
func damageOf(gaps []StoreGap, service string) *StoreGap {
	for i, g := range gaps {
		if g.Service == service && g.Damage != nil {
			return &gaps[i]
		}
	}
	return nil
}
