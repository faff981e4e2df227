package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custody/custody/pkg/fault"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// FallbackTransit stands in for a shipment's expected delivery when the
// fulfilment service recorded none: ship time plus a week.
const FallbackTransit = 7 * 24 * time.Hour

// Assessment is what the custody record says about a claim, and what
// happens next because of it.
type Assessment struct {
	// Outcome is one of the Outcome* constants.
	Outcome string
	// Finding says what the record shows, in words.
	Finding string
	// ReliedOn are the ids of the events the assessment rests on.
	ReliedOn []string
	// Matched and Unmatched are the claimed serials found (or not) among
	// the serials packed for the claimed lines.
	Matched, Unmatched []string
	// Escalation is the reason given to support when Outcome is
	// OutcomeToSupport.
	Escalation string
}

// delivery is what the record says about one shipment's delivery.
type delivery struct {
	state    shipState
	at       time.Time // delivered, failed, or expected
	proof    bool
	byBuyer  bool
	reliedOn []string
}

type shipState int

const (
	inTransit shipState = iota
	failed
	delivered
)

// deliveryOf reads one shipment's delivery from the record: the
// fulfilment delivered (FulfilmentDelivered), else the shipment's own
// DELIVERED scans, else the buyer's receipt confirmation; a failure (lost,
// returned to sender); or still in transit, expected by its expected
// delivery. Proof is the carrier's (on the delivery or on a scan) or the
// buyer's own confirmation.
func deliveryOf(f *Fulfilment, s *Shipment) delivery {
	scans := s.deliveredScans()
	var d delivery
	switch {
	case f.Delivery != nil:
		d = delivery{state: delivered, at: f.Delivery.Time, proof: f.Delivery.WithProof || f.Delivery.ByBuyer,
			byBuyer: f.Delivery.ByBuyer, reliedOn: []string{f.Delivery.EventID}}
	case len(scans) > 0:
		d = delivery{state: delivered, at: scans[0].OccurTime}
	case f.Receipt != nil:
		return delivery{state: delivered, at: f.Receipt.Time, proof: true, byBuyer: true, reliedOn: []string{f.Receipt.EventID}}
	case s.Failure != nil:
		return delivery{state: failed, at: s.Failure.Time, reliedOn: []string{s.Failure.EventID}}
	default:
		expected := s.ExpectedDelivery
		if expected.IsZero() {
			expected = s.ShipTime.Add(FallbackTransit)
		}
		return delivery{state: inTransit, at: expected}
	}
	for _, sc := range scans {
		d.proof = d.proof || sc.WithProof
		if f.Delivery == nil && sc.OccurTime.Before(d.at) {
			d.at = sc.OccurTime
		}
		d.reliedOn = append(d.reliedOn, sc.EventID)
	}
	if f.Receipt != nil {
		d.proof, d.byBuyer = true, true
		d.reliedOn = append(d.reliedOn, f.Receipt.EventID)
	}
	return d
}

// assess checks that the claim may be opened now (windows, delivery) and
// assesses it against the record. lines are the validated claim lines.
func assess(reason trustv1.ClaimReason, lines []ClaimLine, ev *trustv1.Evidence, rec Record, now time.Time, p Policy) (Assessment, error) {
	f := rec.Fulfilment
	var ships []*Shipment
	for _, l := range lines {
		found := false
		for i := range f.Shipments {
			if f.Shipments[i].carries(l.LineID) {
				found = true
				if !slices.Contains(ships, &f.Shipments[i]) {
					ships = append(ships, &f.Shipments[i])
				}
			}
		}
		if !found {
			return Assessment{}, fault.Precondition(ReasonNotShipped, "line %s has not shipped yet; nothing can be claimed on it before it ships", l.LineID)
		}
	}
	if reason == trustv1.ClaimReason_CLAIM_REASON_NOT_RECEIVED {
		return assessNotReceived(f, ships, now, p)
	}
	return assessItem(reason, lines, ev, f, ships, now, p)
}

