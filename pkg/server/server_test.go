package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/server"
	"github.com/custody/custody/pkg/telemetry"
)

// A hand-written service (no generated code needed) with behaviours to
// exercise the interceptors: Echo returns the caller's subject, Panic
// panics, and the Watch stream panics, hangs or echoes depending on input.
const (
	svcA = "custody.test.v1.AlphaService"
	svcB = "custody.test.v1.BetaService"
)

func testService(name string) *grpc.ServiceDesc {
	unary := func(method string, h func(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: method, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) { return h(ctx, req.(*wrapperspb.StringValue)) }
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + name + "/" + method}, call)
		}}
	}
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary("Echo", func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
				c, _ := auth.CallerFrom(ctx)
				return wrapperspb.String(c.Subject + ":" + in.GetValue()), nil
			}),
			unary("Panic", func(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
				panic("boom")
			}),
		},
		Streams: []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			switch in.GetValue() {
			case "panic":
				panic("stream boom")
			case "hang":
				if err := ss.SendMsg(wrapperspb.String("started")); err != nil {
					return err
				}
				<-ss.Context().Done()
				return ss.Context().Err()
			}
			c, _ := auth.CallerFrom(ss.Context())
			return ss.SendMsg(wrapperspb.String(c.Subject))
		}}},
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv    *server.Server
	addr   string
	token  string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs a Server with services A and B on loopback.
func start(t *testing.T, cfg server.Config) *env {
	t.Helper()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "server-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	_, key, _ := ed25519.GenerateKey(nil)
	token, err := auth.NewIssuer(key, nil).Mint("alice", []auth.Role{{Kind: auth.Buyer, ID: "b1"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg.Logger = telemetry.NewLogger(logs, slog.LevelDebug, true)
	cfg.Verifier = auth.NewVerifier(key.Public().(ed25519.PublicKey), nil)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(testService(svcA), struct{}{})
	srv.GRPC().RegisterService(testService(svcB), struct{}{}) // bypassing the wrapper still gates readiness
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	e := &env{srv: srv, addr: lis.Addr().String(), token: token, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); <-e.done })
	return e
}

func (e *env) conn(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := server.Dial(e.addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func checkHealth(t *testing.T, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check %q: %v", service, err)
	}
	return resp.GetStatus()
}

func TestHealthReadiness(t *testing.T) {
	e := start(t, server.Config{})
	conn := e.conn(t, "") // health needs no token
	const (
		serving    = healthpb.HealthCheckResponse_SERVING
		notServing = healthpb.HealthCheckResponse_NOT_SERVING
	)
	steps := []struct {
		name string
		act  func()
		want map[string]healthpb.HealthCheckResponse_ServingStatus
	}{
		{"before MarkReady", func() {}, map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, svcA: notServing, svcB: notServing}},
		{"alpha ready", func() { e.srv.MarkReady(svcA) }, map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, svcA: serving, svcB: notServing}},
		{"all ready", func() { e.srv.MarkReady() }, map[string]healthpb.HealthCheckResponse_ServingStatus{"": serving, svcA: serving, svcB: serving}},
		{"beta not ready", func() { e.srv.MarkNotReady(svcB) }, map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, svcA: serving, svcB: notServing}},
	}
	for _, st := range steps {
		st.act()
		for svc, want := range st.want {
			if got := checkHealth(t, conn, svc); got != want {
				t.Errorf("%s: health(%q) = %v, want %v", st.name, svc, got, want)
			}
		}
		if got, want := e.srv.Ready(), st.want[""] == serving; got != want {
			t.Errorf("%s: Ready() = %v, want %v", st.name, got, want)
		}
	}

	// Shutdown flips readiness off and Serve returns nil.
	e.srv.MarkReady()
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
		e.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if e.srv.Ready() {
		t.Fatal("Ready() after shutdown")
	}
}

