package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
)

func (c *cli) shipmentsCmd(ctx, long context.Context, args []string) error {
	verb, rest, err := c.subcommand("shipments", args, "list|get|watch|ship")
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		return c.shipmentsList(ctx, rest)
	case "get":
		return c.shipmentsGet(ctx, rest)
	case "watch":
		return c.shipmentsWatch(long, rest)
	case "ship":
		return c.shipmentsShip(ctx, rest)
	}
	return fmt.Errorf("shipments: unknown verb %q (list, get, watch, ship)", verb)
}

func (c *cli) fulfilmentClient() (fulfilmentv1.FulfilmentServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return fulfilmentv1.NewFulfilmentServiceClient(conn), nil
}

func (c *cli) shipmentsList(ctx context.Context, args []string) error {
	fs := c.newFlags("shipments list", "--vendor V | --order O [flags]", "Lists fulfilments (one vendor's part of one order) with their shipments, newest first.")
	vendor := fs.String("vendor", "", "a vendor's fulfilments")
	order := fs.String("order", "", "an order's fulfilments")
	state := enumFlag(fs, "state", fulfilmentv1.FulfilmentState(0).Descriptor(), "only fulfilments in this state")
	size := fs.Int("page-size", 50, "fulfilments per page")
	token := fs.String("page-token", "", "page token from a previous list")
	all := fs.Bool("all", false, "follow every page")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *vendor == "" && *order == "" {
		fs.Usage()
		return errors.New("shipments list: --vendor or --order is required")
	}
	fc, err := c.fulfilmentClient()
	if err != nil {
		return err
	}
	out := &fulfilmentv1.ListFulfilmentsResponse{}
	req := &fulfilmentv1.ListFulfilmentsRequest{VendorId: *vendor, OrderId: *order, State: fulfilmentv1.FulfilmentState(*state), PageSize: int32(*size), PageToken: *token}
	for {
		resp, err := fc.ListFulfilments(ctx, req)
		if err != nil {
			return rpcError("ListFulfilments", err)
		}
		out.Fulfilments = append(out.Fulfilments, resp.GetFulfilments()...)
		out.NextPageToken = resp.GetNextPageToken()
		if !*all || resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if c.json {
		return c.printJSON(out)
	}
	if err := printFulfilments(c.out, out.GetFulfilments()); err != nil {
		return err
	}
	if out.GetNextPageToken() != "" {
		fmt.Fprintf(c.out, "more: --page-token %s (or --all)\n", out.GetNextPageToken())
	}
	return nil
}

// printFulfilments is the shipments table: one row per fulfilment, its
// shipments as "carrier tracking status" (scans).
func printFulfilments(w io.Writer, fs []*fulfilmentv1.Fulfilment) error {
	tw := table(w)
	row(tw, "FULFILMENT", "ORDER", "VENDOR", "STATE", "SHIP BY", "SHIPMENTS", "DELIVERED")
	for _, f := range fs {
		var ships []string
		for _, s := range f.GetShipments() {
			ships = append(ships, fmt.Sprintf("%s %s %s (%d scans)", s.GetCarrier(), s.GetTrackingNumber(), enumName(s.GetStatus()), s.GetTrackingEventCount()))
		}
		delivered := "-"
		if d := f.GetDelivery(); d != nil {
			delivered = fmtTime(d.GetDeliverTime())
			if d.GetWithProof() {
				delivered += " with proof"
			}
		}
		row(tw, f.GetFulfilmentId(), f.GetOrderId(), f.GetVendorId(), enumName(f.GetState()), fmtTime(f.GetShipByTime()), orDash(strings.Join(ships, "; ")), delivered)
	}
	return tw.Flush()
}

func (c *cli) shipmentsGet(ctx context.Context, args []string) error {
	fs := c.newFlags("shipments get", "<fulfilment>", "Shows a fulfilment with every shipment, its packages and its carrier scans.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	fc, err := c.fulfilmentClient()
	if err != nil {
		return err
	}
	resp, err := fc.GetFulfilment(ctx, &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: pos[0]})
	if err != nil {
		return rpcError("GetFulfilment", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	f := resp.GetFulfilment()
	tw := table(c.out)
	row(tw, "fulfilment", f.GetFulfilmentId())
	row(tw, "order", f.GetOrderId())
	row(tw, "vendor", f.GetVendorId())
	row(tw, "buyer", f.GetBuyerId())
	row(tw, "state", enumName(f.GetState()))
	row(tw, "requested", fmtTime(f.GetRequestTime()))
	missed := ""
	if f.GetShipByMissed() {
		missed = " (missed)"
	}
	row(tw, "ship by", fmtTime(f.GetShipByTime())+missed)
	if d := f.GetDelivery(); d != nil {
		how := "carrier scans"
		if d.GetConfirmedByBuyer() {
			how = "buyer confirmed receipt"
		}
		row(tw, "delivered", fmt.Sprintf("%s (%s, with proof: %s)", fmtTime(d.GetDeliverTime()), how, yesNo(d.GetWithProof())))
	}
	if f.GetCancelReason() != "" {
		row(tw, "cancelled", fmtTime(f.GetCancelTime())+": "+f.GetCancelReason())
	}
	var lines, unshipped []string
	for _, l := range f.GetLines() {
		lines = append(lines, fmt.Sprintf("%s %s ×%d", l.GetLineId(), l.GetSkuId(), l.GetQuantity()))
	}
	for _, l := range f.GetUnshippedLines() {
		unshipped = append(unshipped, fmt.Sprintf("%s ×%d", l.GetLineId(), l.GetQuantity()))
	}
	row(tw, "lines", strings.Join(lines, ", "))
	row(tw, "unshipped", orDash(strings.Join(unshipped, ", ")))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range f.GetShipments() {
		fmt.Fprintf(c.out, "\nshipment %s: %s %s, shipped %s, expected %s, %s\n", s.GetShipmentId(), s.GetCarrier(), s.GetTrackingNumber(),
			fmtTime(s.GetShipTime()), fmtTime(s.GetExpectedDeliveryTime()), enumName(s.GetStatus()))
		for _, p := range s.GetPackages() {
			var ls, units []string
			for _, l := range p.GetLines() {
				ls = append(ls, fmt.Sprintf("%s ×%d", l.GetLineId(), l.GetQuantity()))
			}
			for _, u := range p.GetEvidence().GetUnits() {
				id := u.GetSerialNumber()
				if id == "" {
					id = "lot " + u.GetLotNumber()
				}
				units = append(units, id)
			}
			fmt.Fprintf(c.out, "  package %s: lines %s; %d photo(s); units %s\n", p.GetPackageId(), strings.Join(ls, ", "),
				len(p.GetEvidence().GetPhotoSha256()), strings.Join(units, ", "))
		}
		if len(s.GetTrackingEvents()) == 0 {
			continue
		}
		tw := table(c.out)
		row(tw, "  SCANNED", "STATUS", "LOCATION", "CARRIER EVENT", "PROOF")
		for _, e := range s.GetTrackingEvents() {
			proof := "-"
			if p := e.GetProof(); p != nil {
				proof = "signed by " + orDash(p.GetRecipientName())
			}
			row(tw, "  "+fmtTime(e.GetOccurTime()), enumName(e.GetStatus()), orDash(e.GetLocation()), e.GetCarrierEventId(), proof)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (c *cli) shipmentsWatch(ctx context.Context, args []string) error {
	fs := c.newFlags("shipments watch", "--vendor V [--cursor C] [--count N] [--for D]",
		"Watches a vendor's fulfilments live: first a snapshot of every current one, then every\n"+
			"change. Resume after a disconnect with the last cursor printed.")
	vendor := fs.String("vendor", "", "the vendor (required)")
	cursor := fs.String("cursor", "", "resume after this cursor (no snapshot)")
	count := fs.Int("count", 0, "stop after this many changes (0: until interrupted)")
	dur := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *vendor == "" {
		fs.Usage()
		return errors.New("shipments watch: --vendor is required")
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	fc, err := c.fulfilmentClient()
	if err != nil {
		return err
	}
	stream, err := fc.WatchFulfilments(ctx, &fulfilmentv1.WatchFulfilmentsRequest{VendorId: *vendor, Cursor: *cursor})
	if err != nil {
		return rpcError("WatchFulfilments", err)
	}
	if !c.json {
		fmt.Fprintf(c.out, "%-10s %-17s %-24s %-26s %-34s %s\n", "CURSOR", "KIND", "EVENT", "FULFILMENT", "ORDER", "STATE")
	}
	changes := 0
	last := *cursor
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || (ctx.Err() != nil && (status.Code(err) == codes.Canceled || status.Code(err) == codes.DeadlineExceeded)) {
				break
			}
			if last != "" {
				fmt.Fprintf(c.errOut, "resume with: --cursor %s\n", last)
			}
			return rpcError("WatchFulfilments", err)
		}
		last = msg.GetCursor()
		if c.json {
			b, err := protojson.Marshal(msg)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, string(b))
		} else {
			f := msg.GetFulfilment()
			fmt.Fprintf(c.out, "%-10s %-17s %-24s %-26s %-34s %s\n", msg.GetCursor(), enumName(msg.GetKind()), orDash(eventName(msg.GetEventType())),
				orDash(f.GetFulfilmentId()), orDash(f.GetOrderId()), enumName(f.GetState()))
		}
		if msg.GetKind() == fulfilmentv1.WatchKind_WATCH_KIND_CHANGE {
			changes++
			if *count > 0 && changes >= *count {
				break
			}
		}
	}
	return nil
}

func (c *cli) shipmentsShip(ctx context.Context, args []string) error {
	fs := c.newFlags("shipments ship", "<fulfilment> --carrier C --tracking N --photo HEX|--photo-file F (--serial LINE:SN | --lot [LINE:]LOT)…",
		"Records that the vendor handed (part of) a fulfilment to a carrier, in one package with\n"+
			"its packing evidence: photo hashes and one unit per item packed (serial or lot number).\n"+
			"Lines default to everything not shipped yet.")
	carrier := fs.String("carrier", "", "carrier code: ups, dhl, fedex, usps, dpd, royal_mail (required)")
	tracking := fs.String("tracking", "", "tracking number (required)")
	var lines, photos, photoFiles, serials, lots listFlag
	fs.Var(&lines, "line", "order line and quantity to ship, e.g. 1:2 (repeatable; default: every unshipped line)")
	fs.Var(&photos, "photo", "SHA-256 (hex) of a packing photo (repeatable)")
	fs.Var(&photoFiles, "photo-file", "a packing photo file; its SHA-256 is sent (repeatable)")
	fs.Var(&serials, "serial", "LINE:SERIAL of one unit packed (repeatable)")
	fs.Var(&lots, "lot", "LINE:LOT of one unit packed, or LOT for every item not given a serial (repeatable)")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *carrier == "" || *tracking == "" {
		fs.Usage()
		return errors.New("shipments ship: --carrier and --tracking are required")
	}
	for _, p := range photoFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		photos = append(photos, hex.EncodeToString(sum[:]))
	}
	fc, err := c.fulfilmentClient()
	if err != nil {
		return err
	}
	var shipped []*fulfilmentv1.ShippedLine
	for _, l := range lines {
		id, q, err := splitQty(l)
		if err != nil {
			return fmt.Errorf("--line %q: %w", l, err)
		}
		shipped = append(shipped, &fulfilmentv1.ShippedLine{LineId: id, Quantity: q})
	}
	if len(shipped) == 0 {
		got, err := fc.GetFulfilment(ctx, &fulfilmentv1.GetFulfilmentRequest{FulfilmentId: pos[0]})
		if err != nil {
			return rpcError("GetFulfilment", err)
		}
		for _, l := range got.GetFulfilment().GetUnshippedLines() {
			shipped = append(shipped, &fulfilmentv1.ShippedLine{LineId: l.GetLineId(), Quantity: l.GetQuantity()})
		}
	}
	units, err := packedUnits(shipped, serials, lots)
	if err != nil {
		return err
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	resp, err := fc.ShipFulfilment(ctx, &fulfilmentv1.ShipFulfilmentRequest{
		RequestId: *reqID, FulfilmentId: pos[0], Carrier: *carrier, TrackingNumber: *tracking,
		Packages: []*fulfilmentv1.Package{{PackageId: "1", Lines: shipped, Evidence: &fulfilmentv1.PackingEvidence{PhotoSha256: photos, Units: units}}},
	})
	if err != nil {
		return rpcError("ShipFulfilment", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.out, "shipment %s recorded; fulfilment %s is %s\n", resp.GetShipmentId(), resp.GetFulfilment().GetFulfilmentId(), enumName(resp.GetFulfilment().GetState()))
	return printFulfilments(c.out, []*fulfilmentv1.Fulfilment{resp.GetFulfilment()})
}

// packedUnits builds one unit per item: serials and lots named per line,
// then a line-less lot for every item left.
func packedUnits(lines []*fulfilmentv1.ShippedLine, serials, lots []string) ([]*fulfilmentv1.PackedUnit, error) {
	var units []*fulfilmentv1.PackedUnit
	perLine := map[string]int64{}
	for _, s := range serials {
		line, sn, ok := strings.Cut(s, ":")
		if !ok || line == "" || sn == "" {
			return nil, fmt.Errorf("--serial %q: want LINE:SERIAL", s)
		}
		units = append(units, &fulfilmentv1.PackedUnit{LineId: line, SerialNumber: sn})
		perLine[line]++
	}
	var fill string
	for _, l := range lots {
		line, lot, ok := strings.Cut(l, ":")
		if !ok {
			fill = l
			continue
		}
		units = append(units, &fulfilmentv1.PackedUnit{LineId: line, LotNumber: lot})
		perLine[line]++
	}
	if fill != "" {
		for _, l := range lines {
			for range l.GetQuantity() - perLine[l.GetLineId()] {
				units = append(units, &fulfilmentv1.PackedUnit{LineId: l.GetLineId(), LotNumber: fill})
			}
		}
	}
	return units, nil
}

func (c *cli) scanCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("scan", "--carrier C --tracking N --status S [flags]",
		"Posts one carrier scan (idempotent by --event-id). A DELIVERED scan may carry proof of\n"+
			"delivery (--signed-by, --signature, --proof-photo). The time defaults to the server's clock.")
	carrier := fs.String("carrier", "", "carrier code (required)")
	tracking := fs.String("tracking", "", "tracking number (required)")
	st := enumFlag(fs, "status", fulfilmentv1.TrackingStatus(0).Descriptor(), "normalised status (required)")
	eventID := fs.String("event-id", "", "the carrier's id of the scan (default: random)")
	at := fs.String("at", "", "when the scan happened: RFC 3339, or a duration from the server's now such as -2h (default: now)")
	location := fs.String("location", "", "where")
	desc := fs.String("description", "", "the carrier's text")
	signedBy := fs.String("signed-by", "", "proof of delivery: who signed or took it")
	signature := fs.String("signature", "", "proof of delivery: SHA-256 (hex) of the signature image")
	proofPhoto := fs.String("proof-photo", "", "proof of delivery: SHA-256 (hex) of the doorstep photo")
	proofLoc := fs.String("proof-location", "", "proof of delivery: where (\"lat,lng\" or text)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *carrier == "" || *tracking == "" || *st == 0 {
		fs.Usage()
		return errors.New("scan: --carrier, --tracking and --status are required")
	}
	when := "now"
	if *at != "" {
		when = *at
	}
	occur, err := c.parseTime(ctx, when)
	if err != nil {
		return err
	}
	if *eventID == "" {
		*eventID = newRequestID()
	}
	req := &fulfilmentv1.RecordTrackingEventRequest{
		Carrier: *carrier, TrackingNumber: *tracking, CarrierEventId: *eventID, Status: fulfilmentv1.TrackingStatus(*st),
		OccurTime: timestamppb.New(occur), Location: *location, Description: *desc,
	}
	if *signedBy != "" || *signature != "" || *proofPhoto != "" || *proofLoc != "" {
		req.Proof = &fulfilmentv1.ProofOfDelivery{RecipientName: *signedBy, SignatureSha256: *signature, PhotoSha256: *proofPhoto, Location: *proofLoc}
	}
	fc, err := c.fulfilmentClient()
	if err != nil {
		return err
	}
	resp, err := fc.RecordTrackingEvent(ctx, req)
	if err != nil {
		return rpcError("RecordTrackingEvent", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	dup := ""
	if resp.GetDuplicate() {
		dup = " (duplicate: already recorded, nothing changed)"
	}
	fmt.Fprintf(c.out, "scan %s recorded%s: fulfilment %s shipment %s is %s, fulfilment %s\n", *eventID, dup,
		resp.GetFulfilmentId(), resp.GetShipmentId(), enumName(resp.GetShipmentStatus()), enumName(resp.GetFulfilmentState()))
	return nil
}
