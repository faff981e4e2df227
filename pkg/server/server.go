// Package server bootstraps Custody's gRPC servers and clients the same way
// for every service (docs/design.md §4): OpenTelemetry stats handler, panic
// recovery, request logging and bearer-token auth interceptors, message
// size limits, gRPC health that reports SERVING only once the service says
// it is ready, reflection, and graceful shutdown. It also serves the admin
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
	"google.golang.org/grpc/reflection"

	"github.com/custody/custody/pkg/auth"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxRecvMsgSize  = 4 << 20
	DefaultMaxSendMsgSize  = 16 << 20
	DefaultShutdownTimeout = 10 * time.Second
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
	// ServerOptions are appended to ours, e.g. grpc.Creds for TLS/mTLS.
	ServerOptions []grpc.ServerOption
}

// Server is a gRPC server with Custody's standard wiring. It implements
// grpc.ServiceRegistrar, so generated Register*Server functions take it.
type Server struct {
	grpc            *grpc.Server
	health          *health.Server
	logger          *slog.Logger
	shutdownTimeout time.Duration

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
	}
	const streamWorkers = 128
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
		grpc.MaxRecvMsgSize(cmp(cfg.MaxRecvMsgSize, DefaultMaxRecvMsgSize)),
		grpc.MaxSendMsgSize(cmp(cfg.MaxSendMsgSize, DefaultMaxSendMsgSize)),
		// Calls run on long-lived workers (more than these start goroutines
		// of their own): a goroutine per call grew its stack anew for every
		// order, 1.5% of the CPU under load.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(
			recoverUnary(logger),
			logUnary(logger),
			auth.UnaryServerInterceptor(cfg.Verifier, cfg.ExemptMethods),
		),
		grpc.ChainStreamInterceptor(
			recoverStream(logger),
			logStream(logger),
			auth.StreamServerInterceptor(cfg.Verifier, cfg.ExemptMethods),
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

// Serve accepts connections on lis until ctx is cancelled, then reports
// NOT_SERVING, drains in-flight calls for up to ShutdownTimeout and cuts
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
