// Command custodyctl is the command-line client of Custody for people:
// tokens, status, orders, shipments and carrier scans, claims and vendor
// trust, balances, statements and payouts, order timelines with their
// hash-chain verification and replays, buyers' erasure and data export,
// the fake clock, and a scripted end-to-end demo.
//
//	export CUSTODY_TOKEN=$(custodyctl token --role support)
//	custodyctl status
//	custodyctl --as buyer:ada orders list --buyer ada
//	custodyctl timeline o3f2…
//
// Every command prints readable tables by default and protojson with
// --json; "custodyctl <command> -h" shows a command's flags.
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
  custodyctl clock [advance <dur>]        the server's clock; move a fake one (e.g. 36h, 7d)

  custodyctl orders place|get|list|cancel|cancel-lines|change-address   buyers' orders
  custodyctl shipments list|get|watch|ship           a vendor's fulfilments and shipments
  custodyctl scan --carrier C --tracking N --status S   post a carrier scan
  custodyctl claims open|get|list|respond|resolve|return|receive   claims, returns, refunds
  custodyctl trust <vendor>                          a vendor's trust score and tier
  custodyctl balance <owner>                         balances of vendor:<id>, creator:<id>, platform…
  custodyctl statement <account> [--from --to]       an account's entries with opening/closing
  custodyctl payouts run|get                         run payouts; show a batch

  custodyctl timeline <order>             every service's events of an order, with hashes
  custodyctl verify <order>               verify the order's hash chains
  custodyctl replay <order> --as-of T     the order and everything hanging off it at T

  custodyctl parked [--consumer C]        events consumers gave up on (the dead-letter stream)
  custodyctl privacy erase|export --buyer B   erase a buyer's personal data; export a copy of it
  custodyctl demo --data-dir D            the end-to-end story against a --clock=fake server
  custodyctl bench [--orders N …]         load generator: closed loop, or open loop with --rate R --duration D

Global flags (before the command):
  --addr      server address (env CUSTODY_ADDR, default 127.0.0.1:7070)
  --token     bearer token (env CUSTODY_TOKEN)
  --as        role to mint a token for on the fly from --data-dir's key, repeatable
              (buyer:<id>, vendor:<id>, creator:<id>, carrier:<id>, support, platform, service)
  --data-dir  data directory of the all-in-one (env CUSTODY_DATA_DIR, default ./data)
  --json      print JSON instead of tables
  --tls-ca, --tls-cert, --tls-key
              TLS (and mTLS) to a server run with --tls-cert (and --tls-client-ca)

Run "custodyctl <command> -h" for a command's flags.
`

// cli carries the global flags and a lazily dialled connection.
type cli struct {
	addr, token string
	dataDir     string
	as          []string
	tls         server.TLSFiles
	json        bool
	out         io.Writer
	errOut      io.Writer
	conn        *grpc.ClientConn
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custodyctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	c := &cli{out: stdout, errOut: stderr}
	fs.StringVar(&c.addr, "addr", envOr("CUSTODY_ADDR", "127.0.0.1:7070"), "server address")
	fs.StringVar(&c.token, "token", os.Getenv("CUSTODY_TOKEN"), "bearer token")
	fs.StringVar(&c.dataDir, "data-dir", envOr("CUSTODY_DATA_DIR", "./data"), "data directory of the all-in-one (for --as and token)")
	fs.Func("as", "role to mint a token for from --data-dir's key (repeatable)", func(v string) error {
		c.as = append(c.as, v)
		return nil
	})
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.StringVar(&c.tls.CAFile, "tls-ca", os.Getenv("CUSTODY_TLS_CA"), "dial over TLS, trusting this CA (PEM)")
	fs.StringVar(&c.tls.CertFile, "tls-cert", os.Getenv("CUSTODY_TLS_CLIENT_CERT"), "client certificate for mTLS (PEM)")
	fs.StringVar(&c.tls.KeyFile, "tls-key", os.Getenv("CUSTODY_TLS_CLIENT_KEY"), "the client certificate's key (PEM)")
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
	// Commands that run long (watch, demo, bench) manage their own time.
	long, stopLong := context.WithCancel(context.Background())
	defer stopLong()
	var err error
	switch cmd {
	case "token":
		return c.tokenCmd(rest, stderr)
	case "health":
		err = c.healthCmd(ctx)
	case "status":
		err = c.statusCmd(ctx)
	case "bench":
		err = c.benchCmd(rest, stderr)
	case "clock":
		err = c.clockCmd(ctx, rest)
	case "orders":
		err = c.ordersCmd(ctx, rest)
	case "shipments":
		err = c.shipmentsCmd(ctx, long, rest)
	case "scan":
		err = c.scanCmd(ctx, rest)
	case "claims":
		err = c.claimsCmd(ctx, rest)
	case "trust":
		err = c.trustCmd(ctx, rest)
	case "balance":
		err = c.balanceCmd(ctx, rest)
	case "statement":
		err = c.statementCmd(ctx, rest)
	case "payouts":
		err = c.payoutsCmd(ctx, rest)
	case "timeline":
		err = c.timelineCmd(long, rest)
	case "verify":
		err = c.verifyCmd(ctx, rest)
	case "replay":
		err = c.replayCmd(ctx, rest)
	case "parked":
		err = c.parkedCmd(ctx, rest)
	case "privacy":
		err = c.privacyCmd(ctx, rest)
	case "demo":
		err = c.demoCmd(long, rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	return explain(err)
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *cli) dial() (*grpc.ClientConn, error) {
	if c.conn == nil {
		token := c.token
		if len(c.as) > 0 {
			tok, err := platform.MintToken(c.dataDir, "", "", c.as, time.Hour)
			if err != nil {
				return nil, fmt.Errorf("--as: %w", err)
			}
			token = tok
		}
		var opts []grpc.DialOption
		if c.tls.Enabled() {
			opt, err := c.tls.DialOption()
			if err != nil {
				return nil, err
			}
			opts = append(opts, opt)
		}
		conn, err := server.Dial(c.addr, token, opts...)
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
	dataDir := fs.String("data-dir", c.dataDir, "data directory of the all-in-one (keys/ holds the signing key)")
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
