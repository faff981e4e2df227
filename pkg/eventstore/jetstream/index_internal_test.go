package jetstream

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
)

func TestIndexEntryRoundTrips(t *testing.T) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	for _, si := range []*streamIndex{
		{rev: 0, hash: hash, lastID: "e0", refs: 1, open: []msgRef{{seq: 7, first: 0}}},
		{rev: 1 << 40, hash: hash, lastID: "01JC8Z5Q0B6W8Y3D4M2N7K9T1R", refs: uint64(refChunk) + 2,
			open: []msgRef{{seq: 1 << 33, first: 1 << 40}, {seq: 1<<33 + 1, first: 1<<40 + 5}}},
		// A damaged stream folded as stored: its revisions may go back.
		{rev: 3, hash: []byte{1, 2}, lastID: "x", refs: 3, open: []msgRef{{seq: 1, first: 9}, {seq: 2, first: 3}, {seq: 5, first: 3}}},
		{rev: 63, hash: hash, lastID: "last", refs: uint64(refChunk)}, // its refs all sealed
	} {
		got, err := decodeHead(appendHead(nil, si))
		if err != nil || !reflect.DeepEqual(got, si) {
			t.Errorf("decodeHead(appendHead(%+v)) = %+v, %v", si, got, err)
		}
	}
	refs := []msgRef{{seq: 3, first: 0}, {seq: 4, first: 2}, {seq: 90, first: 1}}
	if got, err := decodeRefs(appendRefs(nil, refs)); err != nil || !reflect.DeepEqual(got, refs) {
		t.Errorf("refs: %v, %v", got, err)
	}
}

func TestIndexEntryRejectsGarbage(t *testing.T) {
	good := appendHead(nil, &streamIndex{rev: 5, hash: make([]byte, 32), lastID: "id", refs: 2, open: []msgRef{{1, 0}, {4, 3}}})
	for n := range len(good) {
		if _, err := decodeHead(good[:n]); err == nil {
			t.Errorf("decodeHead of %d of %d bytes: no error", n, len(good))
		}
	}
	if _, err := decodeHead(append(bytes.Clone(good), 1, 1)); err == nil {
		t.Error("decodeHead with a ref more than the count: no error")
	}
}

// However many streams a store writes, with its index in a kv store it
// keeps no more than IndexCache of them decoded per partition, and nothing
// in a map.
func TestIndexInKVKeepsOnlyHotStreamsInMemory(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir(), RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const cache, streams = 10, 300
	st, err := Open(t.Context(), nc, Config{Service: "hot", Index: db, IndexCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for k := range streams {
		for _, agg := range []string{"order", "claim"} {
			if _, err := st.Append(t.Context(), fmt.Sprintf("%s-%d", agg, k), eventstore.NoStream, []eventstore.EventData{{ID: fmt.Sprint(agg, k), Type: "t"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for subject, p := range st.partitions {
		p.mu.Lock()
		hot, mem, pending := p.idx.hot.Len(), len(p.idx.mem), len(p.idx.pending)
		p.mu.Unlock()
		if hot > cache || mem != 0 || pending >= indexCommitEvery {
			t.Errorf("%s: %d streams decoded (cache %d), %d in a map, %d pending", subject, hot, cache, mem, pending)
		}
	}
	for k := range streams {
		if st.Absent(fmt.Sprintf("claim-%d", k)) {
			t.Fatalf("claim-%d is absent", k)
		}
	}
}
