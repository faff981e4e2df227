package jetstream_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/eventstore/jetstream/blockfile"
	"github.com/custody/custody/pkg/natsembed"
)

// Damage to a stopped server's files, as an operator's disk (or hand)
// would do it. Each case must make Open refuse, naming the message, again
// after a second restart (when the server has forgotten its own loss
// report), and must open with AllowDamaged for support, refusing appends.
func TestDamageIsNamedNeverServed(t *testing.T) {
	const commits = damageCommits
	cases := []damageCase{
		{name: "flipped byte in a middle record", damage: func(t *testing.T, msgs string) {
			edit(t, msgs, 6, func(msg []byte) bool { msg[10] ^= 0xff; return false })
		}, want: "message 6: the server cannot return it"},
		{name: "flipped byte in the last record", damage: func(t *testing.T, msgs string) {
			edit(t, msgs, commits, func(msg []byte) bool { msg[10] ^= 0xff; return false })
		}, want: fmt.Sprintf("message %d: the server cannot return it", commits)},
		{name: "edited payload with a recomputed checksum", damage: func(t *testing.T, msgs string) {
			edit(t, msgs, 7, func(msg []byte) bool {
				i := bytes.Index(msg, []byte("amount=100"))
				if i < 0 {
					t.Fatal("payload not found in record 7")
				}
				msg[i+len("amount=")] = '9'
				return true
			})
		}, want: "message 7 (order-o0 revision 2, event e6): its content does not hash to its recorded hash (edited)"},
		{name: "truncated tail", damage: func(t *testing.T, msgs string) {
			blk := filepath.Join(msgs, "1.blk")
			fi, err := os.Stat(blk)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blk, fi.Size()-30); err != nil {
				t.Fatal(err)
			}
		}, want: fmt.Sprintf("message %d: ", commits)},
		{name: "missing block file", big: true, damage: func(t *testing.T, msgs string) {
			if _, err := os.Stat(filepath.Join(msgs, "2.blk")); err != nil {
				t.Fatalf("the test wrote one block only: %v", err)
			}
			if err := os.Remove(filepath.Join(msgs, "1.blk")); err != nil {
				t.Fatal(err)
			}
		}, want: "messages 1-"},
	}
	for _, inKV := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if inKV {
				name += ", index in kv"
			}
			t.Run(name, func(t *testing.T) { tc.run(t, inKV) })
		}
	}
}

// damageCommits is how many commits a case of TestDamageIsNamedNeverServed
// writes before the damage (unless big).
const damageCommits = 12

// damageCase is one case of TestDamageIsNamedNeverServed.
type damageCase struct {
	name   string
	big    bool // enough data for two block files
	damage func(t *testing.T, msgs string)
	want   string // in the refusal
}

// run runs the case; inKV: the stores keep their index in a kv store (one
// for all the case's starts, as a process's read-model store), one stream
// per partition in memory.
func (tc damageCase) run(t *testing.T, inKV bool) {
	cfg := jetstream.Config{Service: "test"}
	if inKV {
		cfg.Index, cfg.IndexCache = openIndexDB(t, t.TempDir()), 1
	}
	dir := t.TempDir()
	n := damageCommits
	if tc.big {
		n = 160 // ~60 KB each: more than one 8 MB block
	}
	withStore(t, dir, cfg, func(st *jetstream.Store) {
		for i := range n {
			data := []byte(fmt.Sprintf("amount=100 n=%d", i))
			if tc.big {
				data = append(data, bytes.Repeat([]byte{'x'}, 60<<10)...)
			}
			if _, err := st.Append(t.Context(), fmt.Sprintf("order-o%d", i%3), eventstore.Any,
				[]eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "t", Data: data}}); err != nil {
				t.Fatal(err)
			}
		}
	})
	tc.damage(t, blockfile.Msgs(dir, "CUSTODY_TEST"))

	// Refused at the first start, and at the next, when the server no
	// longer reports what it discarded.
	for start := 1; start <= 2; start++ {
		srv, nc := startServer(t, dir)
		_, err := jetstream.Open(t.Context(), nc, cfg)
		var de *jetstream.DamageError
		if !errors.As(err, &de) || !errors.Is(err, eventstore.ErrUnreadable) {
			t.Fatalf("start %d: Open = %v, want a DamageError", start, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("start %d: %v\ndoes not name %q", start, err, tc.want)
		}
		nc.Close()
		srv.Shutdown()
	}

	// Support opens it anyway: reads go on, appends are refused.
	damaged := cfg
	damaged.AllowDamaged = true
	withStore(t, dir, damaged, func(st *jetstream.Store) {
		d, err := st.Damage(t.Context())
		if err != nil || len(d) == 0 {
			t.Fatalf("Damage = %v, %v; want the damage", d, err)
		}
		if _, err := st.Append(t.Context(), "order-o9", eventstore.NoStream,
			[]eventstore.EventData{{ID: "new", Type: "t"}}); !errors.Is(err, eventstore.ErrDamaged) {
			t.Fatalf("Append on a damaged store: %v, want ErrDamaged", err)
		}
	})
}

