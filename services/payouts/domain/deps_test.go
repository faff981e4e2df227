package domain_test

import (
	"testing"

	"github.com/custody/custody/pkg/deptest"
)

func TestDomainStaysPure(t *testing.T) { deptest.DomainStaysPure(t) }
