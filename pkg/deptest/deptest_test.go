package deptest

import (
	"slices"
	"testing"
)

// The check must be able to fail: this package's own dependencies, as go
// list reports them, include os/exec, and matching finds it.
func TestMatchingFindsADependency(t *testing.T) {
	deps := list(t, "-deps", "-f", "{{.ImportPath}}", ".")
	if got := matching(deps, []string{"os/ex", "github.com/nats-io/"}); !slices.Equal(got, []string{"os/exec"}) {
		t.Fatalf("matching(deps of deptest) = %v, want [os/exec]", got)
	}
}

func TestFaultIsPure(t *testing.T) {
	Forbid(t, "github.com/custody/custody/pkg/fault", append(Transport, "google.golang.org/grpc")...)
}
