package fulfilment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/platform/platformtest"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/fulfilment/domain"
)

// watcher reads a WatchFulfilments stream in the background.
type watcher struct {
	msgs   chan *fulfilmentv1.WatchFulfilmentsResponse
	errc   chan error
	cancel context.CancelFunc
}

func (e *fixture) watch(t testing.TB, role, vendor, cursor string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := e.as(t, role).WatchFulfilments(ctx, &fulfilmentv1.WatchFulfilmentsRequest{VendorId: vendor, Cursor: cursor})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &watcher{msgs: make(chan *fulfilmentv1.WatchFulfilmentsResponse, 1024), errc: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				w.errc <- err
				close(w.msgs)
				return
			}
			w.msgs <- m
		}
	}()
	return w
}

// next returns the next message, failing after platformtest.Wait.
func (w *watcher) next(t testing.TB) *fulfilmentv1.WatchFulfilmentsResponse {
	t.Helper()
	select {
	case m, ok := <-w.msgs:
		if !ok {
			t.Fatalf("watch ended: %v", <-w.errc)
		}
		return m
	case <-time.After(platformtest.Wait):
		t.Fatal("no watch message")
	}
	return nil
}

// err waits for the stream's end and returns its error.
func (w *watcher) err(t testing.TB) error {
	t.Helper()
	for {
		select {
		case _, ok := <-w.msgs:
			if !ok {
				return <-w.errc
			}
		case <-time.After(platformtest.Wait):
			t.Fatal("watch did not end")
		}
	}
}

// snapshot reads a snapshot up to SNAPSHOT_COMPLETE; it returns the
// fulfilment ids and the cursor.
func (w *watcher) snapshot(t testing.TB) ([]string, string) {
	t.Helper()
	var ids []string
	for {
		m := w.next(t)
		switch m.GetKind() {
		case fulfilmentv1.WatchKind_WATCH_KIND_SNAPSHOT:
			ids = append(ids, m.GetFulfilment().GetFulfilmentId())
		case fulfilmentv1.WatchKind_WATCH_KIND_SNAPSHOT_COMPLETE:
			if m.GetFulfilment() != nil {
				t.Fatalf("SNAPSHOT_COMPLETE with a fulfilment: %v", m)
			}
			return ids, m.GetCursor()
		default:
			t.Fatalf("in the snapshot: %v", m)
		}
	}
}

// change is what a test compares of a CHANGE message.
func change(m *fulfilmentv1.WatchFulfilmentsResponse) string {
	f := m.GetFulfilment()
	return fmt.Sprintf("%s %s %s r%d %s", m.GetCursor(), m.GetEventType(), f.GetFulfilmentId(), f.GetRevision(), f.GetState())
}

