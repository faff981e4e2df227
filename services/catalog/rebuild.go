package catalog

import (
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/catalog/app"
)

// projections are the catalog's read models, empty, for `custody rebuild`.
func projections() []platform.Projection {
	idx := app.NewProductIndex()
	return []platform.Projection{{Name: "products by vendor", Source: Name, Apply: func(e eventstore.RecordedEvent) { _ = idx.Apply(e) }}}
}
