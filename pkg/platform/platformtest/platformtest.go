// Package platformtest runs a real Custody process inside a test: an
// embedded NATS with JetStream listening on loopback, the given modules in
// platform.Run, gRPC on a free loopback port, and clients that carry tokens
// for the roles asked for. No fakes: this is the process `custody run`
// starts, with the clock the test chooses.
package platformtest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
)

// Platform is a running process under test.
type Platform struct {
	Addr    string     // gRPC address
	DataDir string     // data directory (signing key for tokens)
	NATS    *nats.Conn // a connection to the same NATS, for the test's own reads

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// Start runs modules on clk (nil: wall time) until the test ends.
func Start(t testing.TB, clk clock.Clock, modules ...platform.Module) *Platform {
	t.Helper()
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{DataDir: filepath.Join(dir, "nats"), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- platform.Run(ctx, platform.Config{
			DataDir: dir, GRPCAddr: "127.0.0.1:0", Version: "test", NATSURL: ns.ClientURL(), Clock: clk,
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnReady: func(addr, _ string) { ready <- addr },
		}, modules)
	}()
	p := &Platform{DataDir: dir, NATS: nc, conns: map[string]*grpc.ClientConn{}}
	select {
	case p.Addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("platform stopped before serving: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("platform not serving after 60s")
	}
	t.Cleanup(func() {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		cancel()
		<-done // before the data directory is removed
	})
	return p
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

// Eventually polls ok until it holds, failing the test after 30s.
func Eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
