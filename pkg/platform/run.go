package platform

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/clock"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/personal/jskeys"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/pkg/server"
	"github.com/custody/custody/pkg/telemetry"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
)

// Config configures a process.
type Config struct {
	Version string
	// DataDir holds the embedded NATS data (nats/) and the token signing
	// key (keys/) of the all-in-one.
	DataDir   string
	GRPCAddr  string // default 127.0.0.1:7070
	AdminAddr string // health and metrics over HTTP; "" disables
	// NATSURL selects an external NATS (a cluster in production); empty
	// runs an embedded server with JetStream in DataDir.
	NATSURL string
	// NATSListen makes the embedded server also listen on this address so
	// other processes (`custody run --target=… --nats-url=…`) can join.
	NATSListen string
	// Targets: "all" or a comma-separated list of module names.
	Targets string
	// Replicas of the event streams (3 on a production cluster).
	Replicas int
	// RelaxedSync stops the embedded server syncing every write. Benchmarks only.
	RelaxedSync bool
	// Profiling serves Go's runtime profiles on the admin port under
	// /debug/pprof/.
	Profiling bool
	// PublicKeyFile verifies tokens; empty means DataDir/keys/signing.pub,
	// created with its private key at first start.
	PublicKeyFile string
	// MasterKeysFile holds the master keys that wrap the data subjects'
	// keys (pkg/personal.ParseKeyring), unless the environment variable
	// CUSTODY_MASTER_KEYS holds them. Empty means
	// DataDir/keys/master.keys, created at the first start of a process
	// with an embedded NATS (processes that share an external NATS must
	// be given the same keys).
	MasterKeysFile string
	// TLS serves gRPC over TLS; with TLS.CAFile, clients must present a
	// certificate that CA signed (mTLS). NATSTLS secures the connection to
	// an external NATS (its CA, and a client certificate if NATS wants one).
	TLS     server.TLSFiles
	NATSTLS server.TLSFiles
	Clock   clock.Clock
	Logger  *slog.Logger
	// MaxConnections caps the gRPC connections open at once (zero: the
	// server's default, negative: no cap); HandshakeTimeout bounds a new
	// connection's handshake (zero: the server's default). See
	// server.Config.
	MaxConnections   int
	HandshakeTimeout time.Duration
	// Store selects the event store backend (custody run --store).
	Store Backend
	// AggregateCache is how many aggregates each command handler keeps in
	// memory (custody run --aggregate-cache; zero: es.DefaultCacheSize).
	AggregateCache int
	// SnapshotEvery is how many events a long-lived aggregate applies
	// between snapshots (custody run --snapshot-every; zero:
	// es.DefaultSnapshotEvery; negative: no snapshots).
	SnapshotEvery int
	// CheckpointEvery is how often a read model with a Checkpointer is
	// saved (custody run --checkpoint-every); zero: checkpoints are
	// neither read nor written, every read model folds from position 1.
	CheckpointEvery time.Duration
	// ReadModelDir holds the read-model store of the read models kept
	// outside the heap (stored.go); empty: DefaultReadModelDir(DataDir).
	ReadModelDir string
	// DiskReserve is the free space, in bytes, below which the embedded
	// NATS's store takes no writes and the process is not ready
	// (natsembed.DiskGuard).
	DiskReserve uint64
	// OnReady, if set, is called once every module serves, with the
	// process: its bound addresses (tests listen on port 0 and learn the
	// port here) and Settled.
	OnReady func(*Process)
}

// Process is a serving Custody process.
type Process struct {
	GRPCAddr  string
	AdminAddr string // "" without an admin port
	// Web are the addresses of the modules' web interfaces, by name
	// (Parts.Web): "console" → "127.0.0.1:7072".
	Web map[string]string

	modules []*runtime
}

