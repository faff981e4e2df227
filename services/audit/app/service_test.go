package app_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/memory"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/kv"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

// These tests run the app layer on the memory backend, for its Tamper
// hook: it edits a stored event in place while the index is watching,
// which no real backend allows (the JetStream stream refuses deletes and
// purges). The service's tamper test (../tamper_test.go) edits a copy of a
// JetStream store on disk instead. The index is fed here as the platform's
// runtime feeds it (index below), only synchronously.

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// memStore adds LastPosition; unreadable > 0 makes it claim that many
// more events than it delivers, as a JetStream store with a record that
// nats-server refuses as corrupt does.
type memStore struct {
	*memory.Store
	unreadable uint64
}

func (m memStore) LastPosition(ctx context.Context) (uint64, error) {
	evs, err := m.ReadAll(ctx, 1, 0)
	if err != nil || len(evs) == 0 {
		return m.unreadable, err
	}
	return evs[len(evs)-1].Position + m.unreadable, nil
}

type world struct {
	clk     *clock.Fake
	stores  map[string]*memory.Store
	absent  map[string]bool   // stores that "do not exist yet"
	corrupt map[string]uint64 // stores with that many unreadable events at the end
}

func newWorld() *world {
	w := &world{clk: clock.NewFake(t0), stores: map[string]*memory.Store{}, absent: map[string]bool{}, corrupt: map[string]uint64{}}
	for _, s := range app.DefaultServices {
		w.stores[s] = memory.New(w.clk.Now)
	}
	return w
}

func (w *world) open(_ context.Context, svc string) (app.Store, error) {
	if w.absent[svc] {
		return nil, fmt.Errorf("%s: %w", svc, app.ErrNotCreatedYet)
	}
	return memStore{w.stores[svc], w.corrupt[svc]}, nil
}

func (w *world) write(t *testing.T, s story.Story, events []story.Event) {
	t.Helper()
	stores := map[string]eventstore.Store{}
	for k, v := range w.stores {
		stores[k] = v
	}
	if err := s.Write(t.Context(), stores, w.clk, events); err != nil {
		t.Fatal(err)
	}
}

// started writes order o1's story into the world's stores and returns
// it with the app on those stores, indexed.
func (w *world) started(t *testing.T) (story.Story, *app.Service) {
	t.Helper()
	s := story.New(t0, "o1")
	w.write(t, s, s.Events)
	return s, w.start(t)
}

// start returns the app on the world's stores, indexed into a new
// read-model store.
func (w *world) start(t *testing.T) *app.Service {
	t.Helper()
	return w.startOn(t, openKV(t, t.TempDir()))
}

// startOn returns the app with its index in db, resumed where db stands
// and indexed up to the stores' ends.
func (w *world) startOn(t *testing.T, db *kv.DB) *app.Service {
	t.Helper()
	svc := app.New(app.Config{FreshnessWait: 100 * time.Millisecond}, app.Deps{Open: w.open, Clock: w.clk,
		Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = svc.Close(t.Context()) })
	attach(t, svc, db)
	w.index(t, svc)
	return svc
}

