package app

import (
	"sync"
	"time"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/services/order/domain"
)

// claimTTL is how long a claim counts at most. Past it the units count as
// free again and orders go to the catalog, which decides; so a claim this
// process never sees settled (another process answered the order) costs
// nothing but the shortcut, and claims take bounded memory.
const claimTTL = 5 * time.Second

// stockGate refuses at once, storing nothing, an order the catalog would
// refuse or could not serve: a flash sale's late buyers are answered in a
// millisecond instead of queueing behind the hot product. It is a
// shortcut, never the rule: every order it lets through is decided by the
// catalog's reservation, which alone holds stock.
//
// From what the catalog view knows of a SKU (CatalogView.Stock) it
// refuses an order
//   - for more units than the catalog said it had when it last refused the
//     SKU (its AtMost), or, before any such refusal,
//   - whose units, added to those this process's orders have claimed since
//     units last came back (the SKU's Epoch), exceed every unit the SKU
//     ever had (its Total). Those orders are being reserved or hold their
//     units; the order could only succeed if some of them fail or are
//     cancelled. An order alone is never refused by claims: it goes to the
//     catalog for the answer.
//
// A claim is taken before OrderPlaced is stored. It is let go when placing
// fails, when the order is rejected or cancelled, when units of its SKUs
// come back (a new epoch), or after claimTTL. A confirmed order's claim
// stays: its units are held.
type stockGate struct {
	view *CatalogView

	mu      sync.Mutex
	claimed map[string]skuClaims // SKU -> units claimed in its epoch
	orders  map[string]claim     // order id -> its claim
	swept   time.Time
}

type skuClaims struct {
	epoch uint64
	units int64
}

type claim struct {
	units map[string]skuClaims // SKU -> units, with the SKU's epoch then
	at    time.Time
}

func newStockGate(view *CatalogView) *stockGate {
	return &stockGate{view: view, claimed: map[string]skuClaims{}, orders: map[string]claim{}}
}

// admit claims the order's units, or refuses the order with a
// *fault.PreconditionError (domain.ReasonOutOfStock).
func (g *stockGate) admit(orderID string, lines []domain.Line) error {
	want := map[string]skuClaims{}
	for _, l := range lines {
		c := want[l.SKUID]
		c.units += l.Quantity
		want[l.SKUID] = c
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.orders[orderID]; ok {
		return nil // a repeat: its claim stands
	}
	now := time.Now() // claims are this process's, on its own clock
	if now.Sub(g.swept) > time.Second {
		g.sweep(now)
	}
	for sku, w := range want {
		st := g.view.Stock(sku)
		if !st.Known {
			continue
		}
		w.epoch = st.Epoch
		want[sku] = w
		if st.Refused {
			// The bound may already count the units of orders claimed
			// here: claims do not add to it.
			if w.units > st.AtMost {
				return fault.Precondition(domain.ReasonOutOfStock, "sku %s: %d requested, at most %d available",
					sku, w.units, st.AtMost)
			}
			continue
		}
		c := g.claimed[sku]
		if c.epoch == st.Epoch && c.units > 0 && c.units+w.units > st.Total {
			return fault.Precondition(domain.ReasonOutOfStock,
				"sku %s: %d requested, but orders being reserved or confirmed already take its %d unit(s)", sku, w.units, st.Total)
		}
	}
	for sku, w := range want {
		c := g.claimed[sku]
		if c.epoch != w.epoch {
			c = skuClaims{epoch: w.epoch}
		}
		c.units += w.units
		g.claimed[sku] = c
	}
	g.orders[orderID] = claim{units: want, at: now}
	return nil
}

// settle lets go of the order's claim, if any.
func (g *stockGate) settle(orderID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release(orderID)
}

func (g *stockGate) release(orderID string) {
	cl, ok := g.orders[orderID]
	if !ok {
		return
	}
	delete(g.orders, orderID)
	for sku, w := range cl.units {
		c, ok := g.claimed[sku]
		if !ok || c.epoch != w.epoch {
			continue // counted in an epoch that has ended
		}
		if c.units -= w.units; c.units <= 0 {
			delete(g.claimed, sku)
		} else {
			g.claimed[sku] = c
		}
	}
}

func (g *stockGate) sweep(now time.Time) {
	g.swept = now
	for id, c := range g.orders {
		if now.Sub(c.at) > claimTTL {
			g.release(id)
		}
	}
}
