package app

import (
	"context"
	"errors"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/trust/domain"
)

// readAll hands every event of store, in order, to apply.
func readAll(ctx context.Context, store eventstore.Store, apply func(eventstore.RecordedEvent)) error {
	const batch = 1000
	for from := uint64(1); ; {
		recs, err := store.ReadAll(ctx, from, batch)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, r := range recs {
			apply(r)
			from = r.Position + 1
		}
		if len(recs) < batch {
			return nil
		}
	}
}

// RecountTrust recounts every vendor's trust from the facts themselves —
// the fulfilment service's events and the trust service's claim events —
// with the same pure functions the live consumers use, each event counted
// once. It is the independent check that the counted history adds up:
// whatever redeliveries and restarts happened, the vendors' aggregates
// must come out the same.
func RecountTrust(ctx context.Context, fulfilment, trust eventstore.Store) (map[string]domain.VendorTrust, error) {
	counts := map[string]domain.Counts{}
	records := domain.NewRecords()
	if fulfilment != nil {
		err := readAll(ctx, fulfilment, func(r eventstore.RecordedEvent) {
			ev, err := es.Decode(r)
			if err != nil {
				return
			}
			records.Apply(r.ID, ev.Payload)
			if v, d, ok := records.FulfilmentFacts(r.ID, ev.Payload); ok && v != "" {
				counts[v] = counts[v].Add(d)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	err := readAll(ctx, trust, func(r eventstore.RecordedEvent) {
		if agg, _, err := eventstore.SplitStream(r.Stream); err != nil || agg != domain.Claims.Aggregate {
			return
		}
		ev, err := es.Decode(r)
		if err != nil {
			return
		}
		if v, d, ok := domain.ClaimFacts(ev.Payload); ok && v != "" {
			counts[v] = counts[v].Add(d)
		}
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.VendorTrust, len(counts))
	for v, c := range counts {
		t := domain.NewVendorTrust(domain.TrustAggregateID(v))
		t.VendorID, t.Counts = v, c
		t.Score, t.Tier, t.Breakdown = domain.Score(c)
		out[v] = t
	}
	return out, nil
}