// Settled returns nil once every module's projections have applied all
// their sources hold and its reactions have handled everything delivered,
// else an error naming the first that has not. Tests wait on it instead of
// sleeping.
func (p *Process) Settled(ctx context.Context) error {
	for _, rt := range p.modules {
		if err := rt.settled(ctx); err != nil {
			return fmt.Errorf("%s: %w", rt.module, err)
		}
	}
	return nil
}

// Run starts the selected modules and serves until ctx is cancelled.
func Run(ctx context.Context, cfg Config, all []Module) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:7070"
	}
	if err := cfg.Store.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the servers if a module fails to start
	modules, err := Select(all, cfg.Targets)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "custody", Version: cfg.Version, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	nc, natsDesc, embedded, stopNATS, err := connectNATS(cfg)
	if err != nil {
		return err
	}
	defer stopNATS()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	verifier, err := loadVerifier(cfg)
	if err != nil {
		return err
	}
	keys, err := openKeys(ctx, cfg, js, log)
	if err != nil {
		return err
	}
	defer keys.Close()
	codec := personal.NewCodec(keys)
	scfg := server.Config{Logger: log, Verifier: verifier, Reveal: codec,
		MaxConnections: cfg.MaxConnections, HandshakeTimeout: cfg.HandshakeTimeout}
	if cfg.TLS.Enabled() {
		opt, err := cfg.TLS.ServerOption()
		if err != nil {
			return err
		}
		scfg.ServerOptions = append(scfg.ServerOptions, opt)
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}

	// The admin port comes up first so that probes see "alive, not ready"
	// while stores and consumers start.
	errc := make(chan error, 2+len(modules)) // admin, gRPC and the modules' web interfaces
	adminAddr := ""
	if cfg.AdminAddr != "" {
		alis, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("admin listen: %w", err)
		}
		adminAddr = alis.Addr().String()
		go func() {
			errc <- server.ServeAdmin(ctx, alis, server.NewAdminHandler(srv.Ready, tel.MetricsHandler(), cfg.Profiling))
		}()
	}

	deps := Deps{Logger: log, NATS: nc, JetStream: js, Clock: cfg.Clock, Replicas: max(cfg.Replicas, 1), Backend: cfg.Store,
		AggregateCache: cfg.AggregateCache, SnapshotEvery: cfg.SnapshotEvery, feeds: newFeeds(), damaged: &damaged{},
		Personal: codec}
	if cfg.CheckpointEvery > 0 {
		deps.checkpoints = &checkpoints{js: js, replicas: deps.Replicas, every: cfg.CheckpointEvery}
	}
	if embedded != nil {
		guard := embedded.GuardDisk(ctx, cfg.DiskReserve, diskCheckEvery, log.With("component", "disk"))
		deps.writeGate = guard
	}
	rmDir := cfg.ReadModelDir
	if rmDir == "" {
		rmDir = DefaultReadModelDir(cfg.DataDir)
	}
	readModels, err := kv.Open(rmDir, kv.Options{Log: log.With("component", "readmodels")})
	if err != nil {
		return err
	}
	defer readModels.Close() // after the modules stop (deferred below)
	deps.readModels = readModels
	proc := &Process{AdminAddr: adminAddr}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for i := len(proc.modules) - 1; i >= 0; i-- {
			if err := proc.modules[i].stop(sctx); err != nil {
				log.Error("stopping module", "err", err)
			}
		}
	}()
	var targets []string
	for _, m := range modules {
		rt, err := startModule(ctx, m, deps.withLogger(m.Name))
		if err != nil {
			return fmt.Errorf("start %s: %w", m.Name, err)
		}
		proc.modules = append(proc.modules, rt)
		if rt.parts.Register != nil {
			rt.parts.Register(srv)
		}
		targets = append(targets, m.Name)
	}
	systemv1.RegisterSystemServiceServer(srv, &systemService{
		version: cfg.Version, targets: targets, nats: natsDesc, started: time.Now(), js: js, clock: cfg.Clock,
	})

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	go func() { errc <- srv.Serve(ctx, lis) }()
	web, err := serveWeb(ctx, proc.modules, lis.Addr().String(), errc)
	if err != nil {
		return err
	}
	proc.Web = map[string]string{}
	addrs := []any{"grpc", lis.Addr().String(), "admin", adminAddr}
	for _, w := range web {
		proc.Web[w.name] = w.addr
		addrs = append(addrs, w.name, w.addr)
	}
	srv.MarkReady()
	// Starting read every stream to index it and folded what the read
	// models had not stored: garbage now, held by the heap until the
	// scavenger returns it bit by bit. Returned at once, the resident
	// memory after a restart is what the process keeps.
	go debug.FreeOSMemory()
	go watchHealth(ctx, log, srv, js, deps.writeGate)
	log.Info("custody is serving", append(addrs, "targets", targets, "nats", natsDesc, "data_dir", cfg.DataDir)...)
	if cfg.OnReady != nil {
		proc.GRPCAddr = lis.Addr().String()
		cfg.OnReady(proc)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	log.Info("custody is shutting down")
	srv.MarkNotReady()
	return nil
}