func assessNotReceived(f *Fulfilment, ships []*Shipment, now time.Time, p Policy) (Assessment, error) {
	var withProof, noProof, missing []*Shipment
	var lastDelivered, lastDue time.Time
	var proofRefs, deliveredRefs, missingRefs []string
	byBuyer := false
	for _, s := range ships {
		d := deliveryOf(f, s)
		switch d.state {
		case delivered:
			lastDelivered = later(lastDelivered, d.at)
			if d.proof {
				withProof = append(withProof, s)
				proofRefs = appendNew(proofRefs, d.reliedOn...)
				byBuyer = byBuyer || d.byBuyer
			} else {
				noProof = append(noProof, s)
				deliveredRefs = appendNew(deliveredRefs, d.reliedOn...)
			}
		case failed:
			missing = append(missing, s)
			lastDue = later(lastDue, d.at)
			missingRefs = appendNew(missingRefs, s.EventID)
			missingRefs = appendNew(missingRefs, s.scanIDs()...)
			missingRefs = appendNew(missingRefs, d.reliedOn...)
		default:
			due := d.at.Add(p.NotReceivedGrace)
			if now.Before(due) {
				return Assessment{}, fault.Precondition(ReasonTooEarly,
					"shipment %s (%s %s) is expected by %s; a not-received claim can be opened from %s",
					s.ShipmentID, s.Carrier, s.TrackingNumber, stamp(d.at), stamp(due))
			}
			missing = append(missing, s)
			lastDue = later(lastDue, due)
			missingRefs = appendNew(missingRefs, s.EventID)
			missingRefs = appendNew(missingRefs, s.scanIDs()...)
		}
	}
	switch {
	case len(withProof) > 0:
		if err := checkWindow(lastDelivered, p.ClaimWindow, now, "delivery"); err != nil {
			return Assessment{}, err
		}
		what := "the carrier recorded delivery with proof"
		if byBuyer {
			what = "the buyer confirmed receipt"
		}
		finding := fmt.Sprintf("%s of shipment %s at %s", what, shipmentNames(withProof), stamp(lastDelivered))
		if len(missing)+len(noProof) > 0 {
			finding += fmt.Sprintf("; shipment %s has no delivery with proof", shipmentNames(append(slices.Clone(missing), noProof...)))
		}
		refs := appendNew(slices.Clone(proofRefs), deliveredRefs...)
		refs = appendNew(refs, missingRefs...)
		return Assessment{Outcome: OutcomeToSupport, Finding: finding, ReliedOn: refs,
			Escalation: "not-received claim against a delivery with proof (" + what + ")"}, nil
	case len(noProof) > 0:
		if err := checkWindow(lastDelivered, p.ClaimWindow, now, "delivery"); err != nil {
			return Assessment{}, err
		}
		finding := fmt.Sprintf("shipment %s was scanned DELIVERED at %s without proof of delivery", shipmentNames(noProof), stamp(lastDelivered))
		if len(missing) > 0 {
			finding += fmt.Sprintf("; shipment %s was never scanned delivered", shipmentNames(missing))
		}
		return Assessment{Outcome: OutcomeAwaitVendor, Finding: finding + "; the vendor may refund or contest",
			ReliedOn: appendNew(deliveredRefs, missingRefs...)}, nil
	}
	if err := checkWindow(lastDue, p.ClaimWindow, now, "expected delivery"); err != nil {
		return Assessment{}, err
	}
	var parts []string
	for _, s := range missing {
		d := deliveryOf(f, s)
		if d.state == failed {
			parts = append(parts, fmt.Sprintf("shipment %s (%s %s) failed: %s at %s", s.ShipmentID, s.Carrier, s.TrackingNumber,
				statusName(s.Failure.Status), stamp(d.at)))
			continue
		}
		last := "no carrier scan at all"
		if n := len(s.Scans); n > 0 {
			sc := s.Scans[0]
			for _, x := range s.Scans[1:] {
				if x.OccurTime.After(sc.OccurTime) {
					sc = x
				}
			}
			last = fmt.Sprintf("last scan %s at %s", statusName(sc.Status), stamp(sc.OccurTime))
		}
		parts = append(parts, fmt.Sprintf("shipment %s (%s %s) expected by %s: no DELIVERED scan, %s",
			s.ShipmentID, s.Carrier, s.TrackingNumber, stamp(d.at), last))
	}
	return Assessment{Outcome: OutcomeAutoRefund, Finding: strings.Join(parts, "; "), ReliedOn: missingRefs}, nil
}

