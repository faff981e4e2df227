// Package domain is the audit service's logic as pure functions and data
// structures: no clock, no I/O, no transport or storage. The audit service
// reads every other service's events; it owns two small aggregates of its
// own: a parked event handed back (redrive.go) and a buyer's erasure
// (erasure.go).
//
//   - Index (index.go) files every event of every service's store under the
//     order it belongs to. Events are linked to orders generically, with
//     proto reflection over their top-level fields (links.go): an order_id
//     field names the order; otherwise a fulfilment_id, claim_id or
//     return_id that an earlier (or later) event tied to an order; otherwise
//     a stream named after such an id ("fulfilment-<id>", "claims-<order>").
//     Events of types this binary does not know are indexed too, by stream.
//   - Timeline order, keyset page tokens and the rendering of a stored
//     event as JSON with its hash-chain link, its personal fields revealed
//     by the function the caller gives (timeline.go).
//   - CheckStream and Verify (verify.go) turn a stream's history, as re-read
//     from the store, into a verdict: intact, or the first broken link.
//   - Replay (replay.go) folds an order's streams up to a moment with the
//     owning services' own deciders (order, fulfilment, trust's claims,
//     payouts' order ledger) — never a second implementation of their rules
//     — and MoneyOf (money.go) sums the order's ledger transactions into
//     captured / escrow / pending / held / released / refunded.
package domain
