package platformtest

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"
)

// The first otel.SetMeterProvider of a process hands every meter made so
// far to the new provider, and otel's global meter takes its locks for
// that in the opposite order to a callback's Unregister. A platform that
// starts (telemetry.Setup) while another test closes a read-model store
// or stops a consumer (both unregister their gauges' callbacks) could
// deadlock the test binary. The harness makes that first hand-over here,
// when the binary starts and nothing else runs: every later
// SetMeterProvider only replaces the provider new meters come from.
func init() {
	otel.SetMeterProvider(noop.NewMeterProvider())
}
