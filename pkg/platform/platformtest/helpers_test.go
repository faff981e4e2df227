package platformtest_test

import (
	"context"
	"errors"
	"flag"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/pkg/platform/platformtest"
)

type options struct{ Wait, Grace time.Duration }

func (o *options) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(platform.PositiveDuration(&o.Wait), "svc-wait", "")
	fs.Var(platform.NonNegativeDuration(&o.Grace), "svc-grace", "")
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	defaults := options{Wait: time.Second}
	o, err := platformtest.ParseOptions(defaults, map[string]string{"CUSTODY_SVC_WAIT": "2s", "CUSTODY_SVC_GRACE": "1m"}, "--svc-grace=0s")
	if err != nil || o != (options{Wait: 2 * time.Second}) {
		t.Fatalf("options %+v, %v: the environment sets, a flag given wins", o, err)
	}
	if defaults.Wait != time.Second {
		t.Fatal("ParseOptions changed the defaults it was given")
	}
	if _, err := platformtest.ParseOptions(defaults, nil, "--svc-wait=0s"); err == nil {
		t.Fatal("a bad flag parsed")
	}
	if _, err := platformtest.ParseOptions(defaults, map[string]string{"CUSTODY_SVC_WAIT": "soon"}); err == nil {
		t.Fatal("a bad variable parsed")
	}
	if got := platformtest.FlagNames(new(options).RegisterFlags); !slices.Equal(got, []string{"svc-grace", "svc-wait"}) {
		t.Fatalf("flags %v", got)
	}
}

// rpc is a client method that answers err.
func rpc(err error) func(context.Context, string, ...grpc.CallOption) (string, error) {
	return func(_ context.Context, req string, _ ...grpc.CallOption) (string, error) { return "re: " + req, err }
}

func TestCallsAndAnswers(t *testing.T) {
	t.Parallel()
	bad := apierr.InvalidArgument(apierr.FieldViolation{Field: "order_id", Description: "not an order id"})
	platformtest.WantField(t, platformtest.Call(rpc(bad), t.Context(), "x")(), "order_id")
	platformtest.WantCode(t, platformtest.Call(rpc(nil), t.Context(), "x")(), codes.OK)
	platformtest.WantReason(t, apierr.PermissionDenied("no"), codes.PermissionDenied, "PERMISSION_DENIED")

	row := platformtest.BadRequest[*[]string]{Name: "no lines", Change: func(r *[]string) { *r = nil }, Field: "lines"}
	valid := func() *[]string { return &[]string{"line 1"} }
	if req := row.Of(valid); *req != nil || len(*valid()) != 1 {
		t.Fatalf("BadRequest.Of = %v: want a changed fresh request", *req)
	}

	type client struct{ err error }
	get := func(c client, ctx context.Context, req string, opts ...grpc.CallOption) (string, error) {
		return rpc(c.err)(ctx, req, opts...)
	}
	m := platformtest.Method(get, t.Context(), "x")
	if m(client{}) != nil || !errors.Is(m(client{err: context.Canceled}), context.Canceled) {
		t.Fatal("Method does not call the client it is handed")
	}

	n := 0
	got := platformtest.Await(t, "the third read", func() (int, error) {
		n++
		if n == 1 {
			return 0, errors.New("not there yet")
		}
		return n, nil
	}, func(v int) error {
		if v < 3 {
			return errors.New("too early")
		}
		return nil
	})
	if got != 3 {
		t.Fatalf("Await returned %d, want the accepted 3", got)
	}
}
