package platformtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/projection"
)

// Main runs a package's tests on one platform they share: call it from
// TestMain. It starts modules with o, hands the platform to use, runs the
// tests, closes the platform and exits with the tests' code.
func Main(m *testing.M, o Options, use func(*Platform), modules ...platform.Module) {
	p, err := New(o, modules...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the platform:", err)
		os.Exit(1)
	}
	use(p)
	code := m.Run()
	p.Close()
	os.Exit(code)
}

// As is Client for role: one role, several separated by commas, or none
// (""): As(t, p, orderv1.NewOrderServiceClient, "buyer:ada").
func As[C any](t testing.TB, p *Platform, newClient func(grpc.ClientConnInterface) C, role string) C {
	t.Helper()
	var roles []string
	if role != "" {
		roles = strings.Split(role, ",")
	}
	return Client(t, p, newClient, roles...)
}

// LastPosition is the newest position of service's store: a refused
// request must leave it where it was.
func (p *Platform) LastPosition(t testing.TB, service string) uint64 {
	t.Helper()
	pos, err := p.Store(t, service).LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// Await polls get until check accepts what it returns (Eventually) and
// returns that: a read that must come to show what the test expects.
func Await[T any](t testing.TB, what string, get func() (T, error), check func(T) error) T {
	t.Helper()
	var got T
	Eventually(t, what, func() error {
		v, err := get()
		if err != nil {
			return err
		}
		got = v
		return check(v)
	})
	return got
}

// Call is rpc(ctx, req) to be made later, for a table of calls and the
// answers they must get: Call(client.GetOrder, ctx, req).
func Call[Req, Resp any](rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), ctx context.Context, req Req) func() error {
	return func() error {
		_, err := rpc(ctx, req)
		return err
	}
}

// BadRequest is a row of a table of bad input: a change that makes a valid
// request bad in Field, so that the call must be refused naming it.
type BadRequest[Req any] struct {
	Name   string
	Change func(Req)
	Field  string
}

// Of returns a fresh valid() with the row's change made to it.
func (b BadRequest[Req]) Of(valid func() Req) Req {
	req := valid()
	b.Change(req)
	return req
}

// Method is Call for the client a table hands it (one role's or
// another's): Method(orderv1.OrderServiceClient.GetOrder, ctx, req).
func Method[C, Req, Resp any](rpc func(C, context.Context, Req, ...grpc.CallOption) (Resp, error), ctx context.Context, req Req) func(C) error {
	return func(c C) error {
		_, err := rpc(c, ctx, req)
		return err
	}
}

// AppDeps is what service's application runs on in this platform, as its
// module gets it (platform.Deps.AppDeps) but with a logger that discards:
// for a test that builds the app itself and hands its handlers the events.
func (p *Platform) AppDeps(t testing.TB, service string) projection.Deps {
	t.Helper()
	return projection.Deps{
		Store: p.Store(t, service),
		Open: func(ctx context.Context, other string) (projection.Store, error) {
			st, err := p.openStore(ctx, other)
			if err != nil {
				return nil, err // not a nil *Store in a non-nil interface
			}
			return st, nil
		},
		Clock:  p.Clock,
		Logger: slog.New(slog.DiscardHandler),
	}
}
