package fulfilment

import (
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/fulfilment/app"
)

// projections are the fulfilment read models, empty, for `custody rebuild`.
func projections() []platform.Projection {
	return []platform.Projection{{Name: "fulfilments by vendor and order", Source: Name, Apply: app.NewReadModel(nil).Apply}}
}
