// Package deptest keeps Custody's layering true without anyone remembering
// it, in the style of Tailscale's dependency tests: a service's domain/
// never reaches NATS, a store backend, the process wiring or gRPC, and its
// app/ never reaches NATS. Each layer's test is one line:
//
//	func TestDomainStaysPure(t *testing.T) { deptest.DomainStaysPure(t) }
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Transport is what no domain and no application layer may depend on:
// NATS and JetStream, the stores that run on them and the runtime that
// consumes them.
var Transport = []string{
	"github.com/nats-io/",
	"github.com/custody/custody/pkg/eventstore/jetstream",
	"github.com/custody/custody/pkg/eventstore/esdb",
	"github.com/custody/custody/pkg/bus",
	"github.com/custody/custody/pkg/platform",
	"github.com/custody/custody/pkg/natsembed",
	"github.com/EventStore/",
}

// DomainStaysPure fails t if the package in the current directory (a
// domain/) depends on Transport, the memory store, the server, the clock,
// or imports gRPC itself. gRPC is checked among the package's own imports
// only: the generated proto package that holds the events also holds the
// service stubs, so it links grpc in, but the domain never touches it.
//
// Nor may it import I/O (os, net) or its own service's outer layers (the
// app/ and grpcapi/ beside it): time and data come in as arguments.
func DomainStaysPure(t *testing.T) {
	t.Helper()
	service := strings.TrimSuffix(list(t, "-f", "{{.ImportPath}}", ".")[0], "/domain")
	Forbid(t, ".", append(Transport,
		"github.com/custody/custody/pkg/eventstore/memory",
		"github.com/custody/custody/pkg/server",
		"github.com/custody/custody/pkg/clock",
		service+"/app",
		service+"/grpcapi",
	)...)
	ForbidImports(t, ".", "google.golang.org/grpc", "os", "net")
}

// AppKnowsNoTransport fails t if the package in the current directory (an
// app/) depends on Transport: the platform's runtime runs its reactions
// and projections, the app only decides what they do.
func AppKnowsNoTransport(t *testing.T) {
	t.Helper()
	Forbid(t, ".", Transport...)
}

// Forbid fails t if pkg depends, directly or not, on a package whose import
// path starts with one of prefixes.
func Forbid(t *testing.T, pkg string, prefixes ...string) {
	t.Helper()
	check(t, pkg, "depends on", list(t, "-deps", "-f", "{{.ImportPath}}", pkg), prefixes)
}

// ForbidImports fails t if pkg itself imports a package whose import path
// starts with one of prefixes.
func ForbidImports(t *testing.T, pkg string, prefixes ...string) {
	t.Helper()
	check(t, pkg, "imports", list(t, "-f", `{{join .Imports "\n"}}`, pkg), prefixes)
}

func list(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

func check(t *testing.T, pkg, verb string, deps, prefixes []string) {
	t.Helper()
	if len(deps) == 0 {
		t.Fatalf("go list found nothing for %s", pkg)
	}
	for _, dep := range matching(deps, prefixes) {
		t.Errorf("%s %s %s", pkg, verb, dep)
	}
}

// matching returns the deps that start with one of prefixes.
func matching(deps, prefixes []string) []string {
	var out []string
	for _, dep := range deps {
		for _, p := range prefixes {
			if strings.HasPrefix(dep, p) {
				out = append(out, dep)
				break
			}
		}
	}
	return out
}