func openKV(t *testing.T, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// attach gives each feed its space in db as the platform's runtime does
// (platform.Stored): a space of another version is emptied, and the feed
// resumes after the position its space holds.
func attach(t *testing.T, svc *app.Service, db *kv.DB) {
	t.Helper()
	for _, f := range svc.Feeds() {
		space, err := db.Space("audit/order index (" + f.Service + ")")
		if err != nil {
			t.Fatal(err)
		}
		pos, version, err := space.State()
		if err != nil {
			t.Fatal(err)
		}
		if version != f.Stored.Version() {
			if err := space.Reset(f.Stored.Version()); err != nil {
				t.Fatal(err)
			}
			pos = 0
		}
		if err := f.Stored.Attach(space); err != nil {
			t.Fatal(err)
		}
		f.Position.Advance(pos)
	}
}

// index folds into svc what the existing stores hold beyond what it has
// indexed, as the platform's runtime does, and returns how many events it
// applied.
func (w *world) index(t *testing.T, svc *app.Service) int {
	t.Helper()
	n := 0
	for _, f := range svc.Feeds() {
		if w.absent[f.Service] {
			continue
		}
		evs, err := w.stores[f.Service].ReadAll(t.Context(), f.Position.Last()+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			f.Apply(e)
			f.Position.Advance(e.Position)
			n++
		}
	}
	return n
}

// TestTamperedEventIsNamed edits one stored event through the memory
// backend's Tamper hook and shows VerifyOrderChain naming exactly it.
func TestTamperedEventIsNamed(t *testing.T) {
	t.Parallel()
	w := newWorld()
	s, svc := w.started(t)
	ctx := t.Context()

	v, err := svc.Verify(ctx, "o1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Valid || len(v.Streams) != 7 {
		t.Fatalf("untouched history: %+v", v)
	}

	// Flip a letter of the recipient's name in the proof of delivery.
	stream := "fulfilment-" + s.FulfilmentID
	stored, err := w.stores["fulfilment"].ReadStream(ctx, stream, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := story.ProofOfDelivery(stored)
	w.stores["fulfilment"].Tamper(stream, target.Revision, func(e *eventstore.RecordedEvent) {
		i := bytes.Index(e.Data, []byte(story.Recipient))
		e.Data[i] = 'K' // "Krace Hopper"
	})

	v, err = svc.Verify(ctx, "o1", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := v.First
	if v.Valid || b == nil {
		t.Fatalf("tampered history verified: %+v", v)
	}
	if b.Service != "fulfilment" || b.Stream != stream || b.Revision != target.Revision || b.EventID != target.ID {
		t.Errorf("broken link %+v, want fulfilment/%s revision %d event %s", b, stream, target.Revision, target.ID)
	}
	if !strings.Contains(b.Reason, "event edited") {
		t.Errorf("reason %q", b.Reason)
	}
	broken := 0
	for _, c := range v.Streams {
		if c.Broken != nil {
			broken++
		}
	}
	if broken != 1 {
		t.Errorf("%d streams broken, want 1", broken)
	}

	// The replay rests on the same streams: it says so.
	r, err := svc.Replay(ctx, "o1", time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Chain.Valid || r.Chain.First == nil || r.Chain.First.EventID != target.ID {
		t.Errorf("replay chain verdict %+v", r.Chain)
	}
}

// TestRewrittenHistoryIsNamed edits an event and recomputes the stream's
// chain from there, as a forger with the hash function would: the chain
// verifies, but not against the hashes the index saw.
func TestRewrittenHistoryIsNamed(t *testing.T) {
	t.Parallel()
	w := newWorld()
	_, svc := w.started(t)
	ctx := t.Context()

	stream := "order-o1"
	stored, err := w.stores["order"].ReadStream(ctx, stream, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const edit = 1 // OrderConfirmed
	prev := stored[edit-1].Hash
	for rev := edit; rev < len(stored); rev++ {
		w.stores["order"].Tamper(stream, uint64(rev), func(e *eventstore.RecordedEvent) {
			if rev == edit {
				e.Metadata.Actor = "support:mallory"
			}
			eventstore.Seal(prev, e)
			prev = e.Hash
		})
	}
	after, _ := w.stores["order"].ReadStream(ctx, stream, 0, 0)
	if _, err := eventstore.VerifyChain(after); err != nil {
		t.Fatalf("the forged chain should verify on its own: %v", err)
	}

	v, err := svc.Verify(ctx, "o1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.First == nil || v.First.Stream != stream || v.First.Revision != edit || v.First.EventID != stored[edit].ID ||
		!strings.Contains(v.First.Reason, "history rewritten") {
		t.Fatalf("verdict %+v, first %+v", v, v.First)
	}
}

// TestStoresThatAppearLater: a service that never ran has no stream; the
// queries answer without it, and with it once it appears and is indexed.
func TestStoresThatAppearLater(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.absent["payouts"], w.absent["trust"] = true, true
	s, svc := w.started(t)
	ctx := t.Context()

	tl, err := svc.Timeline(ctx, app.TimelineQuery{OrderID: "o1", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tl.Events {
		if e.Service == "payouts" || e.Service == "trust" {
			t.Fatalf("indexed %s before its store was there", e.Service)
		}
	}
	// The streams appear: until the index holds their events, a query
	// refuses to answer without them.
	w.absent["payouts"], w.absent["trust"] = false, false
	if _, err := svc.Timeline(ctx, app.TimelineQuery{OrderID: "o1", PageSize: 1000}); !errors.Is(err, app.ErrIndexBehind) {
		t.Fatalf("a store not indexed yet: %v, want ErrIndexBehind", err)
	}
	w.index(t, svc)
	tl, err = svc.Timeline(ctx, app.TimelineQuery{OrderID: "o1", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if tl.Total != s.OfOrder() {
		t.Fatalf("timeline has %d events, want %d", tl.Total, s.OfOrder())
	}
}

// TestStoreWithUnreadableEvents: a store that counts events it cannot
// deliver does not make every query Unavailable; orders with events in
// that store fail verification, naming the store.
func TestStoreWithUnreadableEvents(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.corrupt["fulfilment"] = 2
	_, svc := w.started(t)
	ctx := t.Context()
	v, err := svc.Verify(ctx, "o1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.First == nil || v.First.Service != "fulfilment" || v.First.Stream != "" || len(v.Gaps) != 1 {
		t.Fatalf("verdict %+v, first %+v", v, v.First)
	}
	for _, c := range v.Streams {
		if c.Broken != nil {
			t.Errorf("stream %s broken: %+v", c.Ref, c.Broken)
		}
	}
	r, err := svc.Replay(ctx, "o1", time.Time{}, nil)
	if err != nil || r.Chain.Valid {
		t.Errorf("replay: chain %+v, %v", r.Chain, err)
	}
}

func TestQueriesRefuse(t *testing.T) {
	t.Parallel()
	w := newWorld()
	s, svc := w.started(t)
	ctx := t.Context()

	var nf *fault.NotFoundError
	if _, err := svc.Verify(ctx, "o-nope", nil); !errors.As(err, &nf) || nf.Resource != "order" || nf.ID != "o-nope" {
		t.Errorf("unknown order: %v", err)
	}
	denied := errors.New("denied")
	var saw app.OrderInfo
	_, err := svc.Replay(ctx, "o1", time.Time{}, func(o app.OrderInfo) error { saw = o; return denied })
	if !errors.Is(err, denied) || saw.BuyerID != s.BuyerID {
		t.Errorf("allow saw %+v, err %v", saw, err)
	}
	badToken := func(err error) bool {
		var bad *fault.InvalidError
		return errors.As(err, &bad) && len(bad.Violations) == 1 && bad.Violations[0].Field == "page_token"
	}
	if _, err := svc.Timeline(ctx, app.TimelineQuery{OrderID: "o1", PageToken: "garbage"}); !badToken(err) {
		t.Errorf("bad token: %v", err)
	}
	tl, err := svc.Timeline(ctx, app.TimelineQuery{OrderID: "o1", PageSize: 5})
	if err != nil || tl.NextPageToken == "" {
		t.Fatalf("first page: %v %+v", err, tl)
	}
	if _, err := svc.Timeline(ctx, app.TimelineQuery{OrderID: "o2", PageToken: tl.NextPageToken}); !badToken(err) {
		t.Errorf("another order's token: %v", err)
	}
	if st := svc.Stats(); st.Orders != 1 || st.Events != len(s.Events) || st.Skipped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestUnreadableEventsAreCounted: an event the store delivers but that
// cannot be read is skipped by the feed (so catching up ends) and counted.
func TestUnreadableEventsAreCounted(t *testing.T) {
	t.Parallel()
	svc := newWorld().start(t)
	for _, f := range svc.Feeds() {
		if f.Service == "order" {
			f.Skipped(7)
		}
	}
	if st := svc.Stats(); st.Skipped != 1 || st.Events != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The timeline reads the events it shows from their stores: a few events
// of a long shared stream (a product's stock, moved by many other orders
// between this one's hold and its sale) come back whole and in place.
func TestTimelineReadsSparseEventsOfALongStream(t *testing.T) {
	t.Parallel()
	w := newWorld()
	s := story.New(t0, "o1")
	var events []story.Event
	for _, e := range s.Events {
		events = append(events, e)
		if e.At == story.Placed && e.Stream == "product-"+s.ProductID {
			for i := range 40 { // other orders' stock moves
				events = append(events, story.Event{Service: "catalog", Stream: e.Stream, At: story.Placed + time.Duration(i+1)*time.Second,
					Actor: "service:catalog", Payload: &catalogv1.StockAdjusted{ProductId: s.ProductID, SkuId: s.SKUID, Delta: 1}})
			}
		}
	}
	slices.SortStableFunc(events, func(a, b story.Event) int { return cmp.Compare(a.At, b.At) })
	w.write(t, s, events)
	svc := w.start(t)
	tl, err := svc.Timeline(t.Context(), app.TimelineQuery{OrderID: "o1", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	product := map[string]uint64{}
	for _, ev := range tl.Events {
		if ev.PayloadError != "" || ev.PayloadJSON == "" || ev.EventID == "" {
			t.Errorf("%s %s@%d shown without its payload: %+v", ev.Service, ev.Stream, ev.Revision, ev)
		}
		if ev.Stream == "product-"+s.ProductID {
			product[ev.Type] = ev.Revision
		}
	}
	held, sold := product["custody.catalog.v1.StockHeld"], product["custody.catalog.v1.StockSold"]
	if len(product) != 2 || sold-held < 40 {
		t.Errorf("the product's events in o1's timeline: %v, want its hold and, 40 moves later, its sale", product)
	}
}

// answers are what the queries answer about an order.
type answers struct {
	Timeline app.Timeline
	Verified domain.Verification
	Replayed app.Replayed
}

func answersOf(t *testing.T, svc *app.Service, orderID string) answers {
	t.Helper()
	var a answers
	var err error
	if a.Timeline, err = svc.Timeline(t.Context(), app.TimelineQuery{OrderID: orderID, PageSize: 1000}); err != nil {
		t.Fatal(err)
	}
	if a.Verified, err = svc.Verify(t.Context(), orderID, nil); err != nil {
		t.Fatal(err)
	}
	if a.Replayed, err = svc.Replay(t.Context(), orderID, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestIndexReopens: the index folded into a read-model store answers the
// same once the store is closed and opened again, resumes after the last
// event of each store it applied (none is applied twice, none skipped),
// folds later events on top as a fresh index would, and keeps the hashes
// it saw: a history rewritten while it was closed does not verify.
func TestIndexReopens(t *testing.T) {
	t.Parallel()
	w := newWorld()
	s := story.New(t0, "o1")
	w.write(t, s, s.Until(story.Delivered))
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := app.New(app.Config{FreshnessWait: 100 * time.Millisecond}, app.Deps{Open: w.open, Clock: w.clk, Logger: slog.New(slog.DiscardHandler)})
	attach(t, first, db)
	folded := w.index(t, first)
	before := answersOf(t, first, "o1")
	if !before.Verified.Valid || before.Timeline.Total != folded-1 { // all but the product's creation
		t.Fatalf("before the reopen: %d events in the timeline of %d folded, verdict %+v", before.Timeline.Total, folded, before.Verified)
	}
	// (Not first.Close: it would close the world's memory stores.)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openKV(t, dir)
	svc := app.New(app.Config{FreshnessWait: 100 * time.Millisecond}, app.Deps{Open: w.open, Clock: w.clk, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = svc.Close(t.Context()) })
	attach(t, svc, db)
	if st := svc.Stats(); st.Events != folded || st.Orders != 1 {
		t.Errorf("reopened stats %+v, want %d events of 1 order", st, folded)
	}
	if n := w.index(t, svc); n != 0 {
		t.Errorf("the reopened index applied %d events again", n)
	}
	if after := answersOf(t, svc, "o1"); !reflect.DeepEqual(after, before) {
		t.Errorf("after the reopen:\n%+v\nbefore:\n%+v", after, before)
	}

	// Later events, of o1 and of a new order, fold on top.
	w.write(t, s, s.Events[len(s.Until(story.Delivered)):])
	s2 := story.New(t0, "o2")
	w.write(t, s2, s2.Events)
	later := len(s.Events) - len(s.Until(story.Delivered)) + len(s2.Events)
	if n := w.index(t, svc); n != later {
		t.Errorf("folded %d later events, want %d", n, later)
	}
	fresh := w.start(t)
	for _, id := range []string{"o1", "o2"} {
		if got, want := answersOf(t, svc, id), answersOf(t, fresh, id); !reflect.DeepEqual(got, want) {
			t.Errorf("%s folded on top of the reopened index:\n%+v\nfolded from scratch:\n%+v", id, got, want)
		}
	}
	if got, want := svc.Stats(), fresh.Stats(); got != want || got.Events != folded+later {
		t.Errorf("stats %+v, from scratch %+v, want %d events", got, want, folded+later)
	}

	// A revision rewritten with a recomputed chain while the index is
	// closed: the hash it saw before the reopen does not match.
	ledger := "orderledger-o1"
	stored, err := w.stores["payouts"].ReadStream(t.Context(), ledger, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := eventstore.GenesisHash
	for rev := range stored {
		w.stores["payouts"].Tamper(ledger, uint64(rev), func(e *eventstore.RecordedEvent) {
			if rev == 0 {
				e.Metadata.Actor = "support:mallory"
			}
			eventstore.Seal(prev, e)
			prev = e.Hash
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := w.startOn(t, openKV(t, dir))
	v, err := reopened.Verify(t.Context(), "o1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.First == nil || v.First.Stream != ledger || v.First.Revision != 0 || !strings.Contains(v.First.Reason, "the audit index saw") {
		t.Errorf("a ledger rewritten while the index was closed: %+v %+v", v, v.First)
	}
}
