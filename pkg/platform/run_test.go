package platform_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/pkg/server"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
)

// demoModule opens its own event store and records that it started, the
// way a service module opens its store and consumers before serving.
func demoModule(release <-chan struct{}) platform.Module {
	return platform.Module{Name: "demo", New: func(ctx context.Context, d platform.Deps) (platform.Parts, error) {
		st, err := d.OpenStore(ctx, "demo")
		if err != nil {
			return platform.Parts{}, err
		}
		if _, err := st.Append(ctx, "boot-once", eventstore.NoStream, []eventstore.EventData{{ID: "boot", Type: "custody.demo.v1.Booted"}}); err != nil {
			return platform.Parts{}, err
		}
		if release != nil {
			<-release
		}
		return platform.Parts{}, nil
	}}
}

type started struct{ grpc, admin string }

func start(t *testing.T, dir string, release <-chan struct{}) (context.CancelFunc, <-chan started, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan started, 1)
	done := make(chan error, 1)
	cfg := platform.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Version: "test",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(p *platform.Process) { ready <- started{p.GRPCAddr, p.AdminAddr} },
	}
	go func() { done <- platform.Run(ctx, cfg, []platform.Module{demoModule(release)}) }()
	return cancel, ready, done
}

func waitReady(t *testing.T, ready <-chan started, done <-chan error) started {
	t.Helper()
	select {
	case s := <-ready:
		return s
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not serving after 30s")
	}
	return started{}
}

func TestRunServesHealthStatusAndAuth(t *testing.T) {
	dir := t.TempDir()
	cancel, ready, done := start(t, dir, nil)
	addrs := waitReady(t, ready, done)

	anon, err := server.Dial(addrs.grpc, "")
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	h, err := healthpb.NewHealthClient(anon).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	if _, err := systemv1.NewSystemServiceClient(anon).GetStatus(t.Context(), &systemv1.GetStatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("status without a token: %v, want Unauthenticated", err)
	}
	for role, want := range map[string]codes.Code{"buyer:b1": codes.PermissionDenied, "support": codes.OK} {
		tok, err := platform.MintToken(dir, "", "", []string{role}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := server.Dial(addrs.grpc, tok)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := systemv1.NewSystemServiceClient(conn).GetStatus(t.Context(), &systemv1.GetStatusRequest{})
		conn.Close()
		if status.Code(err) != want {
			t.Fatalf("status as %s: %v, want %v", role, err, want)
		}
		if want == codes.OK {
			if len(resp.GetTargets()) != 1 || resp.GetTargets()[0] != "demo" {
				t.Errorf("targets = %v", resp.GetTargets())
			}
			if len(resp.GetEventStreams()) != 1 || resp.GetEventStreams()[0].GetEvents() != 1 || resp.GetEventStreams()[0].GetStream() != "CUSTODY_DEMO" {
				t.Errorf("event streams = %v", resp.GetEventStreams())
			}
			// The watermark follows the boot event within a second.
			conn, err := server.Dial(addrs.grpc, tok)
			if err != nil {
				t.Fatal(err)
			}
			platformtest.Until(t, "the boot event and its watermark stored, and nothing else", func() bool {
				r, err := systemv1.NewSystemServiceClient(conn).GetStatus(t.Context(), &systemv1.GetStatusRequest{})
				if err == nil && r.GetStoredMessages() > 2 {
					t.Fatalf("stored messages = %d, want 2", r.GetStoredMessages())
				}
				return err == nil && r.GetStoredMessages() == 2
			})
			conn.Close()
		}
	}
	res, err := http.Get("http://" + addrs.admin + "/metrics")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("metrics: %v %v", res, err)
	}
	res.Body.Close()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after shutdown", err)
	}

	// The data survives a restart: the module's boot event is there once.
	cancel, ready, done = start(t, dir, nil)
	defer func() { cancel(); <-done }()
	addrs = waitReady(t, ready, done)
	tok, _ := platform.MintToken(dir, "", "", []string{"platform"}, time.Hour)
	conn, _ := server.Dial(addrs.grpc, tok)
	defer conn.Close()
	resp, err := systemv1.NewSystemServiceClient(conn).GetStatus(t.Context(), &systemv1.GetStatusRequest{})
	if err != nil || resp.GetEventStreams()[0].GetEvents() != 1 {
		t.Fatalf("after restart: %v, %v", resp, err)
	}
}

func TestAdminSaysNotReadyUntilModulesStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := l.Addr().String()
	l.Close()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	cfg := platform.Config{
		DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", AdminAddr: adminAddr,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(*platform.Process) { close(ready) },
	}
	go func() { done <- platform.Run(ctx, cfg, []platform.Module{demoModule(release)}) }()
	get := func(path string) int {
		res, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for get("/healthz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("admin port never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while a module is starting, want 503", code)
	}
	close(release)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run ended: %v", err)
	}
	if code := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d once serving, want 200", code)
	}
	cancel()
	if err := <-done; err != nil { // the data dir is removed only after shutdown
		t.Fatal(err)
	}
}

func TestUnknownTarget(t *testing.T) {
	_, err := platform.Select([]platform.Module{{Name: "order"}, {Name: "catalog"}}, "order,payments")
	if err == nil {
		t.Fatal("unknown target accepted")
	}
	got, err := platform.Select([]platform.Module{{Name: "order"}, {Name: "catalog"}}, "catalog")
	if err != nil || len(got) != 1 || got[0].Name != "catalog" {
		t.Fatalf("select catalog = %v, %v", got, err)
	}
	if _, err := platform.Select(nil, "all"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
