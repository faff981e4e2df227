package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainStaysPure keeps the layering true without anyone remembering it
// (in the style of Tailscale's dependency tests): the domain never reaches
// NATS, the event store backends, the bus, the process wiring or gRPC.
//
// gRPC is checked among the domain's own imports only: the generated proto
// package that holds the events also holds the service stubs, so it links
// grpc in, but the domain itself never touches it.
func TestDomainStaysPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbiddenAnywhere := []string{
		"github.com/nats-io/",
		"github.com/custody/custody/pkg/eventstore/jetstream",
		"github.com/custody/custody/pkg/eventstore/memory",
		"github.com/custody/custody/pkg/eventstore/esdb",
		"github.com/custody/custody/pkg/bus",
		"github.com/custody/custody/pkg/platform",
		"github.com/custody/custody/pkg/server",
		"github.com/custody/custody/pkg/clock",
		"github.com/EventStore/",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbiddenAnywhere {
			if strings.HasPrefix(dep, f) {
				t.Errorf("domain depends on %s", dep)
			}
		}
	}

	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "google.golang.org/grpc") {
			t.Errorf("domain imports %s", imp)
		}
	}
}
