// Command custody is the Custody server. One binary, two modes:
//
//	custody run                      # everything in one process, embedded NATS
//	custody run --target=order \
//	    --nats-url=nats://nats:4222  # one service against an external NATS
//	custody token --role support     # mint a token for the all-in-one
//	custody nats --cluster-listen=…  # one node of a NATS JetStream cluster
//
// Every flag, the services' own settings included, can also be set by
// environment variable: CUSTODY_ and the flag's name in upper case with _
// for - (CUSTODY_DATA_DIR for --data-dir, and so on); flags win.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/custody/custody/pkg/clock"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/personal/jskeys"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	"github.com/custody/custody/pkg/telemetry"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "custody:", err)
		}
		os.Exit(1)
	}
}

const usage = `custody — the Custody order and fulfilment backbone

Usage:
  custody run [flags]      start services (all of them by default)
  custody token [flags]    print a bearer token signed with the data dir's key
  custody rebuild [flags]  rebuild services' read models from the store, verifying hash chains
  custody keys rewrap      wrap every buyer's data key with the primary master key (after a rotation)
  custody probe [flags]    measure raw JetStream on this machine's disk (the ceiling for the load generator)
  custody nats [flags]     run one NATS JetStream server (a cluster node) for --nats-url processes
  custody version          print the version

Run "custody <command> -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stderr)
	case "token":
		return tokenCmd(args[1:], stdout, stderr)
	case "probe":
		return probeCmd(args[1:], stdout, stderr)
	case "rebuild":
		return rebuildCmd(args[1:], stdout, stderr)
	case "nats":
		return natsCmd(args[1:], stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("custody run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg platform.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory for the embedded NATS data and the signing key")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7070", "gRPC listen address (every service on one port)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:7071", "admin HTTP address: /healthz, /readyz, /metrics (empty disables)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS URL(s); empty runs an embedded NATS with JetStream in --data-dir")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "", "embedded NATS also listens here (host:port) so other processes can join")
	fs.StringVar(&cfg.Targets, "target", "all", "services to run: all, or a comma-separated list ("+targetNames()+")")
	replicas := fs.Int("replicas", 1, "replicas of each event stream (3 on a NATS cluster)")
	fs.BoolVar(&cfg.Profiling, "pprof", false, "serve Go's runtime profiles on the admin port under /debug/pprof/ (keep the admin port private)")
	fs.BoolVar(&cfg.RelaxedSync, "unsafe-relaxed-sync", false, "embedded NATS does not fsync every write: acknowledged events can be LOST in a crash; benchmarks only")
	fs.StringVar(&cfg.PublicKeyFile, "auth-public-key", "", "Ed25519 public key (PEM) that verifies tokens; default: --data-dir/keys/signing.pub, created at first start")
	fs.StringVar(&cfg.MasterKeysFile, "master-keys-file", "", "file of the master keys that wrap the data subjects' keys, one \"<id> <base64 32 bytes>\" per line, the primary first (or set "+jskeys.MasterKeysEnv+"); default: --data-dir/keys/master.keys, created at first start with an embedded NATS")
	fs.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "serve gRPC over TLS with this certificate (PEM)")
	fs.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "the certificate's private key (PEM)")
	fs.StringVar(&cfg.TLS.CAFile, "tls-client-ca", "", "require client certificates signed by this CA (mTLS)")
	fs.StringVar(&cfg.NATSTLS.CAFile, "nats-ca", "", "CA of an external NATS's TLS certificate")
	fs.StringVar(&cfg.NATSTLS.CertFile, "nats-cert", "", "client certificate for an external NATS (mTLS)")
	fs.StringVar(&cfg.NATSTLS.KeyFile, "nats-key", "", "the NATS client certificate's key")
	fs.IntVar(&cfg.MaxConnections, "max-connections", server.DefaultMaxConnections, "gRPC connections open at once, handshaking ones included; a connection past it is closed at once (0: no cap)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "a new gRPC connection that has not finished its TLS and HTTP/2 handshake by then is closed")
	clockFlag := fs.String("clock", "wall", `"wall", or "fake" (starts now, moves only by SystemService/AdvanceClock: demos and tests)`)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON instead of text")
	gcPercent := fs.Int("gc-percent", 100, "Go's GC target (GOGC): the heap grows this many percent over the live heap between collections; higher collects less often but touches more memory (a GOGC environment variable wins)")
	memoryLimit := fs.String("memory-limit", memoryLimitAuto, `Go's soft memory limit (GOMEMLIMIT), e.g. 1GiB: the GC works harder as the heap nears it, so resident memory follows the live heap instead of --gc-percent times it; "auto": 90% of the cgroup's memory limit if there is one; "off": none (a GOMEMLIMIT environment variable wins)`)
	storeFlags(fs, &cfg.Store)
	fs.DurationVar(&cfg.Store.Linger, "store-linger", 0, "how long an idle event-store writer waits for more appends to share one fsync'd message: fewer disk writes at a moderate rate, for that much latency per write")
	diskReserve := fs.Uint64("disk-reserve-mib", 256, "free space (MiB) kept on the embedded NATS's disk: below it, writes fail at once with Unavailable and the process is not ready, until space is freed")
	fs.IntVar(&cfg.AggregateCache, "aggregate-cache", es.DefaultCacheSize, "aggregates each command handler keeps in memory; past it the least recently used are dropped and loaded again when next used")
	snapshotEvery := fs.Int("snapshot-every", es.DefaultSnapshotEvery, "events a long-lived aggregate (a vendor's trust, the payout runs) applies between two snapshots, which loads start from (0: no snapshots)")
	fs.StringVar(&cfg.ReadModelDir, "readmodel-dir", "", "directory of the read models kept outside the heap (an embedded key-value store, rebuilt from the events when missing); default: --data-dir/readmodels")
	fs.DurationVar(&cfg.CheckpointEvery, "checkpoint-every", 30*time.Second, "how often each read model that can is saved with its position (JetStream object store custody_checkpoints), so a restart resumes from there instead of folding every event again (0: no checkpoints, read or written)")
	fs.BoolVar(&cfg.Store.AllowDamaged, "allow-damaged", false, "start even if a service's event stream is damaged (unreadable, edited or missing records): that service serves reads only, for support to inspect; without it the process refuses to start, naming the damage")
	mods := modules()
	platform.RegisterFlags(fs, mods)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg.Replicas = *replicas
	switch {
	case cfg.MaxConnections < 0:
		return fmt.Errorf("--max-connections: %d is negative (0 means no cap)", cfg.MaxConnections)
	case cfg.MaxConnections == 0:
		cfg.MaxConnections = -1 // the server's "no cap"
	}
	if cfg.HandshakeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout: %s is not positive", cfg.HandshakeTimeout)
	}
	if cfg.CheckpointEvery < 0 {
		return fmt.Errorf("--checkpoint-every: %s is negative (0 means no checkpoints)", cfg.CheckpointEvery)
	}
	if cfg.AggregateCache <= 0 {
		return fmt.Errorf("--aggregate-cache: %d is not positive", cfg.AggregateCache)
	}
	switch {
	case *snapshotEvery < 0:
		return fmt.Errorf("--snapshot-every: %d is negative (0 means no snapshots)", *snapshotEvery)
	case *snapshotEvery == 0:
		cfg.SnapshotEvery = -1 // the platform's "no snapshots"
	default:
		cfg.SnapshotEvery = *snapshotEvery
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// 400 once won on a short run; on longer ones (and on this
		// machine's later days) the bigger heap's page faults cost more
		// than the collections saved: docs/benchmarks.md, "The GC target".
		// Until every module serves, the heap is being built (checkpoints
		// decoded, events folded) and holds little garbage: collecting
		// less often then shortens a restart.
		debug.SetGCPercent(max(*gcPercent, startupGCPercent))
		cfg.OnReady = func(*platform.Process) { debug.SetGCPercent(*gcPercent) }
	}
	memLimit, memLimitFrom, err := applyMemoryLimit(*memoryLimit)
	if err != nil {
		return err
	}
	switch *clockFlag {
	case "wall":
		cfg.Clock = clock.Real()
	case "fake":
		f := clock.NewFake(time.Now().UTC().Truncate(time.Second))
		f.SetTick(time.Microsecond) // successive events get increasing times
		cfg.Clock = f
	default:
		return fmt.Errorf("--clock: %q is neither wall nor fake", *clockFlag)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = telemetry.NewLogger(stderr, level, *logJSON)
	cfg.DiskReserve = *diskReserve << 20
	cfg.Version = version
	slog.SetDefault(cfg.Logger)
	if memLimit > 0 && memLimit < math.MaxInt64 {
		cfg.Logger.Info("soft memory limit", "mib", memLimit>>20, "from", memLimitFrom)
	} else {
		cfg.Logger.Info("no soft memory limit", "why", memLimitFrom)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return platform.Run(ctx, cfg, mods)
}

// startupGCPercent is the GC target until the process is ready.
const startupGCPercent = 400

// storeFlags declares the event store backend's flags.
func storeFlags(fs *flag.FlagSet, b *platform.Backend) {
	fs.StringVar(&b.Kind, "store", platform.StoreJetStream, `event store: "jetstream" (the process's NATS) or "esdb" (EventStoreDB at --esdb-url; NATS still carries events between services)`)
	fs.StringVar(&b.ESDBURL, "esdb-url", "", `EventStoreDB connection string for --store=esdb, e.g. "esdb://127.0.0.1:2113?tls=false"`)
}

