package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// DiskGuard keeps a reserve of free space on the disk that holds the
// server's store, so that a full disk fails writes at once instead of
// wedging them.
//
// Left alone, nats-server meets a full disk in the middle of writing a
// message block: the write fails, the publisher waits for an
// acknowledgement that never comes, and JetStream may shut itself down
// until the process restarts. The guard looks at the free space every
// interval; below the reserve, Err refuses writes (the event store asks it
// before every append) and the process reports not ready. When space
// returns, it restarts JetStream in process if the disk ran out or
// JetStream stopped, so writing resumes without a restart.
type DiskGuard struct {
	srv     *Server
	reserve uint64
	log     *slog.Logger

	mu        sync.Mutex
	err       error // non-nil while below the reserve
	exhausted bool  // the disk ran out meanwhile: a write may have failed
	// writable ends when the guard starts refusing (a new one when it
	// stops): writes waiting for the server then give up at once.
	writable context.Context
	cancel   context.CancelFunc
}

// GuardDisk starts a guard that keeps reserve bytes free, checking every
// interval until ctx ends.
func (s *Server) GuardDisk(ctx context.Context, reserve uint64, every time.Duration, log *slog.Logger) *DiskGuard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &DiskGuard{srv: s, reserve: reserve, log: log}
	g.writable, g.cancel = context.WithCancel(context.Background())
	g.check()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.check()
			}
		}
	}()
	return g
}

// Err is nil while the store may be written to, and otherwise says why not.
func (g *DiskGuard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Context ends when the guard starts refusing writes: a write waiting for
// the server's acknowledgement (which a full disk never sends) gives up.
func (g *DiskGuard) Context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writable
}

// exhaustedBelow is free space that counts as none: a block write has
// probably failed.
const exhaustedBelow = 1 << 20

func (g *DiskGuard) check() {
	free, err := freeBytes(g.srv.cfg.DataDir)
	if err != nil {
		g.log.Warn("cannot read the free space of the store's disk", "dir", g.srv.cfg.DataDir, "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case free < g.reserve:
		if free < exhaustedBelow {
			g.exhausted = true
		}
		if g.err == nil {
			g.err = fmt.Errorf("the disk holding the event store has %d MiB free, less than the %d MiB kept in reserve", free>>20, g.reserve>>20)
			g.cancel()
			g.log.Error("disk nearly full: refusing writes until space is freed", "dir", g.srv.cfg.DataDir, "free_bytes", free, "reserve_bytes", g.reserve)
		}
	case g.err != nil && free < g.reserve+g.reserve/4:
		// Hysteresis: not back until clearly above the reserve.
	default:
		if g.exhausted || !g.srv.JetStreamEnabled() {
			if err := g.restartJetStream(); err != nil {
				g.log.Error("restarting JetStream after the disk filled", "err", err)
				return // still refusing; tried again at the next check
			}
		}
		if g.err != nil {
			g.log.Info("disk space is back: writes resume", "free_bytes", free)
			g.writable, g.cancel = context.WithCancel(context.Background())
		}
		g.err, g.exhausted = nil, false
	}
}

// restartJetStream stops JetStream if it runs (a block may hold a failed
// write) and starts it again from its files.
func (g *DiskGuard) restartJetStream() error {
	if g.srv.JetStreamEnabled() {
		if err := g.srv.ns.ShutdownJetStream(); err != nil {
			return err
		}
	}
	g.log.Warn("restarting JetStream in process after the disk filled")
	return g.srv.ReenableJetStream()
}

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
