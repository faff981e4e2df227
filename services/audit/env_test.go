package audit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/eventstore"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/audit/internal/story"
)

// The tests run the real thing: an embedded nats-server with JetStream,
// the audit module inside platform.Run (as `custody run --target=audit`
// against an external NATS), real gRPC over loopback with minted tokens.
// The other services are not run: the tests play their part by appending
// the events they would store (internal/story) to their JetStream streams.

const waitFor = 20 * time.Second

var t0 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// services are the stores the audit service indexes.
var services = []string{"catalog", "order", "fulfilment", "trust", "payouts"}

// env is one NATS server (data in dir/nats) and the audit module run
// against it (keys in dir/keys).
type env struct {
	dir    string
	nats   *natsembed.Server
	nc     *nats.Conn
	clock  *clock.Fake
	stores map[string]eventstore.Store // writable, as the owning services have them
	addr   string
	stop   func() error

	mu      sync.Mutex
	clients map[string]auditv1.AuditServiceClient
	conns   []*grpc.ClientConn
}

// newEnv starts NATS on dir (a fresh temporary directory when ""), creates
// the streams of the services named, and starts the audit module.
func newEnv(t testing.TB, dir string, create ...string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e := &env{dir: dir, clock: clock.NewFake(t0), stores: map[string]eventstore.Store{}, clients: map[string]auditv1.AuditServiceClient{}}
	e.startNATS(t)
	for _, svc := range create {
		e.store(t, svc)
	}
	e.start(t)
	t.Cleanup(e.close)
	return e
}

func (e *env) startNATS(t testing.TB) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: filepath.Join(e.dir, "nats"), Listen: true, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	e.nats, e.nc = srv, nc
}

// store opens (creating if need be) a service's stream for writing.
func (e *env) store(t testing.TB, svc string) eventstore.Store {
	t.Helper()
	if st, ok := e.stores[svc]; ok {
		return st
	}
	st, err := esjs.Open(context.Background(), e.nc, esjs.Config{Service: svc, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.stores[svc] = st
	return st
}

// write appends story events to the services' streams (creating them).
func (e *env) write(t testing.TB, s story.Story, events []story.Event) {
	t.Helper()
	for _, ev := range events {
		e.store(t, ev.Service)
	}
	if err := s.Write(t.Context(), e.stores, e.clock, events); err != nil {
		t.Fatal(err)
	}
}

// start runs the audit module in platform.Run until stop.
func (e *env) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		Version: "test", DataDir: e.dir, GRPCAddr: "127.0.0.1:0", NATSURL: e.nats.ClientURL(),
		Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(grpcAddr, _ string) { ready <- grpcAddr },
	}
	go func() {
		done <- platform.Run(ctx, cfg, []platform.Module{audit.NewModule(audit.Options{FreshnessWait: 5 * time.Second})})
	}()
	select {
	case e.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("platform.Run ended: %v", err)
	case <-time.After(waitFor):
		cancel()
		t.Fatal("audit module not serving")
	}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
}

// shutdown stops the audit module and the NATS server (cleanly: the
// server writes its stream state), keeping the data directory.
func (e *env) shutdown() {
	if e.stop != nil {
		_ = e.stop()
		e.stop = nil
	}
	e.mu.Lock()
	for _, c := range e.conns {
		c.Close()
	}
	e.conns, e.clients = nil, map[string]auditv1.AuditServiceClient{}
	e.mu.Unlock()
	if e.nc != nil {
		e.nc.Close()
		e.nc = nil
	}
	if e.nats != nil {
		e.nats.Shutdown()
		e.nats = nil
	}
}

func (e *env) close() { e.shutdown() }

// as returns a client whose calls carry a token with role ("" for none).
func (e *env) as(t testing.TB, role string) auditv1.AuditServiceClient {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[role]; ok {
		return c
	}
	tok := ""
	if role != "" {
		var err error
		if tok, err = platform.MintToken(e.dir, "", "", []string{role}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := server.Dial(e.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	e.conns = append(e.conns, conn)
	c := auditv1.NewAuditServiceClient(conn)
	e.clients[role] = c
	return c
}

// eventually retries f until it succeeds or the deadline passes.
func eventually(t testing.TB, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", waitFor, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// copyDir copies a directory tree (the NATS data of a stopped server).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		if !d.Type().IsRegular() {
			return errors.New("not a regular file: " + path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o640)
	})
}
