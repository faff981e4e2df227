package app_test

import (
	"testing"

	"github.com/custody/custody/pkg/deptest"
)

// TestAppKnowsNoTransport: the platform's runtime feeds the index; the app
// reads the stores only through the port.
func TestAppKnowsNoTransport(t *testing.T) { deptest.AppKnowsNoTransport(t) }
