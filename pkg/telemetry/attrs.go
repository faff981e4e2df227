package telemetry

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Outcomes is the measurement option of a fixed attribute set plus
// "outcome", built once per outcome: an attribute set made per measurement
// (sorted, hashed, allocated) cost 3% of the CPU under load, for the same
// few sets every time.
type Outcomes struct {
	base []attribute.KeyValue
	sets sync.Map // outcome -> metric.MeasurementOption
}

// NewOutcomes returns the options of base plus an outcome.
func NewOutcomes(base ...attribute.KeyValue) *Outcomes { return &Outcomes{base: base} }

// Of is the option of base with outcome=o.
func (a *Outcomes) Of(o string) metric.MeasurementOption {
	if opt, ok := a.sets.Load(o); ok {
		return opt.(metric.MeasurementOption)
	}
	set := attribute.NewSet(append(append([]attribute.KeyValue(nil), a.base...), attribute.String("outcome", o))...)
	opt, _ := a.sets.LoadOrStore(o, metric.WithAttributeSet(set))
	return opt.(metric.MeasurementOption)
}
