// Command custodyctl is the command-line client of Custody for people:
// tokens, status, and (as services land) orders, shipments, claims,
// balances and timelines.
//
//	export CUSTODY_TOKEN=$(custodyctl token --role support)
//	custodyctl status
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "custodyctl:", err)
		}
		os.Exit(1)
	}
}

const usage = `custodyctl — the Custody command-line client

Usage:
  custodyctl token --role R [--role R…]   mint a token with the local data dir's key
  custodyctl health                       is the server serving?
  custodyctl status                       targets and event streams of the server
  custodyctl bench [--orders N …]         flash-sale load generator (PlaceOrder until outcome)

Global flags (before the command):
  --addr   server address (env CUSTODY_ADDR, default 127.0.0.1:7070)
  --token  bearer token (env CUSTODY_TOKEN)
  --json   print JSON instead of tables
`

// cli carries the global flags and a lazily dialled connection.
type cli struct {
	addr, token string
	json        bool
	out         io.Writer
	conn        *grpc.ClientConn
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custodyctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	c := &cli{out: stdout}
	fs.StringVar(&c.addr, "addr", envOr("CUSTODY_ADDR", "127.0.0.1:7070"), "server address")
	fs.StringVar(&c.token, "token", os.Getenv("CUSTODY_TOKEN"), "bearer token")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	defer func() {
		if c.conn != nil {
			c.conn.Close()
		}
	}()
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch cmd {
	case "token":
		return c.tokenCmd(rest, stderr)
	case "health":
		return c.healthCmd(ctx)
	case "status":
		return c.statusCmd(ctx)
	case "bench":
		return c.benchCmd(rest, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *cli) dial() (*grpc.ClientConn, error) {
	if c.conn == nil {
		conn, err := server.Dial(c.addr, c.token)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	return c.conn, nil
}

func (c *cli) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

func (c *cli) tokenCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("custodyctl token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr("CUSTODY_DATA_DIR", "./data"), "data directory of the all-in-one (keys/ holds the signing key)")
	subject := fs.String("subject", "", "who the token is for (default: the first role)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	var roles []string
	fs.Func("role", "role, repeatable: buyer:<id>, vendor:<id>, creator:<id>, carrier:<id>, support, platform, service", func(v string) error {
		roles = append(roles, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := platform.MintToken(*dataDir, "", *subject, roles, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, tok)
	return nil
}

func (c *cli) healthCmd(ctx context.Context) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	fmt.Fprintln(c.out, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return errors.New("not serving")
	}
	return nil
}

func (c *cli) statusCmd(ctx context.Context) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	resp, err := systemv1.NewSystemServiceClient(conn).GetStatus(ctx, &systemv1.GetStatusRequest{})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.out, "version  %s\nnats     %s\nstarted  %s\ntargets  %s\n\n", resp.GetVersion(), resp.GetNats(),
		resp.GetStartedTime().AsTime().Local().Format(time.RFC3339), strings.Join(resp.GetTargets(), ", "))
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTREAM\tEVENTS\tLAST POSITION\tBYTES\tREPLICAS")
	for _, s := range resp.GetEventStreams() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", s.GetService(), s.GetStream(), s.GetEvents(), s.GetLastPosition(), s.GetBytes(), s.GetReplicas())
	}
	return tw.Flush()
}
