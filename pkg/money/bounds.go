package money

// Bounds on the amounts and quantities a request may carry: what a real
// marketplace accepts, and small enough that nothing computed about one
// order comes near the int64 limit. They live here, once, because several
// edges check them (the catalog takes prices, the order quantities and the
// payment, trust refund amounts and claimed quantities, fulfilment shipped
// quantities) and because it is their product that keeps an order exact.
//
// The arithmetic, with int64 holding at most 9.22 × 10^18 minor units:
//
//	line total    ≤ MaxUnitPrice × MaxLineQuantity = 10^11 × 10^3 = 10^14
//	order total   ≤ MaxOrderLines × line total      = 10^2 × 10^14 = 10^16 = MaxAmount
//	splits        commission, merchant fee and vendor share of a line are
//	              each at most the line (BasisPoints multiplies in 128 bits
//	              and rates are at most 10000 bps) and add up to it exactly,
//	              so a part's or an order's shares sum to at most 10^16
//	refunds       at most what was captured, 10^16; captured + refunded
//	              ≤ 2 × 10^16
//
// So one order stays about 900 times below the limit. Sums over many
// orders — a vendor's balance, the platform's fees, a payout batch — are
// not bounded by this: they use the checked AddMinor / SubMinor and refuse
// with ErrOverflow what would not fit, never wrapping.
const (
	// MaxUnitPrice is the highest unit price of a SKU, in minor units:
	// 10^11 is a billion in a two-decimal currency, and still about
	// USD 60,000 in IDR (two decimals by ISO 4217, ~16,000 to the dollar).
	MaxUnitPrice = 100_000_000_000
	// MaxLineQuantity is the most units of one SKU in one order line, and
	// so in any claim on it or package of it: a retail order, not a
	// wholesale one.
	MaxLineQuantity = 1_000
	// MaxOrderLines is the most lines one order has.
	MaxOrderLines = 100
	// MaxAmount is the largest amount one request may carry (a payment
	// authorisation, a refund, an offer): the largest order total, 10^16.
	MaxAmount = MaxUnitPrice * MaxLineQuantity * MaxOrderLines
)
