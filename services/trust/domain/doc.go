// Package domain is the trust service's decision logic as pure functions
// over plain data: no clock, no I/O, no transport or storage.
//
// Three things live here:
//
//   - The custody record (Records, Record): what the order and fulfilment
//     services recorded about one vendor's part of an order — lines and
//     prices, what was packed (serials), every carrier scan, delivery with
//     or without proof — each fact with the id of the event that carries
//     it. Records folds upstream events; it is the input of every automatic
//     decision.
//   - The claims of an order (Case, aggregate "claims-<order_id>"): every
//     claim on the order with its assessment, the vendor's response,
//     escalation, decision, return and refunds, plus the order's refund
//     ledger (captured, refunded so far, per line). Keeping claims and
//     refunds of one order in one aggregate makes "a unit in one open claim"
//     and "never refund more than was captured" checks on one consistent
//     state, serialised by the command handler and guarded by optimistic
//     concurrency across processes.
//   - Vendor trust (VendorTrust, aggregate "vendortrust-<vendor>"): counts
//     of the vendor's own history and the score and tier computed from them
//     by the pure function Score.
//
// Bad input comes back as *fault.InvalidError with AIP field paths, a
// transition the state forbids as *PreconditionError with a stable reason,
// a missing claim or order as *NotFoundError.
package domain
