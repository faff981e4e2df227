// Package platformtest runs a real Custody process inside a test, the one
// harness of every integration test: an embedded NATS with JetStream in a
// temporary directory, listening on loopback, the given modules in
// platform.Run (as `custody run --target=…` against that NATS), gRPC on a
// free loopback port, and clients that carry tokens for the roles asked
// for. No fakes: this is the process `custody run` starts, with the clock
// the test chooses.
//
// A test plays the part of a service that does not run by emitting that
// service's events into its stream (Emit), waits for the process to settle
// (Settled) rather than sleeping, polls for what it expects (Eventually,
// Await), and restarts the process on the same data (Restart). It checks
// answers as the API contract gives them (WantCode, WantReason, WantField;
// WantRefused and WritesNothing for refusals that must write nothing),
// tables of calls with Call and Method, and a module's flags with
// ParseFlags and ParseOptions. Main shares one platform among a package's
// tests.
//
//	p := platformtest.Start(t, platformtest.Options{Clock: clk}, order.NewModule(order.Options{}))
//	orders := platformtest.Client(t, p, orderv1.NewOrderServiceClient, "buyer")
package platformtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/personal/jskeys"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
)

// Wait bounds Eventually, Settled and the start of a process.
const Wait = 30 * time.Second

// Options configure a platform under test. The zero value runs on wall
// time with a fresh data directory.
type Options struct {
	// Clock is the process's clock (nil: wall time).
	Clock clock.Clock
	// Dir is the data directory; empty makes a temporary one (removed by
	// Close).
	Dir string
	// Logger receives the process's logs (nil: discarded).
	Logger *slog.Logger
	// Store is the event store backend (zero: JetStream on the test's NATS).
	Store platform.Backend
	// Streams names services whose event streams are created before the
	// modules start, as in the all-in-one, where every service's stream
	// exists before the services that react to it.
	Streams []string
	// CheckpointEvery saves the read models that have a Checkpointer this
	// often (platform.Config.CheckpointEvery; zero: no checkpoints). It
	// may be changed between restarts.
	CheckpointEvery time.Duration
}

// Platform is a running process under test.
type Platform struct {
	Addr    string      // gRPC address
	DataDir string      // data directory (signing key for tokens)
	NATS    *nats.Conn  // a connection to the same NATS, for the test's own reads
	Clock   clock.Clock // the process's clock
	// Web are the addresses of the modules' web interfaces by name
	// (platform.Parts.Web): "console" → "127.0.0.1:41234".
	Web map[string]string

	opts    Options
	modules []platform.Module
	// masterKeys is the keyring file of the personal data's keys, shared
	// with the peers.
	masterKeys string
	server     *natsembed.Server // nil on a peer: it uses its origin's
	natsURL    string
	tempDir    bool

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	stores map[string]*esjs.Store
	proc   *platform.Process
	stop   func() error
}

