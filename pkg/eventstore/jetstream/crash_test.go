//go:build unix

package jetstream_test

// Crash durability with a real process and SIGKILL.
//
// TestCrashDurability re-executes the test binary as a child
// (TestCrashChild, enabled by CUSTODY_CRASH_CHILD_DIR) that runs an embedded
// server with the default SyncAlways on a data directory and appends commands
// of one and three events (expected revision Exact, one writer per stream,
// several streams at once), printing one line per acknowledged append. The
// parent kills the child with SIGKILL while appends are in flight, restarts a
// server on the same directory and checks that every acknowledged event is
// there, where the acknowledgement said, with an unbroken hash chain, and that
// whatever was in flight is either wholly present or wholly absent. It does
// this for several rounds on the same directory, so later children also
// recover from (and continue after) a crashed predecessor.
//
// SIGKILL loses the process, not the machine: the page cache survives, so
// this test proves that an acknowledgement is never given before the write
// reached the kernel and that recovery never invents, loses or splits
// commands. It cannot prove the fsync part of SyncAlways (that needs a power
// cut).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
)

const (
	crashEnvDir     = "CUSTODY_CRASH_CHILD_DIR"
	crashEnvLife    = "CUSTODY_CRASH_CHILD_LIFETIME" // safety net: the child exits by itself after this
	crashService    = "crash"
	crashWriters    = 6 // streams acct-w0 … acct-w5, one writer goroutine each
	crashType       = "custody.crash.v1.Tick"
	crashCorrelated = "crash-test"
)

func crashStream(w int) string { return fmt.Sprintf("acct-w%d", w) }

// crashEventID names event i of n of command cmd on writer w's stream, so the
// parent can tell command boundaries from the stored events alone.
func crashEventID(w, cmd, i, n int) string { return fmt.Sprintf("w%d.c%d.%d/%d", w, cmd, i, n) }

func parseCrashEventID(id string) (w, cmd, i, n int, err error) {
	_, err = fmt.Sscanf(id, "w%d.c%d.%d/%d", &w, &cmd, &i, &n)
	return
}

// crashCommandSize mixes single-event and three-event commands (about a third
// of them three events in one message), deterministically so a resumed child
// agrees.
func crashCommandSize(w, cmd int) int {
	if (cmd*7+w)%3 == 0 {
		return 3
	}
	return 1
}

// crashPayload is 256 deterministic bytes per event id.
func crashPayload(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return bytes.Repeat(sum[:], 8)
}

func crashEvents(w, cmd int) []eventstore.EventData {
	n := crashCommandSize(w, cmd)
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		id := crashEventID(w, cmd, i, n)
		evs[i] = eventstore.EventData{
			ID:   id,
			Type: crashType,
			Data: crashPayload(id),
			Metadata: eventstore.Metadata{
				CorrelationID: crashCorrelated,
				CausationID:   fmt.Sprintf("cmd-w%d-c%d", w, cmd),
				Actor:         "service:crash",
			},
		}
	}
	return evs
}

