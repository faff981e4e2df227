package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NodeConfig describes one server of a NATS JetStream cluster that runs as
// a process of its own (`custody nats`), configured the way k8s/nats.yaml
// configures each pod: JetStream on disk with every write synced, a client
// port, a cluster port with routes to every node, and an HTTP monitoring
// port for /healthz.
type NodeConfig struct {
	// Name is the server's name, unique within the cluster. Required.
	Name string
	// DataDir holds JetStream's files. Required.
	DataDir string
	// ClientAddr is the host:port clients connect to. Port 0 picks a free
	// port (ClientURL tells which).
	ClientAddr string
	// ClusterName names the cluster; default "custody".
	ClusterName string
	// ClusterAddr is the host:port the other nodes' routes connect to.
	// Empty runs a single server (Routes must then be empty too).
	ClusterAddr string
	// Routes are the cluster URLs (nats://host:port) of every node; a
	// route to this node itself is recognised and ignored, so every node
	// can be given the same list.
	Routes []string
	// MonitorAddr is the host:port of the HTTP monitoring endpoints
	// (/healthz, /varz, /jsz, …); empty disables them.
	MonitorAddr string
	// RelaxedSync: as Config.RelaxedSync. For benchmarks only.
	RelaxedSync bool
	// Logger: as Config.Logger.
	Logger *slog.Logger
	// ReadyTimeout bounds StartNode; defaults to 30s.
	ReadyTimeout time.Duration
}

// StartNode starts one node and waits until it accepts client connections.
// It does not wait for the cluster: JetStream answers once a meta leader is
// elected, which needs a majority of the nodes (poll the monitoring port's
// /healthz for that).
func StartNode(cfg NodeConfig) (*Server, error) {
	if cfg.Name == "" {
		return nil, errors.New("natsembed: node name is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("natsembed: DataDir is required")
	}
	if cfg.ClusterAddr == "" && len(cfg.Routes) > 0 {
		return nil, errors.New("natsembed: routes need a cluster address of this node")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: data dir: %w", err)
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "custody"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	opts := baseOptions(cfg.Name, cfg.DataDir, cfg.RelaxedSync)
	var err error
	if opts.Host, opts.Port, err = hostPort(cfg.ClientAddr, "client address"); err != nil {
		return nil, err
	}
	if cfg.MonitorAddr != "" {
		if opts.HTTPHost, opts.HTTPPort, err = hostPort(cfg.MonitorAddr, "monitoring address"); err != nil {
			return nil, err
		}
	}
	if cfg.ClusterAddr != "" {
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.NoAdvertise = true
		if opts.Cluster.Host, opts.Cluster.Port, err = hostPort(cfg.ClusterAddr, "cluster address"); err != nil {
			return nil, err
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("natsembed: route %q is not a nats://host:port URL", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	return start(opts, Config{DataDir: cfg.DataDir, ServerName: cfg.Name, RelaxedSync: cfg.RelaxedSync,
		Logger: cfg.Logger, ReadyTimeout: cfg.ReadyTimeout})
}

// hostPort splits host:port; port 0 becomes nats-server's "any free port".
func hostPort(addr, what string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("natsembed: %s %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("natsembed: %s %q: bad port", what, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
