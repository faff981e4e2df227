package jetstream_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/eventstore/jetstream/blockfile"
)

// Scan hands out every message once, in order, each with all its events:
// the same events ReadAll returns. Writers at once make messages of several
// appends; one writer after them makes more than a pull's worth of
// messages.
func TestScanReadsEveryMessageOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	withStore(t, dir, jetstream.Config{Service: "test"}, func(st *jetstream.Store) {
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := range 100 {
					evs := []eventstore.EventData{{ID: fmt.Sprintf("e%d-%d", w, i), Type: "t"}}
					if i%4 == 0 {
						evs = append(evs, eventstore.EventData{ID: fmt.Sprintf("e%d-%d-b", w, i), Type: "t"})
					}
					if _, err := st.Append(t.Context(), fmt.Sprintf("order-o%d", (w+i)%9), eventstore.Any, evs); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i := range 1000 {
			if _, err := st.Append(t.Context(), "order-one", eventstore.Any, []eventstore.EventData{{ID: fmt.Sprintf("s%d", i), Type: "t"}}); err != nil {
				t.Fatal(err)
			}
		}
		want, err := st.ReadAll(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []eventstore.RecordedEvent
		messages := 0
		if err := st.Scan(t.Context(), func(pos uint64, evs []eventstore.RecordedEvent, err error) error {
			if err != nil {
				return err
			}
			if seq, _ := jetstream.SplitPosition(pos); seq != uint64(messages+1) || evs[0].Position != pos {
				t.Fatalf("message %d handed as position %d (first event at %d)", messages+1, pos, evs[0].Position)
			}
			messages++
			got = append(got, evs...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 16*125+1000 || !slices.EqualFunc(got, want, func(a, b eventstore.RecordedEvent) bool {
			return a.ID == b.ID && a.Position == b.Position && string(a.Hash) == string(b.Hash)
		}) {
			t.Fatalf("Scan gave %d events, ReadAll %d; want the same 3000", len(got), len(want))
		}
		last, _ := jetstream.SplitPosition(want[len(want)-1].Position)
		if messages != int(last) || messages <= 1000 || messages == len(got) {
			t.Fatalf("%d messages handed of %d; want each once, more than one pull's worth, some of several events", messages, last)
		}
	})
}

// A record Scan cannot read comes in its place as ErrUnreadable, naming
// the message, and the rest of the stream follows it.
func TestScanNamesUnreadableRecordsAndGoesOn(t *testing.T) {
	cases := []struct {
		name   string
		damage func(msg []byte) (reseal bool)
		want   string
	}{
		{"the server cannot return it", func(msg []byte) bool { msg[5] ^= 1; return false }, "message 2: the server cannot return it"},
		{"it does not decode", func(msg []byte) bool { msg[0] = 0xff; return true }, "message 2 on custody.test.order.commits is not a commit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			withStore(t, dir, jetstream.Config{Service: "test"}, func(st *jetstream.Store) {
				for i := range 4 {
					if _, err := st.Append(t.Context(), "order-o1", eventstore.Any,
						[]eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "t", Data: []byte("payload")}}); err != nil {
						t.Fatal(err)
					}
				}
			})
			edit(t, blockfile.Msgs(dir, "CUSTODY_TEST"), 2, tc.damage)
			srv, nc := startServer(t, dir)
			defer srv.Shutdown()
			defer nc.Close()
			ro, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := ro.Scan(t.Context(), func(pos uint64, evs []eventstore.RecordedEvent, err error) error {
				switch {
				case err == nil:
					got = append(got, evs[0].ID)
				case !errors.Is(err, eventstore.ErrUnreadable) || !strings.Contains(err.Error(), tc.want) || pos != jetstream.Position(2, 0):
					t.Fatalf("damage handed as %v at position %d; want ErrUnreadable naming %q at message 2", err, pos, tc.want)
				default:
					got = append(got, "unreadable")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := []string{"e0", "unreadable", "e2", "e3"}; !slices.Equal(got, want) {
				t.Fatalf("Scan handed %v, want %v", got, want)
			}
		})
	}
}
