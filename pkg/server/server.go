// Package server bootstraps Custody's gRPC servers and clients the same way
// for every service (docs/design.md §4): OpenTelemetry stats handler, panic
// recovery, request logging and bearer-token auth interceptors, message
// size limits, requests that are not valid protobuf refused as bad input
// (decode.go), connection limits (limits.go), gRPC health that reports
// SERVING only once the service says it is ready, reflection, and graceful
// shutdown. It also serves the admin
// HTTP endpoints (/healthz, /readyz, /metrics) and dials clients.
//
//	srv, err := server.New(server.Config{Logger: log, Verifier: verifier})
//	orderv1.RegisterOrderServiceServer(srv, api)
//	go srv.Serve(ctx, lis)
//	... // once the store and consumers are up:
//	srv.MarkReady()
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/auth"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxRecvMsgSize  = 4 << 20
	DefaultMaxSendMsgSize  = 16 << 20
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds a new connection's TLS and HTTP/2
	// handshake. Real clients finish in a few round trips; grpc-go's own
	// default (120s) let half-open connections hold ~100 KB each for two
	// minutes.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxConnections caps open connections, handshaking ones
	// included. At ~100 KB of buffers each that is ~100 MB, a fifth of the
	// 512 MiB the k8s manifests give a pod; and a gRPC client sends all
	// its calls over one connection per server, so it admits a thousand
	// client processes, far more than Custody's internal callers run.
	DefaultMaxConnections = 1000
	// DefaultMaxConcurrentStreams bounds the calls open at once on one
	// connection; a client past it waits for one to finish. It is above the
	// load generator's largest closed loop (1000 buyers on one connection).
	DefaultMaxConcurrentStreams = 1024
	// DefaultIdleTimeout closes (GOAWAY) a connection with no call open for
	// this long; clients reconnect when they next call.
	DefaultIdleTimeout = 5 * time.Minute
)

// Keepalive: the server pings a connection silent this long and closes it
// if the ping is not answered in time (a peer that vanished); a client may
// ping at most every keepaliveMinPing (grpc-go clients cannot go below
// 10s), idle or not, and one pinging more often is sent GOAWAY
// ENHANCE_YOUR_CALM ("too_many_pings") and cut off.
const (
	keepaliveTime    = 2 * time.Minute
	keepaliveTimeout = 20 * time.Second
	keepaliveMinPing = 10 * time.Second
)

// Config configures New.
type Config struct {
	// Logger receives request logs and panics. Use telemetry.NewLogger so
	// lines carry trace ids. Nil means slog.Default().
	Logger *slog.Logger
	// Verifier authenticates bearer tokens. Required.
	Verifier auth.TokenVerifier
	// ExemptMethods are full-method prefixes needing no token; nil means
	// auth.DefaultExempt (health and reflection).
	ExemptMethods []string
	// Message size limits; zero means the defaults above.
	MaxRecvMsgSize int
	MaxSendMsgSize int
	// ShutdownTimeout bounds the graceful drain before open calls are cut.
	ShutdownTimeout time.Duration
	// Connection limits; zero means the defaults above. HandshakeTimeout
	// bounds a new connection's handshake; MaxConnections caps open
	// connections (negative: no cap), and Serve closes a connection past
	// it at once; MaxConcurrentStreams bounds the calls of one connection;
	// IdleTimeout closes a connection without calls.
	HandshakeTimeout     time.Duration
	MaxConnections       int
	MaxConcurrentStreams uint32
	IdleTimeout          time.Duration
	// ServerOptions are appended to ours, e.g. grpc.Creds for TLS/mTLS.
	ServerOptions []grpc.ServerOption
	// Reveal, if set, turns the sealed personal fields of every answer
	// back into their values (pkg/personal) as it leaves: stores, caches
	// and read models hold tokens, and only an authorised caller's answer
	// holds the values. An answer it cannot reveal is DataLoss.
	Reveal Revealer
}

// Revealer reveals the personal fields of a message (pkg/personal.Codec).
type Revealer interface {
	Reveal(ctx context.Context, m proto.Message) (proto.Message, error)
}

// Server is a gRPC server with Custody's standard wiring. It implements
// grpc.ServiceRegistrar, so generated Register*Server functions take it.
type Server struct {
	grpc            *grpc.Server
	health          *health.Server
	logger          *slog.Logger
	shutdownTimeout time.Duration
	maxConns        int

	mu       sync.Mutex
	ready    map[string]bool // service name -> marked ready
	marked   bool            // MarkReady was called at least once
	stopping bool
}

// infraServices are registered by New and never gate readiness.
var infraServices = map[string]bool{
	healthpb.Health_ServiceDesc.ServiceName:    true,
	"grpc.reflection.v1.ServerReflection":      true,
	"grpc.reflection.v1alpha.ServerReflection": true,
}