func TestReflectionListsServices(t *testing.T) {
	e := start(t, server.Config{})
	stream, err := reflectionpb.NewServerReflectionClient(e.conn(t, "")).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{svcA, svcB, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestCalls(t *testing.T) {
	e := start(t, server.Config{})
	authed := e.conn(t, e.token)
	anon := e.conn(t, "")
	bad := e.conn(t, "not-a-jwt")

	unary := func(conn *grpc.ClientConn, method, in string) (string, error) {
		out := new(wrapperspb.StringValue)
		err := conn.Invoke(t.Context(), "/"+svcA+"/"+method, wrapperspb.String(in), out)
		return out.GetValue(), err
	}
	stream := func(conn *grpc.ClientConn, in string) (string, error) {
		s, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/"+svcA+"/Watch")
		if err != nil {
			return "", err
		}
		if err := s.SendMsg(wrapperspb.String(in)); err != nil {
			return "", err
		}
		if err := s.CloseSend(); err != nil {
			return "", err
		}
		out := new(wrapperspb.StringValue)
		err = s.RecvMsg(out)
		return out.GetValue(), err
	}

	tests := []struct {
		name string
		call func() (string, error)
		code codes.Code
		want string
	}{
		{"unary no token", func() (string, error) { return unary(anon, "Echo", "x") }, codes.Unauthenticated, ""},
		{"unary bad token", func() (string, error) { return unary(bad, "Echo", "x") }, codes.Unauthenticated, ""},
		{"unary ok", func() (string, error) { return unary(authed, "Echo", "x") }, codes.OK, "alice:x"},
		{"unary panic", func() (string, error) { return unary(authed, "Panic", "x") }, codes.Internal, ""},
		{"unary ok after panic", func() (string, error) { return unary(authed, "Echo", "y") }, codes.OK, "alice:y"},
		{"stream no token", func() (string, error) { return stream(anon, "x") }, codes.Unauthenticated, ""},
		{"stream ok", func() (string, error) { return stream(authed, "x") }, codes.OK, "alice"},
		{"stream panic", func() (string, error) { return stream(authed, "panic") }, codes.Internal, ""},
		{"stream ok after panic", func() (string, error) { return stream(authed, "x") }, codes.OK, "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tt.code)
			}
			if tt.code == codes.Internal && status.Convert(err).Message() != "internal error" {
				t.Fatalf("panic leaked to client: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}

	logs := e.logs.String()
	for _, want := range []string{`"panic":"boom"`, "goroutine", `"method":"/` + svcA + `/Echo"`, `"code":"Unauthenticated"`, `"trace_id":"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestMessageSizeLimit(t *testing.T) {
	e := start(t, server.Config{MaxRecvMsgSize: 1024})
	err := e.conn(t, e.token).Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String(strings.Repeat("x", 2048)), new(wrapperspb.StringValue))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v, want ResourceExhausted", err)
	}
}

func TestShutdownCutsHangingStreams(t *testing.T) {
	e := start(t, server.Config{ShutdownTimeout: 100 * time.Millisecond})
	s, err := e.conn(t, e.token).NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/"+svcA+"/Watch")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(wrapperspb.String("hang")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(new(wrapperspb.StringValue)); err != nil { // stream is open on the server
		t.Fatal(err)
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		e.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return; hanging stream blocked shutdown")
	}
	if err := s.RecvMsg(new(wrapperspb.StringValue)); status.Code(err) == codes.OK {
		t.Fatal("stream still open after shutdown")
	}
}

func TestAdminHandler(t *testing.T) {
	e := start(t, server.Config{})
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "custody_up 1\n") })
	admin := httptest.NewServer(server.NewAdminHandler(e.srv.Ready, metrics, false))
	defer admin.Close()
	get := func(path string) (int, string) {
		resp, err := admin.Client().Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name     string
		before   func()
		path     string
		wantCode int
		wantBody string
	}{
		{"alive", func() {}, "/healthz", 200, "ok"},
		{"not ready", func() {}, "/readyz", 503, "not ready"},
		{"metrics", func() {}, "/metrics", 200, "custody_up 1"},
		{"ready", func() { e.srv.MarkReady() }, "/readyz", 200, "ready"},
		{"unknown path", func() {}, "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.before()
			code, body := get(tt.path)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestServeAdmin(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- server.ServeAdmin(ctx, lis, server.NewAdminHandler(func() bool { return true }, nil, false))
	}()
	resp, err := http.Get("http://" + lis.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeAdmin: %v", err)
	}
}

func TestNewRequiresVerifier(t *testing.T) {
	if _, err := server.New(server.Config{}); err == nil {
		t.Fatal("New without a Verifier succeeded")
	}
}

// Profiles are served only when asked for.
func TestAdminProfiling(t *testing.T) {
	for _, on := range []bool{false, true} {
		admin := httptest.NewServer(server.NewAdminHandler(func() bool { return true }, nil, on))
		for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/heap?debug=1": "heap profile"} {
			resp, err := admin.Client().Get(admin.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if served := resp.StatusCode == http.StatusOK && strings.Contains(string(b), want); served != on {
				t.Errorf("profiling %v: GET %s = %d (%d bytes), served %v", on, path, resp.StatusCode, len(b), served)
			}
		}
		admin.Close()
	}
}