// A read-only reader (another service, the audit) sees the damage the
// owner recorded.
func TestDamageIsVisibleToReaders(t *testing.T) {
	dir := t.TempDir()
	withStore(t, dir, jetstream.Config{Service: "test"}, func(st *jetstream.Store) {
		for i := range 4 {
			if _, err := st.Append(t.Context(), "order-o1", eventstore.Any,
				[]eventstore.EventData{{ID: fmt.Sprintf("e%d", i), Type: "t", Data: []byte("payload")}}); err != nil {
				t.Fatal(err)
			}
		}
		d, err := st.Damage(t.Context())
		if err != nil || d != nil {
			t.Fatalf("sound store: Damage = %v, %v", d, err)
		}
	})
	edit(t, blockfile.Msgs(dir, "CUSTODY_TEST"), 2, func(msg []byte) bool { msg[5] ^= 1; return false })
	srv, nc := startServer(t, dir)
	defer srv.Shutdown()
	defer nc.Close()
	if _, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", AllowDamaged: true}); err != nil {
		t.Fatal(err)
	}
	ro, err := jetstream.Open(t.Context(), nc, jetstream.Config{Service: "test", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ro.Damage(t.Context())
	if err != nil || len(d) == 0 || d[0].Seq != 2 {
		t.Fatalf("reader's Damage = %v, %v; want message 2", d, err)
	}
	if _, err := ro.ReadStream(t.Context(), "order-o1", 0, 0); !errors.Is(err, eventstore.ErrUnreadable) {
		t.Fatalf("reading over the damage: %v, want ErrUnreadable", err)
	}
}

// A sound store's own restarts are not damage: the watermark follows the
// stream.
func TestRestartsOfASoundStore(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		withStore(t, dir, jetstream.Config{Service: "test"}, func(st *jetstream.Store) {
			for i := range 5 {
				if _, err := st.Append(t.Context(), fmt.Sprintf("order-r%d", round), eventstore.Any,
					[]eventstore.EventData{{ID: fmt.Sprintf("e%d-%d", round, i), Type: "t"}}); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := st.ReadAll(t.Context(), 0, 0)
			if err != nil || len(evs) != 5*(round+1) {
				t.Fatalf("round %d: %d events, %v", round, len(evs), err)
			}
		})
	}
}

func startServer(t *testing.T, dir string) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	return srv, nc
}

// withStore runs f on a store over a server on dir, then stops both.
func withStore(t *testing.T, dir string, cfg jetstream.Config, f func(*jetstream.Store)) {
	t.Helper()
	srv, nc := startServer(t, dir)
	defer srv.Shutdown()
	defer nc.Close()
	st, err := jetstream.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f(st)
}

func edit(t *testing.T, msgs string, seq uint64, f func(msg []byte) (reseal bool)) {
	t.Helper()
	if err := blockfile.Edit(msgs, seq, f); err != nil {
		t.Fatal(err)
	}
}