// webServed is a module's web interface, listening.
type webServed struct{ name, addr string }

// serveWeb listens on the address of every module's web interface
// (Parts.Web) and serves it until ctx ends; a serving error is sent to
// errc. A module's handler is built with the process's gRPC address.
func serveWeb(ctx context.Context, modules []*runtime, grpcAddr string, errc chan<- error) ([]webServed, error) {
	var out []webServed
	for _, rt := range modules {
		w := rt.parts.Web
		if w == nil || w.Addr == "" {
			continue
		}
		h, err := w.Handler(grpcAddr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Name, err)
		}
		lis, err := net.Listen("tcp", w.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s listen: %w", w.Name, err)
		}
		out = append(out, webServed{name: w.Name, addr: lis.Addr().String()})
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		}()
		go func() {
			if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", w.Name, err)
			}
		}()
	}
	return out, nil
}

// diskCheckEvery is how often the embedded server's disk is looked at.
const diskCheckEvery = 250 * time.Millisecond

// watchHealth keeps the process's readiness (/readyz and gRPC health) in
// step with what its writes need: JetStream answering, and the disk guard
// (nil with an external NATS) allowing writes.
func watchHealth(ctx context.Context, log *slog.Logger, srv *server.Server, js jetstream.JetStream, gate esjs.Gate) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	healthy, failures := true, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if gate != nil {
			err = gate.Err()
		}
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = js.AccountInfo(actx)
			cancel()
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		switch {
		case ctx.Err() != nil:
			return
		case failures == 2 && healthy:
			// Twice in a row: a stream's leader election answers late once.
			log.Error("not ready: events cannot be written", "err", err)
			srv.MarkNotReady()
			healthy = false
		case err == nil && !healthy:
			log.Info("ready again: events can be written")
			srv.MarkReady()
			healthy = true
		}
	}
}

func (d Deps) withLogger(module string) Deps {
	d.Logger = d.Logger.With("target", module)
	return d
}

