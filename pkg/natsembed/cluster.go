package natsembed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is a JetStream cluster of several servers in one process, the
// way nats-server's own tests run one: each node has its own data directory
// and client listener on loopback, and routes to the others. Streams created
// with Replicas: 3 on it behave as they do in production (R3).
type Cluster struct {
	Servers []*Server
}

// StartCluster starts n nodes under dir and waits for a JetStream meta leader.
func StartCluster(dir string, n int) (*Cluster, error) {
	if n < 1 {
		return nil, errors.New("natsembed: cluster needs at least one node")
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("custody-%d", i+1)
		opts := &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, name),
			SyncAlways: true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "custody",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: routes,
		}
		s, err := start(opts, Config{DataDir: opts.StoreDir, ServerName: name, ReadyTimeout: 30 * time.Second})
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	if err := c.waitForMetaLeader(30 * time.Second); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// ClientURLs is a comma-separated list of every node's client URL.
func (c *Cluster) ClientURLs() string {
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, s.ns.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Connect connects to the cluster (any node).
func (c *Cluster) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(c.ClientURLs(), opts...)
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
}

func (c *Cluster) waitForMetaLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s.ns.JetStreamIsLeader() {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("natsembed: no JetStream meta leader elected")
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natsembed: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
