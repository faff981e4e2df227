package kv_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/custody/custody/pkg/kv"
)

func open(t *testing.T, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func space(t *testing.T, db *kv.DB, name string) *kv.Space {
	t.Helper()
	s, err := db.Space(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commit(t *testing.T, s *kv.Space, pos uint64, kvs ...string) {
	t.Helper()
	b := s.Batch()
	for i := 0; i < len(kvs); i += 2 {
		if err := b.Set([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pos); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, s *kv.Space, from, to string, reverse bool) []string {
	t.Helper()
	var out []string
	var hi []byte
	if to != "" {
		hi = []byte(to)
	}
	if err := s.Scan([]byte(from), hi, reverse, func(k, v []byte) bool {
		out = append(out, string(k)+"="+string(v))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSpacesKeepApartAndSurviveReopening(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	a, b := space(t, db, "orders"), space(t, db, "orders2")
	commit(t, a, 7, "o1", "x", "o2", "y")
	commit(t, b, 3, "o1", "other")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, dir)
	defer db.Close()
	a, b = space(t, db, "orders"), space(t, db, "orders2")
	if got := fmt.Sprint(scan(t, a, "", "", false)); got != "[o1=x o2=y]" {
		t.Errorf("space a = %s", got)
	}
	if got := fmt.Sprint(scan(t, b, "", "", false)); got != "[o1=other]" {
		t.Errorf("space b = %s", got)
	}
	if p, _, err := a.State(); err != nil || p != 7 {
		t.Errorf("a's position = %d, %v; want 7", p, err)
	}
	if p, _, err := b.State(); err != nil || p != 3 {
		t.Errorf("b's position = %d, %v; want 3", p, err)
	}
	if v, ok, err := a.Get([]byte("o2")); err != nil || !ok || string(v) != "y" {
		t.Errorf("Get o2 = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := a.Get([]byte("o3")); err != nil || ok {
		t.Errorf("Get of an absent key = %v, %v", ok, err)
	}
}

func TestScanRangesAndOrder(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := space(t, db, "s")
	commit(t, s, 1, "b", "2", "a", "1", "c", "3", "d", "4")
	for _, tc := range []struct {
		from, to string
		reverse  bool
		want     string
	}{
		{"", "", false, "[a=1 b=2 c=3 d=4]"},
		{"", "", true, "[d=4 c=3 b=2 a=1]"},
		{"b", "d", false, "[b=2 c=3]"},
		{"b", "d", true, "[c=3 b=2]"},
		{"e", "", false, "[]"},
	} {
		if got := fmt.Sprint(scan(t, s, tc.from, tc.to, tc.reverse)); got != tc.want {
			t.Errorf("Scan(%q, %q, %v) = %s, want %s", tc.from, tc.to, tc.reverse, got, tc.want)
		}
	}
	// The space's own bookkeeping is not among its keys, and a stop ends the scan.
	n := 0
	_ = s.Scan(nil, nil, false, func(k, v []byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("a scan stopped by its function visited %d keys", n)
	}
}

func TestBatchReadsItsOwnWritesAndDiscardChangesNothing(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := space(t, db, "s")
	commit(t, s, 1, "k", "old")
	b := s.Batch()
	if v, ok, _ := b.Get([]byte("k")); !ok || string(v) != "old" {
		t.Errorf("batch reads %q, %v before its write", v, ok)
	}
	_ = b.Set([]byte("k"), []byte("new"))
	_ = b.Set([]byte("k2"), []byte("v2"))
	_ = b.Delete([]byte("k2"))
	if v, ok, _ := b.Get([]byte("k")); !ok || string(v) != "new" {
		t.Errorf("batch reads %q, %v after its write", v, ok)
	}
	if _, ok, _ := b.Get([]byte("k2")); ok {
		t.Error("batch reads a key it deleted")
	}
	if v, _, _ := s.Get([]byte("k")); string(v) != "old" {
		t.Errorf("an uncommitted batch shows: %q", v)
	}
	b.Discard()
	if v, _, _ := s.Get([]byte("k")); string(v) != "old" {
		t.Errorf("a discarded batch shows: %q", v)
	}
	if p, _, _ := s.State(); p != 1 {
		t.Errorf("position after a discarded batch = %d", p)
	}
}

func TestResetEmptiesOneSpaceAndRecordsItsVersion(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	a, b := space(t, db, "a"), space(t, db, "b")
	commit(t, a, 5, "k1", "v", "k2", "v")
	commit(t, b, 9, "k1", "w")
	if err := a.Reset("orders-2"); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, a, "", "", false); len(got) != 0 {
		t.Errorf("after Reset: %v", got)
	}
	if p, v, err := a.State(); err != nil || p != 0 || v != "orders-2" {
		t.Errorf("State after Reset = %d, %q, %v", p, v, err)
	}
	if got := fmt.Sprint(scan(t, b, "", "", false)); got != "[k1=w]" {
		t.Errorf("the other space after Reset: %s", got)
	}
	if p, _, _ := b.State(); p != 9 {
		t.Errorf("the other space's position after Reset = %d", p)
	}
}

func TestBadSpaceName(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	for _, name := range []string{"", "a\x00b"} {
		if _, err := db.Space(name); err == nil {
			t.Errorf("Space(%q) accepted", name)
		}
	}
}

// A batch of one space writes keys of a sibling space with the rest of its
// changes: a commit writes both spaces (and the position of its own only),
// a discard neither; the batch reads its own changes to the sibling.
func TestBatchWritesASiblingSpaceAtOnce(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	own := space(t, db, "own")
	shared, err := own.Sibling("shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Sibling("bad\x00name"); err == nil {
		t.Error("Sibling accepted a name with a 0x00 byte")
	}
	commit(t, shared, 0, "gone", "1")

	b := own.Batch()
	in := b.In(shared)
	must(t, b.Set([]byte("a"), []byte("own")))
	must(t, in.Set([]byte("x"), []byte("shared")))
	must(t, in.Delete([]byte("gone")))
	if v, ok, err := in.Get([]byte("x")); err != nil || !ok || string(v) != "shared" {
		t.Errorf("batch reads the sibling's x as %q, %v, %v", v, ok, err)
	}
	if _, ok, err := in.Get([]byte("gone")); err != nil || ok {
		t.Errorf("batch reads the sibling's deleted key: %v, %v", ok, err)
	}
	if _, ok, err := b.Get([]byte("x")); err != nil || ok {
		t.Errorf("the sibling's key is read in the batch's own space: %v, %v", ok, err)
	}
	if _, ok, _ := shared.Get([]byte("x")); ok {
		t.Error("the sibling's key is stored before the commit")
	}
	must(t, b.Commit(5))

	d := own.Batch()
	must(t, d.Set([]byte("b"), []byte("own")))
	must(t, d.In(shared).Set([]byte("y"), []byte("shared")))
	d.Discard()
	must(t, db.Close())

	db = open(t, dir)
	defer db.Close()
	own, shared = space(t, db, "own"), space(t, db, "shared")
	if got := fmt.Sprint(scan(t, own, "", "", false)); got != "[a=own]" {
		t.Errorf("own space = %s", got)
	}
	if got := fmt.Sprint(scan(t, shared, "", "", false)); got != "[x=shared]" {
		t.Errorf("shared space = %s", got)
	}
	for name, want := range map[*kv.Space]uint64{own: 5, shared: 0} {
		if pos, _, err := name.State(); err != nil || pos != want {
			t.Errorf("position %d (%v), want %d", pos, err, want)
		}
	}

	db2 := open(t, t.TempDir())
	defer db2.Close()
	other := space(t, db2, "elsewhere")
	defer func() {
		if recover() == nil {
			t.Error("Batch.In accepted a space of another store")
		}
	}()
	own.Batch().In(other)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestKilledWriterLeavesStateAndPositionTogether: a process that commits
// batches (key i and position i) is killed mid-stream; reopened, the store
// holds exactly the keys up to its position — nothing past it (applied
// twice after a resume), nothing missing below it (skipped).
func TestKilledWriterLeavesStateAndPositionTogether(t *testing.T) {
	if dir := os.Getenv("KV_WRITER_DIR"); dir != "" {
		writeForever(dir)
		return
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLeavesStateAndPositionTogether$")
		cmd.Env = append(os.Environ(), "KV_WRITER_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it mid-stream, after some thousands of commits beyond what it found.
		if _, err := io.ReadFull(out, make([]byte, 6+3*round)); err != nil {
			t.Fatalf("round %d: writer: %v", round, err)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		db := open(t, dir)
		s := space(t, db, "w")
		pos, _, err := s.State()
		if err != nil {
			t.Fatal(err)
		}
		keys := 0
		_ = s.Scan(nil, nil, false, func(k, v []byte) bool {
			i, _ := strconv.ParseUint(string(k), 10, 64)
			if i > pos {
				t.Errorf("round %d: key %d stored past the position %d", round, i, pos)
			}
			keys++
			return true
		})
		if uint64(keys) != pos {
			t.Errorf("round %d: %d keys at position %d", round, keys, pos)
		}
		// Each batch also wrote key i of a sibling space.
		sib, _ := s.Sibling("w sibling")
		keys = 0
		_ = sib.Scan(nil, nil, false, func(k, v []byte) bool { keys++; return true })
		if uint64(keys) != pos {
			t.Errorf("round %d: %d keys in the sibling space at position %d", round, keys, pos)
		}
		if pos == 0 {
			t.Errorf("round %d: nothing reached Pebble's tables", round)
		}
		t.Logf("round %d: killed at position %d", round, pos)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// writeForever resumes after the stored position and commits one key per
// batch until killed; it writes a byte to stdout every 1,000 commits.
//
// Its committed batches reach Pebble only by passing the pending limit (no
// timed flush within the test), and survive the kill only in the memtables
// Pebble flushed to tables (the store keeps no log): a position found after
// the kill is one a flushed memtable held, and the batches after it were
// lost whole.
func writeForever(dir string) {
	db, err := kv.Open(dir, kv.Options{MemTableBytes: 256 << 10, PendingBytes: 32 << 10, FlushEvery: time.Hour})
	if err != nil {
		panic(err)
	}
	s, _ := db.Space("w")
	sib, _ := s.Sibling("w sibling")
	pos, _, err := s.State()
	if err != nil {
		panic(err)
	}
	for i := pos + 1; ; i++ {
		b := s.Batch()
		_ = b.Set([]byte(fmt.Sprintf("%020d", i)), make([]byte, 100))
		_ = b.In(sib).Set([]byte(fmt.Sprintf("%020d", i)), make([]byte, 50))
		if err := b.Commit(i); err != nil {
			panic(err)
		}
		if (i-pos)%1000 == 0 {
			os.Stdout.Write([]byte{'.'})
		}
	}
}

// A read model commits a batch and discards it on the way out (defer
// Discard), and several read models write at once. Ending a batch twice
// would hand Pebble's recycled batch back while another goroutine already
// writes with it: its changes lost or mixed with ours, or a panic.
func TestDiscardAfterCommitWhileOthersWrite(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		s := space(t, db, fmt.Sprint("s", g))
		wg.Go(func() {
			for i := range 3000 {
				b := s.Batch()
				_ = b.Set([]byte("k"), []byte(fmt.Sprint(i)))
				if err := b.Commit(uint64(i + 1)); err != nil {
					t.Errorf("space %d, batch %d: %v", g, i, err)
					return
				}
				runtime.Gosched() // others start batches before this one's deferred Discard
				b.Discard()
				if v, _, err := s.Get([]byte("k")); err != nil || string(v) != fmt.Sprint(i) {
					t.Errorf("space %d after batch %d holds %q (%v)", g, i, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A store written in the earlier layout (keys behind each space's name) is
// emptied when opened, so its read models fold again instead of reading
// what they cannot find; spaces keep their numbers across reopening.
func TestOpenEmptiesAnotherLayout(t *testing.T) {
	dir := t.TempDir()
	old, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = old.Set([]byte("order/orders\x00\x00p"), []byte{0, 0, 0, 0, 0, 0, 0, 9}, pebble.Sync)
	_ = old.Set([]byte("order/orders\x00\x01o/1"), []byte("{}"), pebble.Sync)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	db := open(t, dir)
	s := space(t, db, "order/orders")
	if p, v, err := s.State(); err != nil || p != 0 || v != "" {
		t.Errorf("a space of the earlier layout reads position %d, version %q (%v); want a new space", p, v, err)
	}
	n := 0
	_ = s.Scan(nil, nil, false, func(_, _ []byte) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d keys left of the earlier layout", n)
	}
	commit(t, s, 3, "k", "v")
	other := space(t, db, "audit/index")
	commit(t, other, 5, "k", "w")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir)
	defer db.Close()
	for name, want := range map[string]string{"order/orders": "v", "audit/index": "w"} {
		if v, ok, err := space(t, db, name).Get([]byte("k")); err != nil || !ok || string(v) != want {
			t.Errorf("reopened, %s holds %q, %v (%v); want %q", name, v, ok, err, want)
		}
	}
}

// Committed batches wait in memory before Pebble (write-behind): every
// read sees them at once, a scan merges them with what Pebble holds (a
// pending write hides the stored value, a pending deletion the key), and
// Flush and Close store them.
func TestPendingWritesAreReadAndScannedBeforeTheyAreStored(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := space(t, db, "s")
	commit(t, s, 1, "a", "1", "c", "3", "e", "5", "g", "7")
	if err := db.Flush(); err != nil { // these are stored
		t.Fatal(err)
	}
	commit(t, s, 2, "b", "2", "c", "3'", "f", "6")
	b := s.Batch()
	_ = b.Delete([]byte("e"))
	_ = b.Delete([]byte("f")) // pending, then deleted while pending
	if err := b.Commit(3); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			from, to string
			reverse  bool
			want     string
		}{
			{"", "", false, "[a=1 b=2 c=3' g=7]"},
			{"", "", true, "[g=7 c=3' b=2 a=1]"},
			{"b", "f", false, "[b=2 c=3']"},
			{"b", "g", true, "[c=3' b=2]"},
			{"d", "g", false, "[]"},
		} {
			if got := fmt.Sprint(scan(t, s, tc.from, tc.to, tc.reverse)); got != tc.want {
				t.Errorf("%s: Scan(%q, %q, %v) = %s, want %s", when, tc.from, tc.to, tc.reverse, got, tc.want)
			}
		}
		for k, want := range map[string]string{"a": "1", "b": "2", "c": "3'", "e": "", "f": ""} {
			v, ok, err := s.Get([]byte(k))
			if err != nil || string(v) != want || ok != (want != "") {
				t.Errorf("%s: Get(%s) = %q, %v, %v; want %q", when, k, v, ok, err, want)
			}
		}
		if p, _, _ := s.State(); p != 3 {
			t.Errorf("%s: position %d, want 3", when, p)
		}
		n := 0
		_ = s.Scan(nil, nil, false, func(k, v []byte) bool { n++; return n < 2 })
		if n != 2 {
			t.Errorf("%s: a scan stopped by its function visited %d keys", when, n)
		}
	}
	check("pending")
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	commit(t, s, 4, "c", "3''")
	if err := db.Close(); err != nil { // stores what is pending
		t.Fatal(err)
	}
	db = open(t, dir)
	defer db.Close()
	s = space(t, db, "s")
	if v, _, _ := s.Get([]byte("c")); string(v) != "3''" {
		t.Errorf("after Close and reopening, c = %q", v)
	}
	if p, _, _ := s.State(); p != 4 {
		t.Errorf("after Close and reopening, position %d", p)
	}
}

// A batch ends once: writing to or committing a batch after its Commit is
// an error, not a change slipped into the store.
func TestABatchEndsOnce(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := space(t, db, "s")
	b := s.Batch()
	_ = b.Set([]byte("k"), []byte("v"))
	if err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("k"), []byte("late")); err == nil {
		t.Error("Set after Commit succeeded")
	}
	if err := b.Commit(2); err == nil {
		t.Error("a second Commit succeeded")
	}
	if v, _, _ := s.Get([]byte("k")); string(v) != "v" {
		t.Errorf("k = %q after writes to an ended batch", v)
	}
	if p, _, _ := s.State(); p != 1 {
		t.Errorf("position %d after a second Commit", p)
	}
}

// A scratch store starts empty and knows every key written to it, so a
// read of one never written answers at once; what was written — batches,
// deletions, a Reset's version, across flushes — reads back as in any
// store. Opening a used directory as scratch is refused.
func TestScratchStoreReadsWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{Scratch: true, PendingBytes: 256, MemTableBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s := space(t, db, "s")
	if err := s.Reset("v1"); err != nil {
		t.Fatal(err)
	}
	pad := string(make([]byte, 1000))
	for i := range 200 { // past the pending limit and the memtable many times: tables are written
		commit(t, s, uint64(i+1), fmt.Sprint("k", i), fmt.Sprint(i), fmt.Sprint("pad", i), pad)
	}
	b := s.Batch()
	_ = b.Delete([]byte("k7"))
	if err := b.Commit(201); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		v, ok, err := s.Get([]byte(fmt.Sprint("k", i)))
		if want := fmt.Sprint(i); i != 7 && (err != nil || !ok || string(v) != want) {
			t.Fatalf("k%d = %q, %v, %v; want %s", i, v, ok, err, want)
		}
	}
	if _, ok, _ := s.Get([]byte("k7")); ok {
		t.Error("a deleted key reads back")
	}
	if _, ok, _ := s.Get([]byte("never")); ok {
		t.Error("a key never written reads back")
	}
	if p, v, err := s.State(); p != 201 || v != "v1" || err != nil {
		t.Errorf("State = %d, %q, %v; want 201, v1", p, v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err := kv.Open(dir, kv.Options{Scratch: true}); err == nil {
		_ = db.Close()
		t.Error("a used directory opened as a scratch store")
	}
}
