package domain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	sha256Pattern    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	packageIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// MaxUnitID bounds serial and lot numbers.
const MaxUnitID = 128

// NormaliseHash lower-cases a hex hash and trims spaces.
func NormaliseHash(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckHash checks a SHA-256 hex hash (after NormaliseHash).
func CheckHash(v *Violations, field, h string) {
	if !sha256Pattern.MatchString(h) {
		v.Add(field, "not a SHA-256 hash: want 64 hexadecimal characters")
	}
}

// resolve finds the fulfilment's line a request names by line id, SKU id or
// both; the description says why it names none.
func (f Fulfilment) resolve(lineID, skuID string) (Line, string, bool) {
	switch {
	case lineID == "" && skuID == "":
		return Line{}, "name the line by line_id or sku_id", false
	case lineID != "":
		for _, l := range f.Lines {
			if l.LineID == lineID {
				if skuID != "" && skuID != l.SKUID {
					return Line{}, fmt.Sprintf("line %q is SKU %q, not %q", lineID, l.SKUID, skuID), false
				}
				return l, "", true
			}
		}
		return Line{}, fmt.Sprintf("line %q is not in this fulfilment (its lines: %s)", lineID, f.lineList()), false
	}
	for _, l := range f.Lines {
		if l.SKUID == skuID {
			return l, "", true
		}
	}
	return Line{}, fmt.Sprintf("SKU %q is not in this fulfilment (its lines: %s)", skuID, f.lineList()), false
}

func (f Fulfilment) lineList() string {
	parts := make([]string, 0, len(f.Lines))
	for _, l := range f.Lines {
		parts = append(parts, fmt.Sprintf("%s = %s × %d", l.LineID, l.SKUID, l.Quantity))
	}
	return strings.Join(parts, ", ")
}

// CheckShipment checks a shipment's packages against the fulfilment: every
// line named is one of its lines, no line is shipped beyond what was
// ordered (counting earlier shipments), every package has packing photos
// and lists one unit (with a serial or lot number) per item packed, and no
// serial number of a SKU is packed twice. It returns the packages with
// lines and units resolved (line id and SKU id both set, hashes
// normalised, package ids assigned "1", "2", … where missing) and the
// shipment's lines (sum over packages, in the fulfilment's line order).
func CheckShipment(f Fulfilment, pkgs []Package) ([]Package, []Line, Violations) {
	var v Violations
	switch {
	case len(pkgs) == 0:
		v.Add("packages", "a shipment has at least one package")
		return nil, nil, v
	case len(pkgs) > MaxPackages:
		v.Add("packages", "at most %d packages per shipment, got %d", MaxPackages, len(pkgs))
		return nil, nil, v
	}
	type serialKey struct{ sku, serial string }
	serials := map[serialKey]string{}
	for _, s := range f.Shipments {
		for _, p := range s.Packages {
			for _, u := range p.Units {
				if u.Serial != "" {
					serials[serialKey{u.SKUID, u.Serial}] = "shipment " + s.ID
				}
			}
		}
	}
	total := map[string]int64{}
	lastRef := map[string]string{} // line id -> field of its last mention, for over-shipping
	packageIDs := map[string]int{}
	out := make([]Package, 0, len(pkgs))
	for i, p := range pkgs {
		pf := fmt.Sprintf("packages[%d]", i)
		rp := Package{PackageID: p.PackageID}
		if rp.PackageID == "" {
			rp.PackageID = strconv.Itoa(i + 1)
		}
		if !packageIDPattern.MatchString(rp.PackageID) {
			v.Add(pf+".package_id", "1-64 characters of letters, digits, '.', '_' and '-'")
		} else if j, dup := packageIDs[rp.PackageID]; dup {
			v.Add(pf+".package_id", "package id %q repeats packages[%d]", rp.PackageID, j)
		} else {
			packageIDs[rp.PackageID] = i
		}

		inPackage := map[string]int64{}
		if len(p.Lines) == 0 {
			v.Add(pf+".lines", "a package holds at least one line")
		}
		for j, l := range p.Lines {
			lf := fmt.Sprintf("%s.lines[%d]", pf, j)
			line, why, ok := f.resolve(l.LineID, l.SKUID)
			if !ok {
				field := lf + ".line_id"
				if l.LineID == "" && l.SKUID != "" {
					field = lf + ".sku_id"
				}
				v.Add(field, "%s", why)
				continue
			}
			if _, dup := inPackage[line.LineID]; dup {
				v.Add(lf, "line %q is listed twice in this package; list it once with the total quantity", line.LineID)
				continue
			}
			if l.Quantity <= 0 {
				v.Add(lf+".quantity", "must be at least 1, got %d", l.Quantity)
				continue
			}
			inPackage[line.LineID] = l.Quantity
			total[line.LineID] += l.Quantity
			lastRef[line.LineID] = lf + ".quantity"
			rp.Lines = append(rp.Lines, Line{LineID: line.LineID, SKUID: line.SKUID, Quantity: l.Quantity})
		}

		ef := pf + ".evidence"
		switch {
		case len(p.Photos) == 0:
			v.Add(ef+".photo_sha256", "at least one packing photo hash is required")
		case len(p.Photos) > MaxPhotos:
			v.Add(ef+".photo_sha256", "at most %d photos per package", MaxPhotos)
		}
		for k, h := range p.Photos {
			h = NormaliseHash(h)
			CheckHash(&v, fmt.Sprintf("%s.photo_sha256[%d]", ef, k), h)
			rp.Photos = append(rp.Photos, h)
		}

		units := map[string]int64{}
		for k, u := range p.Units {
			uf := fmt.Sprintf("%s.units[%d]", ef, k)
			line, why, ok := f.resolve(u.LineID, u.SKUID)
			switch {
			case !ok:
				v.Add(uf+".line_id", "%s", why)
				continue
			case inPackage[line.LineID] == 0:
				v.Add(uf+".line_id", "line %q is not in this package", line.LineID)
				continue
			}
			serial, lot := strings.TrimSpace(u.Serial), strings.TrimSpace(u.Lot)
			switch {
			case serial == "" && lot == "":
				v.Add(uf, "give the unit's serial_number or lot_number")
				continue
			case len(serial) > MaxUnitID:
				v.Add(uf+".serial_number", "at most %d characters", MaxUnitID)
				continue
			case len(lot) > MaxUnitID:
				v.Add(uf+".lot_number", "at most %d characters", MaxUnitID)
				continue
			}
			if serial != "" {
				key := serialKey{line.SKUID, serial}
				if where, dup := serials[key]; dup {
					v.Add(uf+".serial_number", "serial number %q of SKU %s is already packed (%s)", serial, line.SKUID, where)
					continue
				}
				serials[key] = uf
			}
			units[line.LineID]++
			rp.Units = append(rp.Units, Unit{LineID: line.LineID, SKUID: line.SKUID, Serial: serial, Lot: lot})
		}
		for _, l := range rp.Lines {
			if n := units[l.LineID]; n != l.Quantity {
				v.Add(ef+".units", "line %s: %d units listed for %d packed; list one unit (serial or lot number) per item", l.LineID, n, l.Quantity)
			}
		}
		out = append(out, rp)
	}

	shipped := f.Shipped()
	var lines []Line
	for _, l := range f.Lines {
		n := total[l.LineID]
		if n == 0 {
			continue
		}
		if shipped[l.LineID]+n > l.Quantity {
			v.Add(lastRef[l.LineID], "line %s (SKU %s): %d ordered, %d shipped before, %d in this shipment", l.LineID, l.SKUID, l.Quantity, shipped[l.LineID], n)
		}
		lines = append(lines, Line{LineID: l.LineID, SKUID: l.SKUID, Quantity: n})
	}
	if len(v) > 0 {
		return nil, nil, v
	}
	return out, lines, nil
}

// CheckScan checks a carrier scan: a carrier event id, a known status, an
// occur time not beyond now + MaxClockSkew, and proof of delivery only on
// DELIVERED (with at least a recipient, a signature or a photo, hashes as
// SHA-256 hex). Field names are those of RecordTrackingEventRequest.
func CheckScan(s Scan, now time.Time) Violations {
	var v Violations
	switch {
	case strings.TrimSpace(s.CarrierEventID) == "":
		v.Add("carrier_event_id", "required: the carrier's id of the scan")
	case len(s.CarrierEventID) > MaxText:
		v.Add("carrier_event_id", "at most %d characters", MaxText)
	}
	if !KnownStatus(s.Status) {
		v.Add("status", "unknown tracking status %d: want INFO_RECEIVED, PICKED_UP, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERY_ATTEMPTED, DELIVERED, EXCEPTION, RETURNED_TO_SENDER or LOST", s.Status)
	}
	switch {
	case s.OccurTime.IsZero():
		v.Add("occur_time", "required: when the scan happened")
	case !now.IsZero() && s.OccurTime.After(now.Add(MaxClockSkew)):
		v.Add("occur_time", "%s is in the future (now %s)", s.OccurTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if len(s.Location) > MaxText {
		v.Add("location", "at most %d characters", MaxText)
	}
	if len(s.Description) > 1024 {
		v.Add("description", "at most 1024 characters")
	}
	if p := s.Proof; p != nil {
		if s.Status != Delivered {
			v.Add("proof", "only DELIVERED scans carry proof of delivery")
		}
		if p.RecipientName == "" && p.SignatureSHA256 == "" && p.PhotoSHA256 == "" {
			v.Add("proof", "proof of delivery needs a recipient_name, a signature_sha256 or a photo_sha256")
		}
		if p.SignatureSHA256 != "" {
			CheckHash(&v, "proof.signature_sha256", p.SignatureSHA256)
		}
		if p.PhotoSHA256 != "" {
			CheckHash(&v, "proof.photo_sha256", p.PhotoSHA256)
		}
		if len(p.RecipientName) > MaxText {
			v.Add("proof.recipient_name", "at most %d characters", MaxText)
		}
		if len(p.Location) > MaxText {
			v.Add("proof.location", "at most %d characters", MaxText)
		}
	}
	return v
}
