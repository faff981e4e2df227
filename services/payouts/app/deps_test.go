package app_test

import (
	"testing"

	"github.com/custody/custody/pkg/deptest"
)

func TestAppKnowsNoTransport(t *testing.T) { deptest.AppKnowsNoTransport(t) }
