package domain

import (
	"fmt"
	"time"
)

// DefaultAttributionWindow is how long a touch (following an affiliate link,
// watching a live session) earns a creator commission on later orders.
const DefaultAttributionWindow = 7 * 24 * time.Hour

// ClockSkew is how far apart the catalog's clock and ours may be: a product
// pinned "just now" by another process whose clock runs slightly ahead must
// still count for an order placed right after. It is tolerance only; the
// window itself is exact.
const ClockSkew = 5 * time.Second

// Link is an affiliate link as the catalog created it.
type Link struct {
	LinkID        string
	CreatorID     string
	ProductID     string
	CommissionBps int32
}

// Pin is one stretch of time a product was pinned in a live session, at the
// commission rate fixed when it was pinned. A zero Until means it is still
// pinned.
type Pin struct {
	ProductID     string
	CommissionBps int32
	From          time.Time
	Until         time.Time
}

// Session is a creator's live session and the pins it had.
type Session struct {
	SessionID string
	CreatorID string
	StartTime time.Time
	Pins      []Pin
}

// checkTouch defaults the touch time to the order time and checks it lies
// in [orderTime - window, orderTime].
func checkTouch(touch, orderTime time.Time, window time.Duration, v *Violations) time.Time {
	if touch.IsZero() {
		return orderTime
	}
	switch {
	case touch.After(orderTime.Add(ClockSkew)):
		v.Add("attribution.touch_time", "%s is after the order time %s", stamp(touch), stamp(orderTime))
	case touch.Before(orderTime.Add(-window)):
		v.Add("attribution.touch_time", "%s is more than the attribution window (%s) before the order time %s", stamp(touch), window, stamp(orderTime))
	}
	return touch
}

// AttributeToLink credits the link's creator with the lines of the link's
// product, at the link's fixed rate. The touch (zero: the order time) must
// lie within window before orderTime, and the order must contain the
// link's product. It returns new lines; the input is not changed.
func AttributeToLink(lines []Line, link Link, touch, orderTime time.Time, window time.Duration) ([]Line, *Attribution, Violations) {
	var v Violations
	touch = checkTouch(touch, orderTime, window, &v)
	out := append([]Line(nil), lines...)
	n := 0
	for i := range out {
		if out[i].ProductID == link.ProductID {
			out[i].CreatorID, out[i].CommissionBps = link.CreatorID, link.CommissionBps
			n++
		}
	}
	if n == 0 {
		v.Add("attribution.affiliate_link_id", "link %q is for product %q, which is not in this order", link.LinkID, link.ProductID)
	}
	if len(v) > 0 {
		return nil, nil, v
	}
	return out, &Attribution{AffiliateLinkID: link.LinkID, CreatorID: link.CreatorID, TouchTime: touch}, nil
}

// AttributeToSession credits the session's creator with every line whose
// product was pinned in the session at some moment within
// [touch - window, orderTime], at the rate of the latest such pin. The touch
// (zero: the order time) must lie within window before orderTime and not
// before the session started; at least one line must qualify.
func AttributeToSession(lines []Line, s Session, touch, orderTime time.Time, window time.Duration) ([]Line, *Attribution, Violations) {
	var v Violations
	touch = checkTouch(touch, orderTime, window, &v)
	if len(v) == 0 && touch.Before(s.StartTime.Add(-ClockSkew)) {
		v.Add("attribution.touch_time", "%s is before live session %q started (%s)", stamp(touch), s.SessionID, stamp(s.StartTime))
	}
	if len(v) > 0 {
		return nil, nil, v
	}
	from, to := touch.Add(-window), orderTime.Add(ClockSkew)
	out := append([]Line(nil), lines...)
	n := 0
	for i := range out {
		if pin, ok := PinnedWithin(s.Pins, out[i].ProductID, from, to); ok {
			out[i].CreatorID, out[i].CommissionBps = s.CreatorID, pin.CommissionBps
			n++
		}
	}
	if n == 0 {
		v.Add("attribution.live_session_id", "no product of this order was pinned in live session %q between %s and %s", s.SessionID, stamp(from), stamp(orderTime))
		return nil, nil, v
	}
	return out, &Attribution{LiveSessionID: s.SessionID, CreatorID: s.CreatorID, TouchTime: touch}, nil
}

// PinnedWithin returns the latest pin of product that overlaps [from, to]:
// pinned no later than to, and not unpinned before from.
func PinnedWithin(pins []Pin, productID string, from, to time.Time) (Pin, bool) {
	var best Pin
	found := false
	for _, p := range pins {
		if p.ProductID != productID || p.From.After(to) || (!p.Until.IsZero() && p.Until.Before(from)) {
			continue
		}
		if !found || p.From.After(best.From) {
			best, found = p, true
		}
	}
	return best, found
}

func stamp(t time.Time) string { return fmt.Sprint(t.UTC().Format(time.RFC3339)) }
