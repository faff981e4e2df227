package trust

import (
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/trust/app"
)

// projections are the trust read models, empty, for `custody rebuild`.
func projections() []platform.Projection {
	record := app.NewRecordView()
	from := func(service string) func(eventstore.RecordedEvent) {
		return func(e eventstore.RecordedEvent) { record.ApplyFrom(service, e) }
	}
	return []platform.Projection{
		{Name: "claims and vendor trust", Source: Name, Apply: app.NewReadModel(nil).Apply},
		{Name: "custody record (orders)", Source: app.OrderService, Apply: from(app.OrderService)},
		{Name: "custody record (fulfilments)", Source: app.FulfilmentService, Apply: from(app.FulfilmentService)},
	}
}