func assessItem(reason trustv1.ClaimReason, lines []ClaimLine, ev *trustv1.Evidence, f *Fulfilment, ships []*Shipment, now time.Time, p Policy) (Assessment, error) {
	var lastDelivered time.Time
	var refs []string
	proof := true
	for _, s := range ships {
		d := deliveryOf(f, s)
		if d.state != delivered {
			hint := fmt.Sprintf("it is expected by %s; if it does not arrive, claim NOT_RECEIVED from then", stamp(d.at))
			if d.state == failed {
				hint = "it failed in transit (" + statusName(s.Failure.Status) + "): claim NOT_RECEIVED"
			}
			return Assessment{}, fault.Precondition(ReasonNotDelivered, "shipment %s has not been delivered; %s", s.ShipmentID, hint)
		}
		lastDelivered = later(lastDelivered, d.at)
		proof = proof && d.proof
		refs = appendNew(refs, d.reliedOn...)
	}
	window := p.ClaimWindow
	if reason == trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND {
		window = p.ChangedMindWindow
	}
	if err := checkWindow(lastDelivered, window, now, "delivery"); err != nil {
		return Assessment{}, err
	}
	delivered := fmt.Sprintf("delivered at %s", stamp(lastDelivered))
	if proof {
		delivered += " with proof"
	} else {
		delivered += " without proof"
	}
	a := Assessment{Outcome: OutcomeAwaitVendor}
	switch reason {
	case trustv1.ClaimReason_CLAIM_REASON_CHANGED_MIND:
		a.Outcome = OutcomeReturn
		a.Finding = fmt.Sprintf("%s; a change of mind within %s of delivery is returned for a refund", delivered, days(window))
		a.ReliedOn = refs
		return a, nil
	case trustv1.ClaimReason_CLAIM_REASON_DAMAGED:
		photos := 0
		var shipped []string
		for _, s := range ships {
			photos += s.Photos
			shipped = append(shipped, s.EventID)
		}
		a.Finding = fmt.Sprintf("%s; the vendor recorded %d packing photo(s)", delivered, photos)
		a.ReliedOn = appendNew(shipped, refs...)
		return a, nil
	}
	// Counterfeit, wrong item, not as described: compare serials.
	check, shipped := compareSerials(lines, ev.GetSerialNumbers(), ships)
	a.Matched, a.Unmatched = check.matched, check.unmatched
	a.Finding = delivered + "; " + check.finding
	a.ReliedOn = appendNew(shipped, refs...)
	if reason == trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT {
		a.Outcome = OutcomeToSupport
		a.Escalation = "counterfeit claim: " + check.finding
	}
	return a, nil
}

type serialCheck struct {
	matched, unmatched []string
	finding            string
}

// compareSerials compares the claimed serials with the serials the vendor
// recorded packing for the claimed lines. It returns the ids of the
// FulfilmentShipped events whose packing evidence it read.
func compareSerials(lines []ClaimLine, claimed []string, ships []*Shipment) (serialCheck, []string) {
	packed := map[string]bool{}
	var shipped []string
	for _, s := range ships {
		shipped = append(shipped, s.EventID)
		for _, u := range s.Units {
			if u.SerialNumber == "" {
				continue
			}
			if u.LineID == "" || slices.ContainsFunc(lines, func(l ClaimLine) bool { return l.LineID == u.LineID }) {
				packed[normSerial(u.SerialNumber)] = true
			}
		}
	}
	var c serialCheck
	for _, sn := range claimed {
		if packed[normSerial(sn)] {
			c.matched = append(c.matched, sn)
		} else {
			c.unmatched = append(c.unmatched, sn)
		}
	}
	switch {
	case len(claimed) == 0:
		c.finding = fmt.Sprintf("no serial numbers were given; the vendor recorded %d serial(s) packed for these lines", len(packed))
	case len(packed) == 0:
		c.finding = fmt.Sprintf("the vendor recorded no serial numbers when packing these lines; serial(s) %s cannot be matched", strings.Join(claimed, ", "))
	case len(c.unmatched) > 0:
		c.finding = fmt.Sprintf("serial(s) %s are not among the %d serial(s) the vendor recorded packing for these lines",
			strings.Join(c.unmatched, ", "), len(packed))
		if len(c.matched) > 0 {
			c.finding += fmt.Sprintf(" (serial(s) %s are)", strings.Join(c.matched, ", "))
		}
	default:
		c.finding = fmt.Sprintf("serial(s) %s match the packing evidence: the vendor packed these units", strings.Join(c.matched, ", "))
	}
	return c, shipped
}

func normSerial(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

func checkWindow(from time.Time, window time.Duration, now time.Time, what string) error {
	if end := from.Add(window); now.After(end) {
		return fault.Precondition(ReasonWindowClosed, "the claim window closed at %s (%s after %s at %s)", stamp(end), days(window), what, stamp(from))
	}
	return nil
}

func shipmentNames(ss []*Shipment) string {
	names := make([]string, 0, len(ss))
	for _, s := range ss {
		names = append(names, s.ShipmentID)
	}
	return strings.Join(names, ", ")
}

func statusName(s fulfilmentv1.TrackingStatus) string {
	return strings.TrimPrefix(s.String(), "TRACKING_STATUS_")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// appendNew appends the ids not already in list (keeping order).
func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if id != "" && !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}
