// Package targets lists every service the custody binary can run, in start
// order: `custody run` uses it, and so do tests that start the platform as
// the binary would.
package targets

import (
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/audit"
	"github.com/custody/custody/services/catalog"
	"github.com/custody/custody/services/console"
	"github.com/custody/custody/services/fulfilment"
	"github.com/custody/custody/services/order"
	"github.com/custody/custody/services/payouts"
	"github.com/custody/custody/services/trust"
)

// All returns every service module. Each service module (services/<name>)
// adds itself here.
func All() []platform.Module {
	return []platform.Module{
		catalog.Module(),
		order.Module(),
		fulfilment.Module(),
		trust.Module(),
		payouts.Module(),
		audit.Module(),
		console.Module(),
	}
}
