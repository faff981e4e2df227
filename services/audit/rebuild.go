package audit

import (
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/platform"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
)

// projections is the audit index, empty, fed from every service's store,
// for `custody rebuild`.
func projections() []platform.Projection {
	idx := domain.NewIndex()
	var out []platform.Projection
	for _, svc := range app.DefaultServices {
		out = append(out, platform.Projection{Name: "order index (" + svc + ")", Source: svc,
			Apply: func(e eventstore.RecordedEvent) { app.IndexEvent(idx, svc, e) }})
	}
	return out
}
