package server

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// limitListener caps the connections open at once at max: past it, Accept
// closes each new connection straight away and waits for the next. A
// connection counts from its accept until it is closed, handshake
// included, so half-open connections count too.
//
// Excess connections are refused rather than queued (as
// golang.org/x/net/netutil.LimitListener queues them): a queued client's
// TCP connect succeeds but the server never reads it, so it hangs until its
// own connect timeout (20s in grpc-go) while the kernel's accept backlog
// fills up behind it. Refused, it fails fast (Unavailable), backs off and
// retries, or tries another replica behind a load balancer; and the
// backlog keeps draining, so a freed slot goes to whoever connects next.
func limitListener(l net.Listener, max int, log *slog.Logger) net.Listener {
	refused, _ := otel.Meter("github.com/custody/custody/pkg/server").Int64Counter("custody.grpc.connections.refused",
		metric.WithDescription("gRPC connections closed on accept because the cap on open connections was reached"))
	return &limitedListener{Listener: l, max: max, log: log, refusedTotal: refused}
}

type limitedListener struct {
	net.Listener
	max          int
	log          *slog.Logger
	refusedTotal metric.Int64Counter // nil-safe: a failed counter is a no-op one

	mu      sync.Mutex
	open    int
	refused int // since the cap was last reached
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit() {
			return &limitedConn{Conn: c, release: l.release}, nil
		}
		c.Close()
		if l.refusedTotal != nil {
			l.refusedTotal.Add(context.Background(), 1)
		}
	}
}

// admit counts a new connection in, or reports the cap reached; the log
// notes when refusing starts and when it stops, not every refusal.
func (l *limitedListener) admit() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open < l.max {
		l.open++
		return true
	}
	if l.refused == 0 {
		l.log.Warn("connection limit reached: refusing new gRPC connections", "max_connections", l.max)
	}
	l.refused++
	return false
}

func (l *limitedListener) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.refused > 0 {
		l.log.Info("below the connection limit again", "max_connections", l.max, "refused", l.refused)
		l.refused = 0
	}
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