// TestCrashChild is the child half of TestCrashDurability; it only runs when
// re-executed by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("child process of TestCrashDurability; runs only when " + crashEnvDir + " is set")
	}
	life := 2 * time.Minute
	if v, err := time.ParseDuration(os.Getenv(crashEnvLife)); err == nil && v > 0 {
		life = v
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...) + "\n"
		outMu.Lock()
		defer outMu.Unlock()
		// One write(2) per line (well under PIPE_BUF): a line is either wholly
		// in the pipe or not at all when the kill comes. os.Stdout is unbuffered.
		_, _ = os.Stdout.WriteString(line)
	}
	die := func(format string, args ...any) {
		say("ERR "+format, args...)
		os.Exit(3)
	}

	srv, err := natsembed.Start(natsembed.Config{DataDir: dir}) // SyncAlways
	if err != nil {
		die("start server: %v", err)
	}
	nc, err := srv.Connect()
	if err != nil {
		die("connect: %v", err)
	}
	ctx := context.Background()
	// The index in a kv store, as in custody run, killed with the rest:
	// the next child reopens what the kill left of it. One stream's entry
	// per partition in memory and refs sealed four by four: the six
	// streams are cold in turn, and long.
	defer jetstream.SetRefChunk(4)()
	index, err := kv.Open(filepath.Join(dir, "index"), kv.Options{})
	if err != nil {
		die("open index: %v", err)
	}
	st, err := jetstream.Open(ctx, nc, jetstream.Config{Service: crashService, Index: index, IndexCache: 1})
	if err != nil {
		die("open store: %v", err)
	}

	// Resume where a crashed predecessor stopped.
	type cursor struct {
		exists  bool
		lastRev uint64
		nextCmd int
	}
	cursors := make([]cursor, crashWriters)
	for w := range cursors {
		evs, err := st.ReadStream(ctx, crashStream(w), 0, 0)
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound):
		case err != nil:
			die("read %s: %v", crashStream(w), err)
		default:
			last := evs[len(evs)-1]
			_, cmd, i, n, err := parseCrashEventID(last.ID)
			if err != nil || i != n-1 {
				die("stream %s ends with event %q, not the end of a command", crashStream(w), last.ID)
			}
			cursors[w] = cursor{exists: true, lastRev: last.Revision, nextCmd: cmd + 1}
		}
		c := cursors[w]
		say("START %s %t %d %d", crashStream(w), c.exists, c.lastRev, c.nextCmd)
	}

	for w := range crashWriters {
		go func() {
			c := cursors[w]
			stream := crashStream(w)
			for cmd := c.nextCmd; ; cmd++ {
				evs := crashEvents(w, cmd)
				exp := eventstore.NoStream
				want := uint64(len(evs) - 1)
				if c.exists {
					exp = eventstore.Exact(c.lastRev)
					want = c.lastRev + uint64(len(evs))
				}
				res, err := st.Append(ctx, stream, exp, evs)
				if err != nil {
					die("append %s cmd %d: %v", stream, cmd, err)
				}
				if res.Duplicate || res.LastRevision != want {
					die("append %s cmd %d: got %+v, want last revision %d", stream, cmd, res, want)
				}
				ids := make([]string, len(evs))
				for i, e := range evs {
					ids[i] = e.ID
				}
				say("ACK %s %d %d %s", stream, res.LastRevision, res.LastPosition, strings.Join(ids, ","))
				c.exists, c.lastRev = true, res.LastRevision
			}
		}()
	}
	time.Sleep(life)
	die("not killed within %s", life)
}

type crashAck struct {
	round   int
	stream  string
	lastRev uint64
	lastPos uint64
	ids     []string
}

type crashStart struct {
	exists  bool
	lastRev uint64
	nextCmd int
}

// TestCrashDurability is the parent: it kills children and checks what
// survived.
func TestCrashDurability(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		t.Skip("running as a crash child")
	}
	rounds, acksPerRound, deadline := 3, 200, 90*time.Second
	if testing.Short() {
		rounds, acksPerRound, deadline = 2, 60, 45*time.Second
	}
	dir := t.TempDir()
	var acks []crashAck
	for round := 1; round <= rounds; round++ {
		starts, got := crashRunChild(t, dir, round, acksPerRound, deadline)
		acks = append(acks, got...)
		n := 0
		for _, a := range got {
			n += len(a.ids)
		}
		t.Logf("round %d: killed the child after %d acknowledged appends (%d events)", round, len(got), n)
		crashVerify(t, dir, round, acks, starts, round == rounds)
	}
}

// crashRunChild runs one child until it has acknowledged want appends (or the
// deadline passes), SIGKILLs it and returns what it reported.
func crashRunChild(t *testing.T, dir string, round, want int, deadline time.Duration) (map[string]crashStart, []crashAck) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvLife+"="+(deadline+time.Minute).String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A fragment without its newline was never wholly written
				// and is not an acknowledgement; drop it.
				return
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()

	starts := map[string]crashStart{}
	var acks []crashAck
	var childErr string
	parse := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "START":
			last, _ := strconv.ParseUint(f[3], 10, 64)
			next, _ := strconv.Atoi(f[4])
			starts[f[1]] = crashStart{exists: f[2] == "true", lastRev: last, nextCmd: next}
		case len(f) == 5 && f[0] == "ACK":
			rev, err1 := strconv.ParseUint(f[2], 10, 64)
			pos, err2 := strconv.ParseUint(f[3], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("round %d: bad ack line %q", round, line)
			}
			acks = append(acks, crashAck{round: round, stream: f[1], lastRev: rev, lastPos: pos, ids: strings.Split(f[4], ",")})
		case len(f) > 0 && f[0] == "ERR":
			childErr = line
		}
	}

	timer := time.NewTimer(deadline)
	defer timer.Stop()
	exited := false