// New builds a Server. Health reports NOT_SERVING, overall and per
// service, until MarkReady.
func New(cfg Config) (*Server, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("server: Config.Verifier is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{
		health:          health.NewServer(),
		logger:          logger,
		shutdownTimeout: cmp(cfg.ShutdownTimeout, DefaultShutdownTimeout),
		ready:           map[string]bool{},
		maxConns:        cmp(cfg.MaxConnections, DefaultMaxConnections),
	}
	const streamWorkers = 128
	codec := newCodec()
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
		grpc.MaxRecvMsgSize(cmp(cfg.MaxRecvMsgSize, DefaultMaxRecvMsgSize)),
		grpc.MaxSendMsgSize(cmp(cfg.MaxSendMsgSize, DefaultMaxSendMsgSize)),
		grpc.ForceServerCodecV2(codec),
		grpc.ConnectionTimeout(cmp(cfg.HandshakeTimeout, DefaultHandshakeTimeout)),
		grpc.MaxConcurrentStreams(cmp(cfg.MaxConcurrentStreams, DefaultMaxConcurrentStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: cmp(cfg.IdleTimeout, DefaultIdleTimeout),
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinPing, PermitWithoutStream: true}),
		// Calls run on long-lived workers (more than these start goroutines
		// of their own): a goroutine per call grew its stack anew for every
		// order, 1.5% of the CPU under load.
		grpc.NumStreamWorkers(streamWorkers),
		// A request that failed to unmarshal is refused before
		// authentication or anything else sees it, and after logging, so
		// that the refusal is logged.
		grpc.ChainUnaryInterceptor(
			recoverUnary(logger),
			logUnary(logger),
			checkDecodedUnary(codec),
			auth.UnaryServerInterceptor(cfg.Verifier, cfg.ExemptMethods),
			revealUnary(cfg.Reveal),
		),
		grpc.ChainStreamInterceptor(
			recoverStream(logger),
			logStream(logger),
			checkDecodedStream(codec),
			auth.StreamServerInterceptor(cfg.Verifier, cfg.ExemptMethods),
			revealStream(cfg.Reveal),
		),
	}
	s.grpc = grpc.NewServer(append(opts, cfg.ServerOptions...)...)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// cmp returns v, or def when v is zero.
func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// RegisterService implements grpc.ServiceRegistrar. The service reports
// NOT_SERVING until MarkReady.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
	s.health.SetServingStatus(desc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

// GRPC returns the underlying server.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// MarkReady flips the named services to SERVING; with no names, every
// registered service. The overall status ("") becomes SERVING once every
// registered service is ready.
func (s *Server) MarkReady(services ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(services) == 0 {
		services = s.appServices()
	}
	s.marked = true
	for _, name := range services {
		s.ready[name] = true
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.updateOverallLocked()
}

// MarkNotReady flips the named services (none: all) back to NOT_SERVING,
// e.g. while the event store is unreachable.
func (s *Server) MarkNotReady(services ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(services) == 0 {
		services = s.appServices()
	}
	for _, name := range services {
		s.ready[name] = false
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	s.updateOverallLocked()
}

// Ready reports whether every registered service is ready and the server is
// not shutting down; it suits NewAdminHandler.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allReadyLocked()
}

// appServices lists registered services, including those registered
// directly on GRPC(), minus health and reflection.
func (s *Server) appServices() []string {
	var names []string
	for name := range s.grpc.GetServiceInfo() {
		if !infraServices[name] {
			names = append(names, name)
		}
	}
	return names
}

func (s *Server) allReadyLocked() bool {
	if s.stopping || !s.marked {
		return false
	}
	for _, name := range s.appServices() {
		if !s.ready[name] {
			return false
		}
	}
	return true
}

func (s *Server) updateOverallLocked() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if s.allReadyLocked() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
}

// Serve accepts connections on lis until ctx is cancelled (closing at once
// any past MaxConnections), then reports NOT_SERVING, drains in-flight calls for up to ShutdownTimeout and cuts
// whatever is left (long-lived streams). It returns nil after a shutdown
// caused by ctx, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.mu.Lock()
	// Services registered directly on GRPC() start NOT_SERVING too.
	for _, name := range s.appServices() {
		if !s.ready[name] {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
		}
	}
	s.updateOverallLocked()
	s.mu.Unlock()

	if s.maxConns > 0 {
		lis = limitListener(lis, s.maxConns, s.logger)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("grpc serve %s: %w", lis.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}

	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.health.Shutdown() // everything NOT_SERVING, later updates ignored

	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(s.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("graceful gRPC shutdown timed out; closing remaining calls", "timeout", s.shutdownTimeout)
		s.grpc.Stop()
		<-stopped
	}
	<-errc // nil after (Graceful)Stop
	return nil
}
