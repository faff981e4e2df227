// Package natsembed runs a NATS server with JetStream inside the current
// process: the all-in-one `custody run` uses it as its event store and bus,
// and tests use it (and the three-node Cluster helper) so that they exercise
// the real server rather than a fake.
//
// Durability comes first: unless Config.RelaxedSync is set, the server syncs
// every write to disk before it acknowledges it (SyncAlways), so an
// acknowledged append survives a kill -9 or a power cut.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config describes an embedded server.
type Config struct {
	// DataDir holds JetStream's files. Required: an embedded server never
	// keeps events only in memory.
	DataDir string
	// Host and Port to listen on for external clients. Port 0 picks a free
	// port; Port -1 (the default when Listen is false) does not listen at all.
	Host   string
	Port   int
	Listen bool
	// ServerName defaults to "custody".
	ServerName string
	// RelaxedSync lets the OS decide when to flush (the server's default
	// two-minute sync interval). For benchmarks only: an acknowledged write
	// can be lost in a crash. Logged loudly.
	RelaxedSync bool
	// Logger receives the server's own log lines at debug level, warnings
	// and errors at their own level. Nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds Start; defaults to 30s.
	ReadyTimeout time.Duration
}

// Server is a running embedded nats-server.
type Server struct {
	ns  *server.Server
	cfg Config
	js  server.JetStreamConfig // as started: limits to re-enable with
}

// Start starts the server and waits until JetStream is ready.
func Start(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("natsembed: DataDir is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: data dir: %w", err)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "custody"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	opts := baseOptions(cfg.ServerName, cfg.DataDir, cfg.RelaxedSync)
	opts.Host, opts.Port, opts.DontListen = cfg.Host, cfg.Port, !cfg.Listen
	if cfg.Listen && cfg.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if cfg.Host == "" {
		opts.Host = "127.0.0.1"
	}
	return start(opts, cfg)
}

// baseOptions are the options of every embedded server, alone or a node
// of a cluster: JetStream in dataDir, every write synced unless
// relaxedSync, messages up to 8 MiB (the store packs many appends into one).
func baseOptions(name, dataDir string, relaxedSync bool) *server.Options {
	return &server.Options{ServerName: name, JetStream: true, StoreDir: dataDir, SyncAlways: !relaxedSync, NoSigs: true,
		MaxPayload: 8 << 20, JetStreamMaxMemory: 256 << 20}
}

func start(opts *server.Options, cfg Config) (*Server, error) {
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(slogAdapter{cfg.Logger.With("component", "nats-server")}, false, false, false)
		if cfg.RelaxedSync {
			cfg.Logger.Warn("NATS JetStream is NOT syncing every write: acknowledged events can be lost in a crash; use only for benchmarks")
		}
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsembed: server %s not ready after %s", opts.ServerName, cfg.ReadyTimeout)
	}
	srv := &Server{ns: ns, cfg: cfg}
	if c := ns.JetStreamConfig(); c != nil {
		srv.js = *c
	}
	return srv, nil
}

// Connect returns a client connection. Without a listener it connects in
// process; otherwise through the loopback listener.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("custody"), nats.MaxReconnects(-1)}, opts...)
	if s.ns.Addr() == nil {
		opts = append(opts, nats.InProcessServer(s.ns))
		return nats.Connect("", opts...)
	}
	return nats.Connect(s.ns.ClientURL(), opts...)
}

// ClientURL is the nats:// URL of the listener, or "" without one.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// NATS exposes the underlying server (tests use it to inspect state).
func (s *Server) NATS() *server.Server { return s.ns }

// DataDir is where JetStream keeps its files.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// JetStreamEnabled reports whether JetStream runs: the server shuts it
// down by itself when its disk is full (out of resources).
func (s *Server) JetStreamEnabled() bool { return s.ns.JetStreamEnabled() }

// ReenableJetStream starts JetStream again in the same store directory
// after the server shut it down (a full disk), recovering every stream
// from its files. It does nothing while JetStream runs.
func (s *Server) ReenableJetStream() error {
	if s.ns.JetStreamEnabled() {
		return nil
	}
	cfg := s.js
	cfg.StoreDir = s.cfg.DataDir // EnableJetStream adds the jetstream/ subdirectory
	if err := s.ns.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("natsembed: re-enable JetStream: %w", err)
	}
	return nil
}

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  {}
