package order

import (
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/order/app"
)

// projections are the order service's read models, empty, for `custody rebuild`.
func projections() []platform.Projection {
	return []platform.Projection{
		{Name: "orders by buyer and vendor", Source: Name, Apply: app.NewReadModel(nil).Apply},
		{Name: "catalog view (prices, links, pins)", Source: "catalog", Apply: app.NewCatalogView().Apply},
	}
}
