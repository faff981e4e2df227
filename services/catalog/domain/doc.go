// Package domain is the catalog's business logic as pure event-sourced
// aggregates, each an es.Decider: initial state, Decide(state, command) ->
// events | error, Evolve(state, event) -> state. Nothing here does I/O or
// reads a clock: commands carry the time (Now) and the ids they need.
//
// Aggregates (stream "<aggregate>-<id>" in the catalog's event store):
//
//   - vendor-<vendor_id>: a seller (Vendors).
//   - product-<product_id>: a product, its SKUs and their stock ledger
//     (available / reserved / sold), and the holds of the orders that still
//     hold or may restock stock (Products). A product decides each order
//     once, under the order's decision id (DecisionID), which the handler
//     applies once whatever event asks: that keeps the reservation saga
//     safe under redelivery, replay and cancellations that overtake their
//     order, and lets the product drop the hold of an order that finished.
//   - link-<link_id>: a creator's affiliate link with its commission fixed at
//     creation (Links).
//   - session-<session_id>: a creator's livestream with its pin history
//     (Sessions).
//   - reservation-<order_id>: the per-order outcome of reserving stock —
//     requested, reserved, failed, cancelled or released (Reservations).
//     Cancelling a reservation the catalog has not seen yet records the
//     cancellation, so a late OrderPlaced reserves nothing.
//
// Errors are the kinds every service shares (pkg/fault: NotFoundError,
// ExistsError, RuleError, ValidationError, under the catalog's names) plus
// the catalog's own InsufficientStockError, so the gRPC edge maps them to
// codes in one place (pkg/apierr).
package domain