// Start runs modules until the test ends.
func Start(t testing.TB, o Options, modules ...platform.Module) *Platform {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := New(o, modules...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New runs modules until Close: for a platform shared by a package's tests
// (started in TestMain).
func New(o Options, modules ...platform.Module) (*Platform, error) {
	p := &Platform{opts: o, modules: modules, Clock: o.Clock, conns: map[string]*grpc.ClientConn{}, stores: map[string]*esjs.Store{}}
	if p.Clock == nil {
		p.Clock = clock.Real()
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "custody-test-")
		if err != nil {
			return nil, err
		}
		p.opts.Dir, p.tempDir = dir, true
	}
	p.DataDir = p.opts.Dir
	p.masterKeys = filepath.Join(platform.KeyDir(p.DataDir), "master.keys")
	if _, err := jskeys.LoadKeyring(p.masterKeys, true); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.connect(); err != nil {
		p.Close()
		return nil, err
	}
	for _, svc := range o.Streams {
		if _, err := p.openStore(context.Background(), svc); err != nil {
			p.Close()
			return nil, err
		}
	}
	if err := p.start(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// connect starts the platform's own NATS, or joins its origin's (a peer).
func (p *Platform) connect() error {
	if p.natsURL == "" {
		ns, err := natsembed.Start(natsembed.Config{DataDir: filepath.Join(p.DataDir, "nats"), Listen: true, Host: "127.0.0.1"})
		if err != nil {
			return err
		}
		p.server, p.natsURL = ns, ns.ClientURL()
	}
	nc, err := nats.Connect(p.natsURL)
	p.NATS = nc
	return err
}

// Peer runs modules as a second process on p's NATS, with p's clock and a
// data directory (so a token key) of its own, until the test ends: a second
// replica of a service (`custody run --target=… --nats-url=…`).
func (p *Platform) Peer(t testing.TB, modules ...platform.Module) *Platform {
	t.Helper()
	peer := &Platform{opts: Options{Clock: p.Clock, Dir: t.TempDir(), Logger: p.opts.Logger}, modules: modules,
		Clock: p.Clock, natsURL: p.natsURL, conns: map[string]*grpc.ClientConn{}, stores: map[string]*esjs.Store{},
		masterKeys: p.masterKeys}
	peer.DataDir = peer.opts.Dir
	if err := peer.connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if err := peer.start(); err != nil {
		t.Fatal(err)
	}
	return peer
}

// start runs the modules in platform.Run until p.stop.
func (p *Platform) start() error {
	logger := p.opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *platform.Process, 1)
	done := make(chan error, 1)
	go func() {
		done <- platform.Run(ctx, platform.Config{
			DataDir: p.DataDir, GRPCAddr: "127.0.0.1:0", Version: "test", NATSURL: p.natsURL, MasterKeysFile: p.masterKeys,
			Clock: p.Clock, Logger: logger, Store: p.opts.Store, CheckpointEvery: p.opts.CheckpointEvery, OnReady: func(proc *platform.Process) { ready <- proc },
		}, p.modules)
	}()
	select {
	case proc := <-ready:
		p.mu.Lock()
		p.proc, p.Addr, p.Web = proc, proc.GRPCAddr, proc.Web
		var once sync.Once
		var err error
		p.stop = func() error {
			once.Do(func() { cancel(); err = <-done })
			return err
		}
		p.mu.Unlock()
		return nil
	case err := <-done:
		cancel()
		return fmt.Errorf("platform stopped before serving: %w", err)
	case <-time.After(2 * Wait):
		cancel()
		return fmt.Errorf("platform not serving after %s", 2*Wait)
	}
}

// Opts are the options the next Restart starts the process with.
func (p *Platform) Opts() *Options { return &p.opts }

// Stop stops the process (NATS keeps running): what a crash of the
// services looks like to the rest. Restart brings it back.
func (p *Platform) Stop(t testing.TB) {
	t.Helper()
	if err := p.stopProcess(); err != nil {
		t.Fatal(err)
	}
}

func (p *Platform) stopProcess() error {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
	p.mu.Unlock()
	if stop == nil {
		return nil
	}
	return stop()
}

// Restart stops the process, if it runs, and starts it again on the same
// NATS and data directory. Clients from before are closed: ask again.
func (p *Platform) Restart(t testing.TB) {
	t.Helper()
	if err := p.stopProcess(); err != nil {
		t.Fatal(err)
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
}

// Close stops the process and its own NATS (a peer leaves its origin's
// running) and removes a temporary data directory.
func (p *Platform) Close() {
	_ = p.stopProcess()
	if p.NATS != nil {
		p.NATS.Close()
	}
	if p.server != nil {
		p.server.Shutdown()
	}
	if p.tempDir {
		os.RemoveAll(p.DataDir)
	}
}

// Conn is a client connection whose calls carry a token with roles (none:
// unauthenticated). Connections are shared per set of roles.
func (p *Platform) Conn(t testing.TB, roles ...string) *grpc.ClientConn {
	t.Helper()
	key := strings.Join(roles, ",")
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[key]; ok {
		return c
	}
	tok := ""
	if len(roles) > 0 {
		var err error
		if tok, err = platform.MintToken(p.DataDir, "", "", roles, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	c, err := server.Dial(p.Addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	p.conns[key] = c
	return c
}

// Client is a typed client of a gRPC service whose calls carry a token
// with roles: Client(t, p, orderv1.NewOrderServiceClient, "buyer").
func Client[C any](t testing.TB, p *Platform, newClient func(grpc.ClientConnInterface) C, roles ...string) C {
	t.Helper()
	return newClient(p.Conn(t, roles...))
}

// Store opens service's event store on the platform's NATS, creating its
// stream if need be: to read what a module stored, or to write as a
// service that does not run in this process.
func (p *Platform) Store(t testing.TB, service string) *esjs.Store {
	t.Helper()
	st, err := p.openStore(t.Context(), service)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (p *Platform) openStore(ctx context.Context, service string) (*esjs.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stores[service]; ok {
		return st, nil
	}
	st, err := esjs.Open(ctx, p.NATS, esjs.Config{Service: service, Now: p.Clock.Now})
	if err != nil {
		return nil, err
	}
	p.stores[service] = st
	return st, nil
}

var eventSeq atomic.Int64

// Emit appends msgs as one commit to stream of service's store, as that
// service would (actor "service:<service>", fresh event ids), and returns
// them as recorded.
func (p *Platform) Emit(t testing.TB, service, stream string, msgs ...proto.Message) []eventstore.RecordedEvent {
	t.Helper()
	var evs []eventstore.EventData
	for _, m := range msgs {
		ed, err := es.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ed.ID = fmt.Sprintf("test-ev-%d", eventSeq.Add(1))
		ed.Metadata = eventstore.Metadata{Actor: "service:" + service}
		evs = append(evs, ed)
	}
	st := p.Store(t, service)
	res, err := st.Append(t.Context(), stream, eventstore.Any, evs)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ReadStream(t.Context(), stream, res.LastRevision+1-uint64(len(evs)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Events returns the decoded payloads of one stream of service's store
// (none when the stream does not exist).
func (p *Platform) Events(t testing.TB, service, stream string) []proto.Message {
	t.Helper()
	recs, err := p.Store(t, service).ReadStream(t.Context(), stream, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := make([]proto.Message, 0, len(recs))
	for _, r := range recs {
		ev, err := es.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Payload)
	}
	return out
}

// Settled waits until every module's projections have applied all their
// sources hold and every reaction has handled everything delivered to it.
func (p *Platform) Settled(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	Eventually(t, "the platform to settle", func() error { return proc.Settled(t.Context()) })
}

// Eventually polls f until it returns nil, failing the test with f's last
// error after Wait.
func Eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", Wait, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var idSeq atomic.Int64

// ID returns a fresh id with prefix, so tests sharing a platform never meet.
func ID(prefix string) string { return fmt.Sprintf("%s%d", prefix, idSeq.Add(1)) }

// Until is Eventually for a condition that has no error to tell.
func Until(t testing.TB, what string, ok func() bool) {
	t.Helper()
	Eventually(t, what, func() error {
		if !ok() {
			return errors.New("not yet")
		}
		return nil
	})
}