// TestWatchFulfilments: a vendor's watch delivers the snapshot and then
// every change in store order; a client that drops mid-stream and
// reconnects with its last cursor ends with exactly the changes of a client
// that never dropped — none lost, none twice — whether the missed changes
// are replayed from the store or arrive live.
func TestWatchFulfilments(t *testing.T) {
	e := shared
	vendor, other := uniq("v"), uniq("v")
	existing := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
	e.clock.Advance(time.Second)
	newer := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
	vc := e.as(t, "vendor:"+vendor)
	if _, err := vc.ShipFulfilment(t.Context(), shipReq(fulfilmentID(newer, vendor), "dhl", dhlNumber(), box(line("1", 1)))); err != nil {
		t.Fatal(err)
	}

	steady := e.watch(t, "vendor:"+vendor, vendor, "")
	dropper := e.watch(t, "support", vendor, "")
	snap, _ := steady.snapshot(t)
	if fmt.Sprint(snap) != fmt.Sprint([]string{fulfilmentID(newer, vendor), fulfilmentID(existing, vendor)}) {
		t.Fatalf("snapshot %v", snap)
	}
	if s, _ := dropper.snapshot(t); len(s) != 2 {
		t.Fatalf("second snapshot %v", s)
	}

	// changes makes a new fulfilment of vendor and takes it through n
	// changes (requested, shipped, scans); another vendor's order happens
	// in between and must not show.
	changes := func(scans int) int {
		o := e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
		e.confirmOrder(t, uniq("b"), part{other, []lineQty{{"a", 1}}})
		fid := fulfilmentID(o, vendor)
		number := dhlNumber()
		if _, err := vc.ShipFulfilment(t.Context(), shipReq(fid, "dhl", number, box(line("1", 1)))); err != nil {
			t.Fatal(err)
		}
		cc := e.as(t, "carrier:dhl")
		for i := range scans {
			st := domain.InTransit
			if i == scans-1 {
				st = domain.Delivered // TrackingEventRecorded and FulfilmentDelivered: two changes
			}
			if _, err := cc.RecordTrackingEvent(t.Context(), scanReq("dhl", number, fmt.Sprintf("w%d", i), st, e.clock.Now(), nil)); err != nil {
				t.Fatal(err)
			}
		}
		return 2 + scans + 1
	}

	var want, got []string
	total := changes(3) // phase 1: both watchers connected
	// The dropper reads two changes and drops.
	var cursor string
	for range 2 {
		m := dropper.next(t)
		got = append(got, change(m))
		cursor = m.GetCursor()
	}
	dropper.cancel()
	total += changes(4) // phase 2: the dropper is away (it will be replayed)
	resumed := e.watch(t, "vendor:"+vendor, vendor, cursor)
	total += changes(2) // phase 3: live again

	for range total {
		m := steady.next(t)
		if m.GetKind() != fulfilmentv1.WatchKind_WATCH_KIND_CHANGE || m.GetFulfilment().GetVendorId() != vendor {
			t.Fatalf("unexpected %v", m)
		}
		want = append(want, change(m))
	}
	for len(got) < total {
		got = append(got, change(resumed.next(t)))
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("the resumed watch differs from the steady one:\nsteady:  %v\nresumed: %v", want, got)
	}
	// In store order, and every change of a fulfilment has its next revision.
	last, revs := uint64(0), map[string]uint64{}
	for _, c := range want {
		var pos, rev uint64
		var typ, fid, state string
		if _, err := fmt.Sscanf(c, "%d %s %s r%d %s", &pos, &typ, &fid, &rev, &state); err != nil {
			t.Fatal(err)
		}
		if pos <= last {
			t.Fatalf("cursor %d after %d", pos, last)
		}
		if r, seen := revs[fid]; seen && rev != r+1 {
			t.Fatalf("%s: revision %d after %d", fid, rev, r)
		}
		last, revs[fid] = pos, rev
	}
	// Nothing more is pending for either.
	select {
	case m := <-resumed.msgs:
		t.Fatalf("extra message %v", m)
	case m := <-steady.msgs:
		t.Fatalf("extra message %v", m)
	default:
	}
	steady.cancel()
	resumed.cancel()

	// Resuming from the snapshot's cursor replays exactly the changes after it.
	w := e.watch(t, "vendor:"+vendor, vendor, "")
	_, snapCursor := w.snapshot(t)
	w.cancel()
	n := changes(1)
	w = e.watch(t, "vendor:"+vendor, vendor, snapCursor)
	for range n {
		if m := w.next(t); m.GetKind() != fulfilmentv1.WatchKind_WATCH_KIND_CHANGE {
			t.Fatalf("resumed from the snapshot: %v", m)
		}
	}
	w.cancel()
}

func TestWatchRefusals(t *testing.T) {
	t.Parallel()
	e := shared
	vendor := uniq("v")
	e.confirmOrder(t, uniq("b"), part{vendor, []lineQty{{"a", 1}}})
	for _, tt := range []struct {
		role, vendor, cursor string
		code                 codes.Code
	}{
		{"vendor:" + uniq("v"), vendor, "", codes.PermissionDenied},
		{"buyer:b1", vendor, "", codes.PermissionDenied},
		{"service", vendor, "", codes.PermissionDenied},
		{"carrier:dhl", vendor, "", codes.PermissionDenied},
		{"vendor:" + vendor, vendor, "not-a-cursor", codes.InvalidArgument},
		{"vendor:" + vendor, vendor, strconv.FormatUint(e.LastPosition(t, fulfilment.Name)+1_000_000, 10), codes.InvalidArgument},
		{"vendor:" + vendor, "", "", codes.InvalidArgument},
		{"", vendor, "", codes.Unauthenticated},
	} {
		err := e.watch(t, tt.role, tt.vendor, tt.cursor).err(t)
		if status.Code(err) != tt.code {
			t.Errorf("watch as %q of %q from %q: %v, want %v", tt.role, tt.vendor, tt.cursor, err, tt.code)
		}
	}
	// Platform may watch any vendor; ending the call ends the stream.
	w := e.watch(t, "platform", vendor, "")
	if ids, _ := w.snapshot(t); len(ids) != 1 {
		t.Fatalf("snapshot %v", ids)
	}
	w.cancel()
	if err := w.err(t); status.Code(err) != codes.Canceled && !errors.Is(err, io.EOF) {
		t.Fatalf("after cancel: %v", err)
	}
}
