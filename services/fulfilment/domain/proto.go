package domain

import (
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

// The events are the public contract, so their messages (ShippedLine,
// Package, ProofOfDelivery, …) are shared with the API; these convert both
// ways.

// LinesProto converts lines to their wire form.
func LinesProto(lines []Line) []*fulfilmentv1.ShippedLine {
	out := make([]*fulfilmentv1.ShippedLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, &fulfilmentv1.ShippedLine{LineId: l.LineID, SkuId: l.SKUID, Quantity: l.Quantity})
	}
	return out
}

// LinesFromProto converts lines from their wire form.
func LinesFromProto(ls []*fulfilmentv1.ShippedLine) []Line {
	out := make([]Line, 0, len(ls))
	for _, l := range ls {
		out = append(out, Line{LineID: l.GetLineId(), SKUID: l.GetSkuId(), Quantity: l.GetQuantity()})
	}
	return out
}

// PackagesProto converts packages to their wire form.
func PackagesProto(pkgs []Package) []*fulfilmentv1.Package {
	out := make([]*fulfilmentv1.Package, 0, len(pkgs))
	for _, p := range pkgs {
		ev := &fulfilmentv1.PackingEvidence{PhotoSha256: append([]string(nil), p.Photos...)}
		for _, u := range p.Units {
			ev.Units = append(ev.Units, &fulfilmentv1.PackedUnit{LineId: u.LineID, SkuId: u.SKUID, SerialNumber: u.Serial, LotNumber: u.Lot})
		}
		out = append(out, &fulfilmentv1.Package{PackageId: p.PackageID, Lines: LinesProto(p.Lines), Evidence: ev})
	}
	return out
}

// PackagesFromProto converts packages from their wire form (requests and
// events alike).
func PackagesFromProto(ps []*fulfilmentv1.Package) []Package {
	out := make([]Package, 0, len(ps))
	for _, p := range ps {
		pkg := Package{PackageID: p.GetPackageId(), Lines: LinesFromProto(p.GetLines()),
			Photos: append([]string(nil), p.GetEvidence().GetPhotoSha256()...)}
		for _, u := range p.GetEvidence().GetUnits() {
			pkg.Units = append(pkg.Units, Unit{LineID: u.GetLineId(), SKUID: u.GetSkuId(), Serial: u.GetSerialNumber(), Lot: u.GetLotNumber()})
		}
		out = append(out, pkg)
	}
	return out
}

// ProofProto converts a proof of delivery (nil: none) to its wire form.
func ProofProto(p *Proof) *fulfilmentv1.ProofOfDelivery {
	if p == nil {
		return nil
	}
	return &fulfilmentv1.ProofOfDelivery{RecipientName: p.RecipientName, SignatureSha256: p.SignatureSHA256, PhotoSha256: p.PhotoSHA256, Location: p.Location}
}

// ProofFromProto converts a proof of delivery from its wire form; an empty
// message is no proof.
func ProofFromProto(p *fulfilmentv1.ProofOfDelivery) *Proof {
	if p == nil || (p.GetRecipientName() == "" && p.GetSignatureSha256() == "" && p.GetPhotoSha256() == "" && p.GetLocation() == "") {
		return nil
	}
	return &Proof{RecipientName: p.GetRecipientName(), SignatureSHA256: p.GetSignatureSha256(), PhotoSHA256: p.GetPhotoSha256(), Location: p.GetLocation()}
}

// ScanFromProto is the scan a TrackingEventRecorded records.
func ScanFromProto(e *fulfilmentv1.TrackingEventRecorded) Scan {
	return Scan{CarrierEventID: e.GetCarrierEventId(), Status: e.GetStatus(), OccurTime: e.GetOccurTime().AsTime(),
		Location: e.GetLocation(), Description: e.GetDescription(), Proof: ProofFromProto(e.GetProof())}
}
