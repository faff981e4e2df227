package platform

import (
	"context"
	"flag"
	"io"
	"testing"
	"time"
)

type waitOptions struct{ Wait time.Duration }

func (o *waitOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Wait, "wait", o.Wait, "how long to wait")
}

// buildWith records the options a module was built from.
func buildWith(got *waitOptions) func(context.Context, Deps, waitOptions) (Parts, error) {
	return func(_ context.Context, _ Deps, o waitOptions) (Parts, error) {
		*got = o
		return Parts{}, nil
	}
}

func TestWithFlags(t *testing.T) {
	t.Parallel()
	var got waitOptions
	m := WithFlags("svc", waitOptions{Wait: time.Second}, buildWith(&got))
	fs := flag.NewFlagSet("custody", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs, []Module{m})
	if def := fs.Lookup("wait").DefValue; m.Name != "svc" || def != "1s" {
		t.Fatalf("module %q, --wait default %q", m.Name, def)
	}
	if err := fs.Parse([]string{"--wait=3s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.New(t.Context(), Deps{}); err != nil || got.Wait != 3*time.Second {
		t.Fatalf("built with %+v, %v: want the flag's 3s", got, err)
	}
}

func TestWithOptions(t *testing.T) {
	t.Parallel()
	var got waitOptions
	m := WithOptions("svc", waitOptions{Wait: time.Minute}, buildWith(&got))
	if m.Name != "svc" || m.RegisterFlags != nil {
		t.Fatalf("module %q declares flags: %v", m.Name, m.RegisterFlags != nil)
	}
	if _, err := m.New(t.Context(), Deps{}); err != nil || got.Wait != time.Minute {
		t.Fatalf("built with %+v, %v", got, err)
	}
}

func TestDurationFlags(t *testing.T) {
	t.Parallel()
	var pos, nonNeg time.Duration = time.Hour, time.Hour
	fs := flag.NewFlagSet("custody", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(PositiveDuration(&pos), "pos", "")
	fs.Var(NonNegativeDuration(&nonNeg), "non-neg", "")
	if def := fs.Lookup("pos").DefValue; def != "1h0m0s" {
		t.Fatalf("default %q", def)
	}
	if err := fs.Parse([]string{"--pos=90m", "--non-neg=0s"}); err != nil || pos != 90*time.Minute || nonNeg != 0 {
		t.Fatalf("parsed %v, %v: %v", pos, nonNeg, err)
	}
	for _, bad := range []string{"--pos=0s", "--pos=-1h", "--pos=soon", "--non-neg=-1s", "--non-neg=later"} {
		if err := fs.Parse([]string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
