// Package domain is the payouts service's money logic as pure functions
// over plain data: no clock, no I/O, no transport or storage.
//
// Two aggregates:
//
//   - Ledger (stream "orderledger-<order_id>", LedgerDecider): one order's
//     money. It captures the payment into escrow (FundsEscrowed), splits
//     each vendor part on delivery into pending shares (ReturnWindowStarted),
//     holds it while claims are open (ClaimHoldPlaced / ClaimHoldLifted),
//     releases it when the return window closes (ReturnWindowClosed,
//     FundsReleased), releases the trust reserve later (ReserveReleased),
//     refunds or claws back (RefundApplied) and returns escrow on
//     cancellation (EscrowReturned).
//   - Payouts (stream "payouts-global", PayoutsDecider): payout runs. It
//     remembers what each account was paid, so a run pays only what was
//     credited and not yet paid (PayoutBatchCreated).
//
// Every money movement is a TransactionPosted appended with the fact that
// explains it: postings on accounts ("vendor:v1:available", see
// accounts.go) that sum to zero per currency, and a transaction id derived
// from the cause's identity, so the same cause can never post twice.
// Balances are a fold of those transactions (Balances).
//
// The arithmetic (split.go): a line's commission and fee are floored to the
// minor unit and the vendor's share takes the remainder, so a split always
// adds up; a party's share of a line is always the split of the line's
// unrefunded amount, so refunds reverse exactly and a full refund in any
// number of steps gives back exactly what was split.
package domain
