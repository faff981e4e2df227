// Package bus is how one Custody service reacts to another service's events:
// a durable JetStream pull consumer on the owning service's event stream
// (CUSTODY_<SERVICE>, see pkg/eventstore/jetstream) that hands each event to
// a Handler.
//
// # Messages and events
//
// A message of an event stream is one command's commit: one or more events
// of one aggregate (see pkg/eventstore/jetstream, "one message per
// command"). The bus decodes all of them and hands them to the handler one at
// a time, in order, each with its own processed marker, filter check and
// span; it acknowledges the message only after its last event. When the
// handler fails on an event, the message is nak'ed; on the redelivery the
// events already handled are skipped (their markers are there) and handling
// resumes at the one that failed. Parking parks the whole message and
// records which event failed (Custody-Dead-Letter-Event-Id, -Event-Type,
// -Event-Index). MaxDeliver and AckWait are per message; the bus restarts
// the server's AckWait before each further event of a message.
//
// # Delivery guarantees
//
// Delivery is at least once. The consumer is durable (its position lives on
// the server and survives restarts of the process and of the server), uses
// explicit acks and starts at the beginning of the stream, so every event is
// offered to the handler until it has been handled or parked.
//
//   - Success: the handler returned nil. The bus records the event id as
//     processed for this consumer (key "<consumer>.<event id>" in the
//     KeyValue bucket custody_processed, written create-if-absent) and, after
//     the message's last event, acks. Every delivery first looks for that marker and only acks when it
//     is there, so an event whose ack was lost, that arrived again after
//     AckWait, or that is replayed because the durable consumer was
//     re-created is not handled twice.
//   - Failure: the handler returned an error (or panicked). The message is
//     nak'ed with a short, growing delay (Config.Backoff) and redelivered;
//     events of it already handled are skipped then.
//   - Parking: when the handler still fails on delivery MaxDeliver, or returns
//     an error wrapped with fault.Permanent (a poison message, e.g. an undecodable
//     payload), or the message is not a Custody event at all, the message is
//     published with its original headers and body to
//     custody.deadletter.<consumer>.<service> in the stream CUSTODY_DEADLETTER,
//     with Custody-Dead-Letter-* headers saying why. Only after that publish
//     is acknowledged is the original terminated, so a poison message never
//     blocks the messages behind it and is never dropped silently: if the
//     dead-letter publish fails, the message is nak'ed and tried again.
//     ListParked shows what was parked; each parking is logged at error level
//     and counted (once per message) in the custody.bus.parked metric.
//
// Markers are kept for good (one small key per consumer and event): a
// consumer re-created from scratch replays its whole source stream and must
// still recognise what it already handled.
//
// The processed marker narrows duplicates but cannot remove them: a crash
// between the handler's success and the marker write redelivers an event
// whose effects already happened. Handlers must therefore be idempotent
// themselves — derive the ids of the commands they issue from the causing
// event id, so the aggregate recognises a command it already applied.
//
// The bus does not enforce the server-side MaxDeliver: the consumer is
// created with unlimited deliveries and the bus bounds the attempts itself,
// because a message that hits the server's limit is skipped without our
// seeing it, and that would drop it silently when parking had failed.
//
// # Tracing and metrics
//
// The producer's W3C trace context (traceparent/tracestate in the event
// metadata) becomes the parent of a consumer span "<consumer> process
// <event type>", one per event, and the handler runs inside it. Metrics
// (meter github.com/custody/custody/pkg/bus): custody.bus.handled (per
// event, by outcome: ok, skipped, duplicate; retry and parked once per
// failed delivery),
// custody.bus.redeliveries, custody.bus.parked, custody.bus.handler.duration
// and custody.bus.consumer.lag.
package bus
