package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/telemetry"
)

// natsCmd runs one NATS JetStream server, usually one node of a cluster,
// for `custody run --nats-url=…` processes: the binary's own nats-server,
// configured as k8s/nats.yaml configures each pod (file storage with every
// write synced, routes to every node, /healthz on the monitoring port). It
// serves until SIGINT or SIGTERM.
//
//	custody nats --server-name n1 --data-dir data/n1 --listen 127.0.0.1:4222 \
//	    --cluster-listen 127.0.0.1:6222 --monitor-addr 127.0.0.1:8222 \
//	    --routes nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224
func natsCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("custody nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg natsembed.NodeConfig
	fs.StringVar(&cfg.DataDir, "data-dir", "./data/nats", "directory for JetStream's files (one per node)")
	fs.StringVar(&cfg.Name, "server-name", "custody", "server name, unique within the cluster")
	fs.StringVar(&cfg.ClientAddr, "listen", "127.0.0.1:4222", "client address: what --nats-url of custody run names")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "custody", "cluster name, the same on every node")
	fs.StringVar(&cfg.ClusterAddr, "cluster-listen", "", "cluster (route) address; empty runs a single server")
	routes := fs.String("routes", "", "comma-separated cluster URLs of every node (nats://host:port; this node's own may be listed)")
	fs.StringVar(&cfg.MonitorAddr, "monitor-addr", "127.0.0.1:8222", "HTTP monitoring address: /healthz (?js-enabled-only=true), /varz, /jsz (empty disables)")
	fs.BoolVar(&cfg.RelaxedSync, "unsafe-relaxed-sync", false, "do not fsync every write: acknowledged events can be LOST in a crash; benchmarks only")
	logLevel := fs.String("log-level", "info", "debug (includes the server's own notices), info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for r := range strings.SplitSeq(*routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := telemetry.NewLogger(stderr, level, *logJSON)
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := natsembed.StartNode(cfg)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	log.Info("nats is serving", "server", cfg.Name, "clients", srv.ClientURL(), "cluster", cfg.ClusterAddr,
		"routes", len(cfg.Routes), "monitor", cfg.MonitorAddr, "data_dir", cfg.DataDir)
	stopped := make(chan struct{})
	go func() { srv.NATS().WaitForShutdown(); close(stopped) }()
	select {
	case <-ctx.Done():
		log.Info("nats is shutting down", "server", cfg.Name)
		return nil
	case <-stopped:
		return fmt.Errorf("nats server %s stopped by itself", cfg.Name)
	}
}