// parse sets fs's flags from the environment, then from args (flags win).
func parse(fs *flag.FlagSet, args []string) error {
	if err := platform.SetFromEnv(fs, os.LookupEnv); err != nil {
		return err
	}
	return fs.Parse(args)
}

func rebuildCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custody rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg platform.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "data directory of a stopped all-in-one (its embedded NATS)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS instead of the data directory's")
	fs.StringVar(&cfg.Targets, "target", "all", "services to rebuild: all, or a comma-separated list ("+targetNames()+")")
	storeFlags(fs, &cfg.Store)
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the rebuild to this file (go tool pprof)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return platform.RebuildTargets(ctx, cfg, modules(), stdout)
}

// keysCmd is "custody keys rewrap": after a rotation of the master keys (a
// new one first in the keyring, the old one after it), it wraps every data
// key with the new one, so that the old one can be dropped.
func keysCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rewrap" {
		fmt.Fprintln(stderr, "usage: custody keys rewrap [--data-dir D | --nats-url U] [--master-keys-file F]")
		return errors.New("custody keys: want the subcommand rewrap")
	}
	fs := flag.NewFlagSet("custody keys rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg platform.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "data directory of a stopped all-in-one (its embedded NATS, and keys/master.keys)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS instead of the data directory's")
	fs.StringVar(&cfg.MasterKeysFile, "master-keys-file", "", "the keyring, the new primary key first (default: --data-dir/keys/master.keys, or "+jskeys.MasterKeysEnv+")")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if cfg.NATSURL == "" && cfg.MasterKeysFile == "" {
		// The data directory's own keyring: never create one here.
		cfg.MasterKeysFile = filepath.Join(platform.KeyDir(cfg.DataDir), "master.keys")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return platform.RewrapKeys(ctx, cfg, stdout)
}

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custody token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./data", "data directory of the all-in-one (its keys/ hold the signing key)")
	keyFile := fs.String("key", "", "Ed25519 private key (PEM) to sign with instead of --data-dir's")
	subject := fs.String("subject", "", "who the token is for (default: the first role)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	var roles multiFlag
	fs.Var(&roles, "role", "role, repeatable: buyer:<id>, vendor:<id>, creator:<id>, carrier:<id>, support, platform, service")
	if err := parse(fs, args); err != nil {
		return err
	}
	tok, err := platform.MintToken(*dataDir, *keyFile, *subject, roles, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
