package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/server"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

// The harness of the tests that run the real binary: the test binary runs
// itself as `custody` (TestMain reads the arguments from
// CUSTODY_CRASH_CHILD_ARGS), so a test can kill the process, damage or
// fill its disk, and start it again on the same data directory.

// TestMain is also the child half: the real `custody <args>`.
func TestMain(m *testing.M) {
	if args := os.Getenv("CUSTODY_CRASH_CHILD_ARGS"); args != "" {
		if err := run(strings.Split(args, "\n"), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// custodyCommand is `custody <args>` as a child of the test, not started.
func custodyCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CUSTODY_CRASH_CHILD_ARGS="+strings.Join(args, "\n"))
	return cmd
}

// runArgs are the arguments of `custody run` on dir, serving gRPC on addr
// without an admin port or console and logging errors only; extra flags
// come last and win.
func runArgs(dir, addr string, extra ...string) []string {
	return append([]string{"run", "--data-dir=" + dir, "--grpc-addr=" + addr, "--admin-addr=", "--console-addr=", "--log-level=error"}, extra...)
}

// serve starts `custody run` (runArgs), waits until it serves, and kills
// it when the test ends if it still runs.
func serve(t *testing.T, dir, addr string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := custodyCommand(runArgs(dir, addr, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	waitServing(t, addr)
	return cmd
}

// stop ends a child with SIGTERM, as an operator would, and waits for it.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
}

type orderClients struct {
	cat   catalogv1.CatalogServiceClient
	ord   orderv1.OrderServiceClient
	ful   fulfilmentv1.FulfilmentServiceClient
	pay   payoutsv1.PayoutsServiceClient
	audit auditv1.AuditServiceClient
}

// dialAs connects to the process serving on addr with a token of roles
// minted from dir's key. The connection reconnects across restarts.
func dialAs(t *testing.T, dir, addr string, roles ...string) *orderClients {
	t.Helper()
	tok, err := platform.MintToken(dir, "", "", roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := server.Dial(addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &orderClients{cat: catalogv1.NewCatalogServiceClient(conn), ord: orderv1.NewOrderServiceClient(conn),
		ful: fulfilmentv1.NewFulfilmentServiceClient(conn), pay: payoutsv1.NewPayoutsServiceClient(conn),
		audit: auditv1.NewAuditServiceClient(conn)}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := server.Dial(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, "the platform to serve", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}
