package main

import (
	"sort"
	"strings"

	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/catalog"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/trust"
)

// modules lists every service the binary can run, in start order. Each
// service module (services/<name>) adds itself here.
func modules() []platform.Module {
	return []platform.Module{
		catalog.Module(),
		order.Module(),
		fulfilment.Module(),
		trust.Module(),
		payouts.Module(),
		audit.Module(),
	}
}

func targetNames() string {
	var names []string
	for _, m := range modules() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