wait:
	for len(acks) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				exited = true
				break wait
			}
			parse(line)
		case <-timer.C:
			break wait
		}
	}
	if !exited {
		// Let the writers run a little past the count so that the kill
		// lands at a random point of some append (they are always in flight:
		// every writer appends in a loop).
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill child: %v", round, err)
		}
	}
	// Lines already in the pipe were written after their appends were
	// acknowledged, before the kill: they count.
	for line := range lines {
		parse(line)
	}
	err = cmd.Wait()
	killed = true
	if childErr != "" {
		t.Fatalf("round %d: child failed: %s\nstderr:\n%s", round, childErr, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child was not killed by SIGKILL (exited on its own? wait: %v)\nstderr:\n%s", round, err, stderr.String())
	}
	if len(starts) != crashWriters {
		t.Fatalf("round %d: child reported %d of %d streams before it died\nstderr:\n%s", round, len(starts), crashWriters, stderr.String())
	}
	if len(acks) == 0 {
		t.Fatalf("round %d: no append acknowledged within %s\nstderr:\n%s", round, deadline, stderr.String())
	}
	return starts, acks
}

// crashLog collects the restarted server's log lines.
type crashLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *crashLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *crashLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

var _ io.Writer = (*crashLog)(nil)

// crashVerify restarts a server on dir and checks the store against every
// acknowledgement so far.
func crashVerify(t *testing.T, dir string, round int, acks []crashAck, starts map[string]crashStart, last bool) {
	t.Helper()
	logs := &crashLog{}
	srv, err := natsembed.Start(natsembed.Config{DataDir: dir,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("round %d: restart on the crashed directory: %v", round, err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := jetstream.Open(ctx, nc, jetstream.Config{Service: crashService})
	if err != nil {
		t.Fatalf("round %d: open store after crash: %v", round, err)
	}
	for _, l := range logs.snapshot() {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Logf("round %d: server on restart: %s", round, l)
		}
	}

	// The global order: messages 1..N with no gaps and nothing deleted, and
	// events in strictly increasing positions that cover every message, each
	// message's events at indexes 0, 1, … (a message is one command).
	info, err := st.JetStream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := info.State
	if s.FirstSeq != 1 || s.LastSeq != s.Msgs || s.NumDeleted != 0 {
		t.Errorf("round %d: stream state first=%d last=%d msgs=%d deleted=%d: the global order has gaps", round, s.FirstSeq, s.LastSeq, s.Msgs, s.NumDeleted)
	}
	all, err := st.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatalf("round %d: read all: %v", round, err)
	}
	byStream := map[string][]eventstore.RecordedEvent{}
	var msgs uint64
	for i, e := range all {
		seq, idx := jetstream.SplitPosition(e.Position)
		switch {
		case idx == 0 && seq == msgs+1:
			msgs++
		case idx > 0 && i > 0 && seq == msgs && e.Position == all[i-1].Position+1:
		default:
			t.Fatalf("round %d: ReadAll event %d has position %d (message %d, index %d) after %d messages: a gap or disorder", round, i, e.Position, seq, idx, msgs)
		}
		byStream[e.Stream] = append(byStream[e.Stream], e)
	}
	if msgs != s.Msgs {
		t.Errorf("round %d: ReadAll covered %d messages, the stream holds %d", round, msgs, s.Msgs)
	}
	if last, err := st.LastPosition(ctx); err != nil || (len(all) > 0 && last != all[len(all)-1].Position) {
		t.Errorf("round %d: LastPosition = %d, %v; ReadAll ends at %d", round, last, err, all[len(all)-1].Position)
	}

	extras := 0
	for w := range crashWriters {
		stream := crashStream(w)
		evs, err := st.ReadStream(ctx, stream, 0, 0)
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("round %d: read %s: %v", round, stream, err)
		}
		if got, want := crashIDs(evs), crashIDs(byStream[stream]); !slices.Equal(got, want) {
			t.Errorf("round %d: %s: ReadStream and ReadAll disagree:\n%v\n%v", round, stream, got, want)
		}
		// Every event verifies, revisions 0..n-1 with no hole.
		if n, err := eventstore.VerifyChain(evs); err != nil {
			t.Errorf("round %d: %s: %v (after %d events)", round, stream, err, n)
		}
		// The stream is whole commands 0, 1, 2, … in order: an in-flight
		// command is all there or not at all.
		cmdAt := make([]int, len(evs)) // command number of each revision
		nextCmd := 0
		for r := 0; r < len(evs); {
			e := evs[r]
			ew, cmd, i, n, err := parseCrashEventID(e.ID)
			if err != nil || ew != w || cmd != nextCmd || i != 0 || n != crashCommandSize(w, cmd) {
				t.Errorf("round %d: %s: revision %d holds %q where command %d should start", round, stream, r, e.ID, nextCmd)
				break
			}
			if r+n > len(evs) {
				t.Errorf("round %d: %s: command %d is cut: only %d of its %d events are stored (not atomic)", round, stream, cmd, len(evs)-r, n)
				break
			}
			want := crashEvents(w, cmd)
			for k := range n {
				g := evs[r+k]
				if g.ID != want[k].ID || g.Type != crashType || !bytes.Equal(g.Data, want[k].Data) || g.Metadata.CausationID != want[k].Metadata.CausationID || g.Metadata.CorrelationID != crashCorrelated {
					t.Errorf("round %d: %s: revision %d is %q, want event %s of command %d intact", round, stream, r+k, g.ID, want[k].ID, cmd)
				}
				cmdAt[r+k] = cmd
			}
			r += n
			nextCmd++
		}

		// Every acknowledged append is there, where its ack said.
		lastAckedCmd := -1
		if sp, ok := starts[stream]; ok {
			lastAckedCmd = sp.nextCmd - 1 // what this round's child started after
		}
		for _, a := range acks {
			if a.stream != stream {
				continue
			}
			first := a.lastRev + 1 - uint64(len(a.ids))
			for k, id := range a.ids {
				r := first + uint64(k)
				if r >= uint64(len(evs)) {
					t.Errorf("round %d: %s: acknowledged event %s (round %d, revision %d) is lost: the stream ends at %d events", round, stream, id, a.round, r, len(evs))
					break
				}
				if evs[r].ID != id {
					t.Errorf("round %d: %s: acknowledged event %s (round %d) should be at revision %d, found %s", round, stream, id, a.round, r, evs[r].ID)
				}
			}
			if a.lastRev < uint64(len(evs)) && evs[a.lastRev].Position != a.lastPos {
				t.Errorf("round %d: %s: acknowledged at position %d, stored at %d", round, stream, a.lastPos, evs[a.lastRev].Position)
			}
			if a.round == round && a.lastRev < uint64(len(evs)) {
				lastAckedCmd = max(lastAckedCmd, cmdAt[a.lastRev])
			}
		}
		// One writer per stream has at most one command unacknowledged at a
		// time: more than one after the last ack would be an invention.
		if n := nextCmd - 1 - lastAckedCmd; n > 1 {
			t.Errorf("round %d: %s: %d commands stored after the last acknowledged one; at most one was in flight", round, stream, n)
		} else if n == 1 {
			extras++
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("round %d: restart OK: %d events in %d streams, every ack present, chains verify, %d in-flight command(s) stored whole",
		round, len(all), len(byStream), extras)

	if last {
		// The recovered store takes new appends after the recovered tail.
		stream := crashStream(0)
		evs, err := st.ReadStream(ctx, stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, cmd, _, _, _ := parseCrashEventID(evs[len(evs)-1].ID)
		add := crashEvents(0, cmd+1)
		if _, err := st.Append(ctx, stream, eventstore.Exact(evs[len(evs)-1].Revision), add); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		evs, err = st.ReadStream(ctx, stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventstore.VerifyChain(evs); err != nil {
			t.Fatalf("chain after an append past the crash: %v", err)
		}
	}
}

func crashIDs(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}
