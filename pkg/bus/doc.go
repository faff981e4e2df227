// Package bus is how one Custody service reacts to another service's events:
// a durable JetStream pull consumer on the owning service's event stream
// (CUSTODY_<SERVICE>, see pkg/eventstore/jetstream) that hands each event to
// a Handler.
//
// # Messages, streams and lanes
//
// A message of an event stream is a group commit: the appends of one or
// more streams (aggregates) of one aggregate type that the store wrote
// together, on custody.<service>.<aggregate>.commits; each event names its
// stream in the body. (The esdb relay writes one event per message, on
// custody.<service>.<aggregate>.<id>; the bus reads both alike.)
//
// The consumer pulls messages in batches (Config.Prefetch) and keeps at
// most Prefetch of them in flight. One dispatcher takes them in delivery
// order, decodes each, and queues every event in the lane of its stream (a
// hash of the stream name; Config.Concurrency lanes, each a FIFO queue with
// one worker). So the events of one stream are handled one after the
// other, in stream order, also across messages, while the events of
// different streams — of one message or of several — are handled side by
// side. A consumer whose handler acts on another aggregate than the
// event's may order by that one instead (Config.OrderBy): the answers to
// many orders that one hot product records are then handled side by side,
// each order's in order.
//
// A message is settled when the last of its events is done:
//
//   - every event handled (or skipped by Config.EventTypes): it is acked;
//   - an event failed: the message is nak'ed with a growing delay
//     (Config.Backoff) and the redelivery hands ALL its events to the
//     handler again. Events of the failed event's stream that come after it
//     in the message are not handed over before that redelivery; the other
//     streams' events are handled meanwhile, and again on the redelivery.
//     (Later messages are not held back: their events of that stream may be
//     handled before the redelivery, as they were when a message held one
//     stream's events);
//   - parked (see below).
//
// Parking parks the whole message and records which event failed
// (Custody-Dead-Letter-Event-Id, -Event-Type and -Event-Index, its index in
// the message). MaxDeliver and AckWait are per message: while a message
// waits in its lanes or its events run within their deadline (AckWait per
// event), the bus restarts the server's AckWait (in progress) before it
// runs out; a handler that outlives its deadline lets it run out. A
// redelivery of a message this consumer is still handling only takes over
// its acknowledgement.
//
// # Delivery guarantees
//
// Delivery is at least once. The consumer is durable (its position lives on
// the server and survives restarts of the process and of the server), uses
// explicit acks and starts at the beginning of the stream, so every event is
// offered to the handler until its message has been acked or parked. A
// message is acked (a plain ack) only after each of its events has been
// handled, so its effects are durable first; an ack lost on the way, a
// process that dies before it acks, a message offered again after AckWait,
// and a durable consumer re-created from scratch (it replays the whole
// source stream) all mean the same thing: events handed to the handler
// again.
//
// Effects happen exactly once because handlers are idempotent, not because
// the bus suppresses duplicates. A reaction derives the id of each command
// it issues from the causing event's id (es.DeriveID), and the aggregate
// recognises a command it has already applied (pkg/es: the aggregate's set
// of applied command ids, rebuilt from its events' causation ids), so a
// repeated event leads to a duplicate command that changes nothing.
// Handlers must keep it so: no effect without such a key.
//
// The bus keeps no record of which events it handled. Such a "processed"
// marker (one key per consumer and event) cannot remove the need for
// idempotent handlers — a crash between the handler's success and the
// marker write redelivers an event whose effects happened — so it only
// narrowed duplicates, at the price of one replicated, fsync'd write per
// event per consumer on the critical path of every reaction, more than the
// reaction's own append once the store commits many appends per write.
//
//   - Success: every event of the message returned nil: the message is acked.
//   - Failure: a handler returned an error (or panicked): the message is
//     nak'ed with the backoff and redelivered, all its events with it.
//   - Parking: when an event still fails on delivery MaxDeliver, or its
//     handler returns an error wrapped with fault.Permanent (a poison event,
//     e.g. an undecodable payload), or the message is not a Custody commit
//     at all, the message is published with its original headers and body
//     to custody.deadletter.<consumer>.<service> in the stream
//     CUSTODY_DEADLETTER, with Custody-Dead-Letter-* headers saying why.
//     Only after that publish is acknowledged is the original terminated,
//     so a poison message never blocks the messages behind it and is never
//     dropped silently: if the dead-letter publish fails, the message is
//     nak'ed and tried again. ListParked shows what was parked; each parking
//     is logged at error level and counted (once per message) in the
//     custody.bus.parked metric.
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
// (meter github.com/custody/custody/pkg/bus): custody.bus.handled (by
// outcome: ok and skipped per event; retry and parked once per failed
// delivery), custody.bus.redeliveries, custody.bus.parked,
// custody.bus.handler.duration and custody.bus.consumer.lag.
package bus
