package domain_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The domain stays pure: no transport, no storage backend, no bus. Direct
// imports are checked for all of these. The transitive check leaves out
// gRPC because the generated event types share their Go package with the
// generated service stubs (catalogv1 imports grpc); the domain uses the
// messages only, which the direct-import check guarantees.
var (
	forbiddenDirect = []string{
		"github.com/nats-io/",
		"google.golang.org/grpc",
		"github.com/custody/custody/pkg/eventstore/",
		"github.com/custody/custody/pkg/bus",
		"github.com/custody/custody/pkg/platform",
		"github.com/custody/custody/pkg/server",
		"github.com/custody/custody/pkg/clock",
		"net/http",
		"os",
		"github.com/custody/custody/services/catalog/app",
		"github.com/custody/custody/services/catalog/grpcapi",
	}
	forbiddenTransitive = []string{
		"github.com/nats-io/",
		"github.com/custody/custody/pkg/eventstore/jetstream",
		"github.com/custody/custody/pkg/eventstore/memory",
		"github.com/custody/custody/pkg/eventstore/esdb",
		"github.com/custody/custody/pkg/bus",
		"github.com/EventStore/",
	}
)

func TestDomainImportsNoInfrastructure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbiddenDirect {
				if path == bad || strings.HasPrefix(path, bad) && (strings.HasSuffix(bad, "/") || strings.HasPrefix(path, bad+"/")) {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}

	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range forbiddenTransitive {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("domain depends on %s", dep)
			}
		}
	}
}
