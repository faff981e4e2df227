package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
)

func (c *cli) auditClient() (auditv1.AuditServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return auditv1.NewAuditServiceClient(conn), nil
}

// fetchTimeline reads every page of an order's timeline, showing progress
// on w when there is more than one page.
func fetchTimeline(ctx context.Context, ac auditv1.AuditServiceClient, orderID string, w io.Writer) (*auditv1.GetOrderTimelineResponse, error) {
	out := &auditv1.GetOrderTimelineResponse{}
	req := &auditv1.GetOrderTimelineRequest{OrderId: orderID, PageSize: 500}
	var p *progress
	for {
		resp, err := ac.GetOrderTimeline(ctx, req)
		if err != nil {
			return nil, rpcError("GetOrderTimeline", err)
		}
		out.Events = append(out.Events, resp.GetEvents()...)
		out.Streams, out.TotalSize = resp.GetStreams(), resp.GetTotalSize()
		if resp.GetNextPageToken() == "" {
			break
		}
		if p == nil && w != nil {
			p = newProgress(w, "reading timeline: events", int(resp.GetTotalSize()))
		}
		if p != nil {
			p.Set(len(out.Events), "")
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if p != nil {
		p.Done(len(out.Events), "")
	}
	return out, nil
}

// printTimeline is the readable timeline: time, service, type, actor,
// revision within its stream and the short hash.
func printTimeline(w io.Writer, tl *auditv1.GetOrderTimelineResponse) error {
	tw := table(w)
	row(tw, "TIME", "SERVICE", "TYPE", "ACTOR", "REV", "HASH")
	for _, e := range tl.GetEvents() {
		row(tw, fmtTime(e.GetRecordTime()), e.GetService(), eventName(e.GetType()), orDash(e.GetActor()), e.GetRevision(), short(e.GetHash(), 12))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d events in %d streams\n", len(tl.GetEvents()), len(tl.GetStreams()))
	return err
}

func (c *cli) timelineCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("timeline", "<order>",
		"Prints every service's events of one order in order: time, service, event type, actor,\n"+
			"revision in its stream and the (short) hash-chain hash. --json gives every field and payload.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ac, err := c.auditClient()
	if err != nil {
		return err
	}
	tl, err := fetchTimeline(ctx, ac, pos[0], c.errOut)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(tl)
	}
	return printTimeline(c.out, tl)
}

func (c *cli) verifyCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("verify", "<order>",
		"Re-reads every stream the order touched from the event store and recomputes the hash\n"+
			"chains. Exits non-zero when a link is broken.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ac, err := c.auditClient()
	if err != nil {
		return err
	}
	resp, err := ac.VerifyOrderChain(ctx, &auditv1.VerifyOrderChainRequest{OrderId: pos[0]})
	if err != nil {
		return rpcError("VerifyOrderChain", err)
	}
	if c.json {
		if err := c.printJSON(resp); err != nil {
			return err
		}
	} else {
		tw := table(c.out)
		row(tw, "SERVICE", "STREAM", "EVENTS", "VALID")
		for _, s := range resp.GetStreams() {
			v := "yes"
			if !s.GetValid() {
				v = "NO: " + describeBroken(s.GetBrokenLink())
			}
			row(tw, s.GetService(), s.GetStream(), s.GetEventsChecked(), v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if resp.GetValid() {
			fmt.Fprintf(c.out, "chain valid: %d events checked in %d streams\n", resp.GetEventsChecked(), resp.GetStreamsChecked())
		}
	}
	if !resp.GetValid() {
		return fmt.Errorf("chain BROKEN: %s", describeBroken(resp.GetBrokenLink()))
	}
	return nil
}

func describeBroken(b *auditv1.BrokenLink) string {
	if b == nil {
		return "no detail"
	}
	if b.GetStream() == "" {
		// The store's damage, or a gap: no stream can be named.
		return fmt.Sprintf("%s: %s", b.GetService(), b.GetReason())
	}
	where := b.GetService() + "/" + b.GetStream()
	return fmt.Sprintf("%s at revision %d (event %s): %s", where, b.GetRevision(), orDash(b.GetEventId()), b.GetReason())
}

func (c *cli) replayCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("replay", "<order> [--as-of T]",
		"Replays the order, its fulfilments, claims and money as the system knew them at T\n"+
			"(RFC 3339, 2006-01-02[ 15:04], or a duration from the server's now such as -3d).")
	asOf := fs.String("as-of", "", "the moment (default: now)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	req := &auditv1.ReplayOrderRequest{OrderId: pos[0]}
	if *asOf != "" {
		t, err := c.parseTime(ctx, *asOf)
		if err != nil {
			return err
		}
		req.AsOf = timestamppb.New(t)
	}
	ac, err := c.auditClient()
	if err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(c.errOut, "replaying %s …\n", pos[0])
	}
	resp, err := ac.ReplayOrder(ctx, req)
	if err != nil {
		return rpcError("ReplayOrder", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printReplay(resp)
}

func (c *cli) printReplay(r *auditv1.ReplayOrderResponse) error {
	o := r.GetOrder()
	chain := "valid"
	if !r.GetChainValid() {
		chain = "BROKEN: " + describeBroken(r.GetBrokenLink())
	}
	tw := table(c.out)
	row(tw, "as of", fmtTime(r.GetAsOf()))
	row(tw, "order", o.GetOrderId())
	row(tw, "state", enumName(o.GetState()))
	row(tw, "total", fmtMoney(o.GetTotal()))
	row(tw, "events applied", fmt.Sprintf("%d (last %s)", r.GetEventsApplied(), orDash(r.GetLastEventId())))
	row(tw, "chain", chain)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.GetFulfilments()) > 0 {
		fmt.Fprintln(c.out)
		tw = table(c.out)
		row(tw, "FULFILMENT", "VENDOR", "STATE", "SHIP BY", "SHIPMENTS", "DELIVERED")
		for _, f := range r.GetFulfilments() {
			var ships []string
			for _, s := range f.GetShipments() {
				ships = append(ships, fmt.Sprintf("%s %s %s (%d scans)", s.GetCarrier(), s.GetTrackingNumber(), enumName(s.GetStatus()), s.GetTrackingEventCount()))
			}
			row(tw, f.GetFulfilmentId(), f.GetVendorId(), enumName(f.GetState()), fmtTime(f.GetShipByTime()), orDash(strings.Join(ships, "; ")), fmtTime(f.GetDeliverTime()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.GetClaims()) > 0 {
		fmt.Fprintln(c.out)
		tw = table(c.out)
		row(tw, "CLAIM", "VENDOR", "REASON", "STATE", "CLAIMED", "REFUNDED")
		for _, cl := range r.GetClaims() {
			row(tw, cl.GetClaimId(), cl.GetVendorId(), enumName(cl.GetReason()), enumName(cl.GetState()), fmtMoney(cl.GetClaimedAmount()), fmtMoney(cl.GetRefundedAmount()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if m := r.GetMoney(); m != nil {
		fmt.Fprintln(c.out)
		tw = table(c.out)
		row(tw, "CAPTURED", "ESCROW", "PENDING", "HELD", "RELEASED", "REFUNDED")
		row(tw, fmtMoney(m.GetCaptured()), fmtMoney(m.GetEscrow()), fmtMoney(m.GetPending()), fmtMoney(m.GetHeld()), fmtMoney(m.GetReleased()), fmtMoney(m.GetRefunded()))
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = table(c.out)
		row(tw, "VENDOR PART", "STAGE", "WINDOW CLOSES", "REFUNDED", "OPEN CLAIMS")
		for _, p := range m.GetParts() {
			row(tw, p.GetVendorId(), enumName(p.GetStage()), fmtTime(p.GetReturnWindowCloseTime()), fmtMoney(p.GetRefunded()), orDash(strings.Join(p.GetOpenClaimIds(), ",")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (c *cli) clockCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("clock", "[advance <duration>]",
		"Shows the server's clock; \"advance 36h\" (or 7d, 90m) moves a fake clock forward so\n"+
			"deadlines pass (server started with --clock=fake; platform role).")
	pos, err := parse(fs, args, 0, 2)
	if err != nil {
		return err
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	sc := systemv1.NewSystemServiceClient(conn)
	if len(pos) > 0 {
		if pos[0] != "advance" || len(pos) != 2 {
			fs.Usage()
			return errors.New("clock: want \"clock\" or \"clock advance <duration>\"")
		}
		d, err := parseDuration(pos[1])
		if err != nil {
			return err
		}
		resp, err := sc.AdvanceClock(ctx, &systemv1.AdvanceClockRequest{By: durationpb.New(d)})
		if err != nil {
			return rpcError("AdvanceClock", err)
		}
		if c.json {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "clock advanced by %s: now %s\n", d, fmtTime(resp.GetNow()))
		return nil
	}
	resp, err := sc.GetClock(ctx, &systemv1.GetClockRequest{})
	if err != nil {
		return rpcError("GetClock", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	kind := "wall clock"
	if resp.GetFake() {
		kind = "fake clock (moves with \"clock advance\")"
	}
	fmt.Fprintf(c.out, "%s, %s\n", fmtTime(resp.GetNow()), kind)
	return nil
}

func (c *cli) parkedCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("parked", "[--consumer C]",
		"Lists the events consumers gave up on and parked on the dead-letter stream, oldest first.")
	consumer := fs.String("consumer", "", `only this consumer's (e.g. "catalog-on-order")`)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	ac, err := c.auditClient()
	if err != nil {
		return err
	}
	resp, err := ac.ListParkedEvents(ctx, &auditv1.ListParkedEventsRequest{Consumer: *consumer})
	if err != nil {
		return rpcError("ListParkedEvents", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	tw := table(c.out)
	row(tw, "PARKED", "CONSUMER", "EVENT", "TYPE", "CAUSE", "DELIVERIES", "REASON")
	for _, p := range resp.GetParked() {
		row(tw, fmtTime(p.GetParkTime()), p.GetConsumer(), p.GetEventId(), p.GetEventType(), p.GetCause(), p.GetDeliveries(), p.GetReason())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d parked\n", len(resp.GetParked()))
	return nil
}
