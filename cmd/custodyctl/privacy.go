package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
)

func (c *cli) privacyCmd(ctx context.Context, args []string) error {
	verb, rest, err := c.subcommand("privacy", args, "erase|export")
	if err != nil {
		return err
	}
	switch verb {
	case "erase":
		return c.privacyErase(ctx, rest)
	case "export":
		return c.privacyExport(ctx, rest)
	}
	return fmt.Errorf("privacy: unknown verb %q (erase, export)", verb)
}

func (c *cli) privacyClient() (auditv1.PrivacyServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return auditv1.NewPrivacyServiceClient(conn), nil
}

func (c *cli) privacyErase(ctx context.Context, args []string) error {
	fs := c.newFlags("privacy erase", "--buyer B --reason R [--request-id ID]",
		"Erases a buyer's personal data for good (the right to erasure; the platform role): their\n"+
			"data key is destroyed, so every personal field of their events reads \"[erased]\"; the\n"+
			"history, its hash chains, money and stock stay as they are. Recorded as BuyerErased.")
	buyer := fs.String("buyer", "", "buyer (required)")
	reason := fs.String("reason", "", "why: a case reference, no personal data (required, at most 500 characters)")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *buyer == "" || *reason == "" {
		fs.Usage()
		return errors.New("privacy erase: --buyer and --reason are required")
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	pc, err := c.privacyClient()
	if err != nil {
		return err
	}
	resp, err := pc.EraseBuyer(ctx, &auditv1.EraseBuyerRequest{BuyerId: *buyer, RequestId: *reqID, Reason: *reason})
	if err != nil {
		return rpcError("EraseBuyer", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	tw := table(c.out)
	row(tw, "buyer", resp.GetBuyerId())
	row(tw, "erased", fmtTime(resp.GetEraseTime()))
	row(tw, "key", resp.GetKeyId())
	row(tw, "orders", orDash(strings.Join(resp.GetOrderIds(), " ")))
	return tw.Flush()
}

func (c *cli) privacyExport(ctx context.Context, args []string) error {
	fs := c.newFlags("privacy export", "--buyer B",
		"Prints a copy of a buyer's data (an access request; the platform role, or the buyer\n"+
			"themself): their orders and every personal field of their events, decrypted, as JSON.")
	buyer := fs.String("buyer", "", "buyer (required)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *buyer == "" {
		fs.Usage()
		return errors.New("privacy export: --buyer is required")
	}
	pc, err := c.privacyClient()
	if err != nil {
		return err
	}
	resp, err := pc.ExportBuyerData(ctx, &auditv1.ExportBuyerDataRequest{BuyerId: *buyer})
	if err != nil {
		return rpcError("ExportBuyerData", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	// The document is JSON already: printed as it is.
	_, err = fmt.Fprintln(c.out, resp.GetJson())
	return err
}