// connectNATS starts the embedded server or connects to the external one.
func connectNATS(cfg Config) (nc *nats.Conn, desc string, embedded *natsembed.Server, stop func(), err error) {
	opts := []nats.Option{nats.Name("custody"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if cfg.NATSURL != "" {
		// In a cluster NATS may come up after us: keep trying rather than
		// crash-loop (each attempt is logged by the reconnect handler).
		if cfg.NATSTLS.Enabled() {
			tc, err := cfg.NATSTLS.ClientConfig()
			if err != nil {
				return nil, "", nil, nil, err
			}
			opts = append(opts, nats.Secure(tc))
		}
		opts = append(opts, nats.RetryOnFailedConnect(true), nats.ReconnectHandler(func(c *nats.Conn) {
			cfg.Logger.Info("connected to NATS", "url", c.ConnectedUrlRedacted())
		}))
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, "", nil, nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
		}
		return nc, nc.ConnectedUrlRedacted(), nil, func() {}, nil
	}
	ecfg := natsembed.Config{DataDir: filepath.Join(cfg.DataDir, "nats"), RelaxedSync: cfg.RelaxedSync, Logger: cfg.Logger}
	if cfg.NATSListen != "" {
		host, port, err := net.SplitHostPort(cfg.NATSListen)
		if err != nil {
			return nil, "", nil, nil, fmt.Errorf("--nats-listen: %w", err)
		}
		var p int
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
			return nil, "", nil, nil, fmt.Errorf("--nats-listen port: %w", err)
		}
		ecfg.Listen, ecfg.Host, ecfg.Port = true, host, p
	}
	srv, err := natsembed.Start(ecfg)
	if err != nil {
		return nil, "", nil, nil, err
	}
	nc, err = srv.Connect(opts...)
	if err != nil {
		srv.Shutdown()
		return nil, "", nil, nil, err
	}
	desc = "embedded"
	if u := srv.ClientURL(); u != "" {
		desc = "embedded, listening on " + u
	}
	return nc, desc, srv, srv.Shutdown, nil
}

func loadVerifier(cfg Config) (*auth.Verifier, error) {
	if cfg.PublicKeyFile != "" {
		pub, err := auth.LoadPublicKey(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		return auth.NewVerifier(pub, nil), nil
	}
	key, err := auth.LoadOrCreateKey(KeyDir(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	return auth.NewVerifier(key.Public().(ed25519.PublicKey), nil), nil
}

// openKeys opens the data subjects' keys on the process's JetStream,
// wrapped by the master keys of cfg (see Config.MasterKeysFile). A
// cluster that is starting, or electing the bucket's leader, answers late:
// it waits for it (bounded), as the event store does, rather than exit.
func openKeys(ctx context.Context, cfg Config, js jetstream.JetStream, log *slog.Logger) (*jskeys.Store, error) {
	path, create := cfg.MasterKeysFile, false
	if path == "" {
		path, create = filepath.Join(KeyDir(cfg.DataDir), "master.keys"), cfg.NATSURL == ""
	}
	ring, err := jskeys.LoadKeyring(path, create)
	if err != nil {
		return nil, err
	}
	kcfg := jskeys.Config{Replicas: max(cfg.Replicas, 1)}
	keys, err := jskeys.Open(ctx, js, ring, kcfg)
	wctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	for backoff := projection.NewBackoff(); unanswered(err) && wctx.Err() == nil; {
		log.Warn("opening the key bucket; will retry", "err", err)
		backoff.Sleep(wctx)
		keys, err = jskeys.Open(ctx, js, ring, kcfg)
	}
	return keys, err
}

// unanswered reports whether err says JetStream did not answer (yet), as
// while a cluster starts or elects a leader.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// RewrapKeys wraps every data subject's key that its primary master key
// does not wrap yet with it (custody keys rewrap, after a rotation: a new
// key first in the keyring, the old one kept after it), and reports how
// many it rewrapped. Afterwards the old master key can be dropped.
func RewrapKeys(ctx context.Context, cfg Config, w io.Writer) error {
	nc, desc, _, stop, err := connectNATS(cfg)
	if err != nil {
		return err
	}
	defer stop()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	keys, err := openKeys(ctx, cfg, js, slog.Default())
	if err != nil {
		return err
	}
	defer keys.Close()
	n, err := keys.Rewrap(ctx)
	if err != nil {
		return fmt.Errorf("rewrap (%d keys rewrapped before): %w", n, err)
	}
	fmt.Fprintf(w, "%d data keys rewrapped with master key %s (NATS %s); the other master keys can now be dropped from the keyring\n", n, keys.Primary(), desc)
	return nil
}
