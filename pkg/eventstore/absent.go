package eventstore

// Absence is what a store with an in-memory index of its streams (the
// jetstream backend) can answer without a round trip: that it has not seen
// a stream. The answer may be stale, since another process may have
// created the stream meanwhile, so only a writer whose append is fenced by
// an expected revision may trust it. es.Handler does: it starts a new
// aggregate from its initial state without reading the store, and its
// append expects no stream; a refusal or no-op is still decided on a copy
// read from the store.
type Absence interface {
	// Absent reports that the stream is known not to exist as far as the
	// store has seen; false also when the store cannot tell.
	Absent(stream string) bool
}
