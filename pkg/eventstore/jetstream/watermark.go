package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/eventstore"
)

// WatermarkBucket is the JetStream key-value bucket where each service's
// store records the highest sequence it has stored, and the damage its
// starts found, under the service's name.
//
// The record lives in another stream (other files) than the events. A
// server that discards a damaged tail reports the loss once, at the start
// that found it, and after that restart serves a shorter stream as if it
// had always ended there; the watermark still says how far the stream
// went. Damage found once is recorded, so every later start refuses too
// until the record is cleared (docs/eventstore.md, "Damage").
const WatermarkBucket = "custody_watermarks"

// watermarkEvery bounds how often a store writes its watermark: the
// messages stored in the last interval before a crash are covered by the
// server's own loss report instead.
const watermarkEvery = time.Second

// watermarkRecord is the value stored under a service's key.
type watermarkRecord struct {
	LastSeq uint64              `json:"last_seq"`
	Damage  []eventstore.Damage `json:"damage,omitempty"`
	// Found is when the damage was first recorded.
	Found time.Time `json:"found,omitzero"`
}

// watermark is one store's view of its record.
type watermark struct {
	kv  jetstream.KeyValue
	key string

	mu       sync.Mutex
	rec      watermarkRecord // as last read or written
	known    uint64          // the highest sequence this store has stored
	flushing bool
}

// openWatermark opens (or, unless readOnly, creates) the bucket and reads
// service's record. A read-only caller gets nil when the bucket does not
// exist yet.
func openWatermark(ctx context.Context, js jetstream.JetStream, service string, replicas int, readOnly bool) (*watermark, error) {
	var kv jetstream.KeyValue
	var err error
	if readOnly {
		kv, err = js.KeyValue(ctx, WatermarkBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil
		}
	} else {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      WatermarkBucket,
			Description: "Custody: the highest sequence each service's event stream reached, and damage found",
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
			History:     1,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: watermarks: %w: %w", eventstore.ErrUnavailable, err)
	}
	w := &watermark{kv: kv, key: service}
	if _, err := w.read(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// read loads the record, returning its revision (0: no record yet).
func (w *watermark) read(ctx context.Context) (uint64, error) {
	e, err := w.kv.Get(ctx, w.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: watermark of %s: %w: %w", w.key, eventstore.ErrUnavailable, err)
	}
	var rec watermarkRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return 0, fmt.Errorf("jetstream: watermark of %s is not readable: %w: %w", w.key, eventstore.ErrUnreadable, err)
	}
	w.mu.Lock()
	w.rec = rec
	w.known = max(w.known, rec.LastSeq)
	w.mu.Unlock()
	return e.Revision(), nil
}

func (w *watermark) lastSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rec.LastSeq
}

// recorded is the damage the record holds, and when it was first found.
func (w *watermark) recorded() ([]eventstore.Damage, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.rec.Damage), w.rec.Found
}

// update raises the record to seq and adds damage, never lowering what
// another store (a second pod) wrote: a compare-and-set on the key's
// revision, retried on a conflict.
func (w *watermark) update(ctx context.Context, seq uint64, damage []eventstore.Damage) error {
	for attempt := 0; ; attempt++ {
		rev, err := w.read(ctx)
		if err != nil {
			return err
		}
		w.mu.Lock()
		rec := w.rec
		w.mu.Unlock()
		grew := seq > rec.LastSeq
		rec.LastSeq = max(rec.LastSeq, seq)
		for _, d := range damage {
			if !slices.Contains(rec.Damage, d) {
				rec.Damage, grew = append(rec.Damage, d), true
				if rec.Found.IsZero() {
					rec.Found = time.Now().UTC()
				}
			}
		}
		if !grew {
			return nil
		}
		b, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = w.kv.Create(ctx, w.key, b)
		} else {
			_, err = w.kv.Update(ctx, w.key, b, rev)
		}
		if err == nil {
			w.mu.Lock()
			w.rec = rec
			w.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) || attempt >= 8 {
			return fmt.Errorf("jetstream: watermark of %s: %w: %w", w.key, eventstore.ErrUnavailable, err)
		}
	}
}

// advance notes that the store has stored up to seq. The record follows
// in the background, at most once per watermarkEvery, and catches up with
// the last sequence within one interval after the writes stop.
func (w *watermark) advance(seq uint64) {
	w.mu.Lock()
	w.known = max(w.known, seq)
	start := !w.flushing && w.known > w.rec.LastSeq
	if start {
		w.flushing = true
	}
	w.mu.Unlock()
	if start {
		go w.flush()
	}
}

func (w *watermark) flush() {
	for {
		w.mu.Lock()
		target := w.known
		if target <= w.rec.LastSeq {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := w.update(ctx, target, nil)
		cancel()
		if err != nil {
			// The next append starts another try; the stream itself is fine.
			w.mu.Lock()
			w.flushing = false
			w.mu.Unlock()
			return
		}
		time.Sleep(watermarkEvery)
	}
}
