package main

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
)

func (c *cli) payoutsClient() (payoutsv1.PayoutsServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return payoutsv1.NewPayoutsServiceClient(conn), nil
}

func (c *cli) balanceCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("balance", "<owner> [--accounts]",
		"Shows an owner's balances per currency: escrow, pending (return window running), held\n"+
			"(claim open), available, reserve and paid out. Owners: vendor:<id>, creator:<id>,\n"+
			"platform, buyers, payouts.")
	accounts := fs.Bool("accounts", false, "also list every account of the owner")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	pc, err := c.payoutsClient()
	if err != nil {
		return err
	}
	resp, err := pc.GetBalance(ctx, &payoutsv1.GetBalanceRequest{Owner: pos[0]})
	if err != nil {
		return rpcError("GetBalance", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	if err := printBalance(c, resp); err != nil {
		return err
	}
	if *accounts {
		fmt.Fprintln(c.out)
		tw := table(c.out)
		row(tw, "ACCOUNT", "BALANCE")
		for _, a := range resp.GetAccounts() {
			row(tw, a.GetAccount(), fmtMoney(a.GetBalance()))
		}
		return tw.Flush()
	}
	return nil
}

func printBalance(c *cli, resp *payoutsv1.GetBalanceResponse) error {
	tw := table(c.out)
	row(tw, "OWNER", "CURRENCY", "ESCROW", "PENDING", "HELD", "AVAILABLE", "RESERVE", "PAID OUT")
	for _, b := range resp.GetBalances() {
		row(tw, resp.GetOwner(), b.GetCurrencyCode(), fmtMoney(b.GetEscrow()), fmtMoney(b.GetPending()), fmtMoney(b.GetHeld()),
			fmtMoney(b.GetAvailable()), fmtMoney(b.GetReserve()), fmtMoney(b.GetPaidOut()))
	}
	if len(resp.GetBalances()) == 0 {
		row(tw, resp.GetOwner(), "-", "-", "-", "-", "-", "-", "-")
	}
	return tw.Flush()
}

func (c *cli) statementCmd(ctx context.Context, args []string) error {
	fs := c.newFlags("statement", "<account> [--from T] [--to T]",
		"Lists one account's entries over a period, each with its cause, with opening and closing\n"+
			"balances. Accounts: vendor:<id>:available, creator:<id>:pending, platform:fees, …\n"+
			"Times: RFC 3339, 2006-01-02[ 15:04], or a duration from the server's now (-7d).")
	from := fs.String("from", "", "start of the period, inclusive (default: the beginning)")
	to := fs.String("to", "", "end of the period, exclusive (default: now)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	req := &payoutsv1.GetStatementRequest{Account: pos[0]}
	if *from != "" {
		t, err := c.parseTime(ctx, *from)
		if err != nil {
			return err
		}
		req.StartTime = timestamppb.New(t)
	}
	if *to != "" {
		t, err := c.parseTime(ctx, *to)
		if err != nil {
			return err
		}
		req.EndTime = timestamppb.New(t)
	}
	pc, err := c.payoutsClient()
	if err != nil {
		return err
	}
	resp, err := pc.GetStatement(ctx, req)
	if err != nil {
		return rpcError("GetStatement", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	start := "the beginning"
	if resp.GetStartTime() != nil {
		start = fmtTime(resp.GetStartTime())
	}
	end := "now"
	if resp.GetEndTime() != nil {
		end = fmtTime(resp.GetEndTime())
	}
	fmt.Fprintf(c.out, "statement of %s from %s to %s\n\n", resp.GetAccount(), start, end)
	tw := table(c.out)
	row(tw, "POSTED", "KIND", "AMOUNT", "BALANCE", "ORDER", "REFERENCE", "MEMO")
	for _, e := range resp.GetEntries() {
		row(tw, fmtTime(e.GetPostTime()), enumName(e.GetKind()), fmtMoney(e.GetAmount()), fmtMoney(e.GetBalanceAfter()),
			orDash(e.GetOrderId()), orDash(e.GetReference()), orDash(e.GetMemo()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = table(c.out)
	row(tw, "CURRENCY", "OPENING", "CREDITS", "DEBITS", "CLOSING")
	for _, t := range resp.GetTotals() {
		row(tw, t.GetCurrencyCode(), fmtMoney(t.GetOpening()), fmtMoney(t.GetCredits()), fmtMoney(t.GetDebits()), fmtMoney(t.GetClosing()))
	}
	return tw.Flush()
}

func (c *cli) payoutsCmd(ctx context.Context, args []string) error {
	verb, rest, err := c.subcommand("payouts", args, "run|get")
	if err != nil {
		return err
	}
	pc, err := c.payoutsClient()
	if err != nil {
		return err
	}
	var batch *payoutsv1.PayoutBatch
	switch verb {
	case "run":
		fs := c.newFlags("payouts run", "[--request-id ID]",
			"Pays every vendor and creator whose available balance reaches the minimum payout.\n"+
				"Repeating a request id returns the same batch and pays nothing more. Platform only.")
		reqID := fs.String("request-id", "", "idempotency key (default: random)")
		if _, err := parse(fs, rest, 0, 0); err != nil {
			return err
		}
		if *reqID == "" {
			*reqID = newRequestID()
		}
		resp, err := pc.RunPayouts(ctx, &payoutsv1.RunPayoutsRequest{RequestId: *reqID})
		if err != nil {
			return rpcError("RunPayouts", err)
		}
		if c.json {
			return c.printJSON(resp)
		}
		batch = resp.GetBatch()
	case "get":
		fs := c.newFlags("payouts get", "<batch>", "Shows a payout batch.")
		pos, err := parse(fs, rest, 1, 1)
		if err != nil {
			return err
		}
		resp, err := pc.GetPayoutBatch(ctx, &payoutsv1.GetPayoutBatchRequest{BatchId: pos[0]})
		if err != nil {
			return rpcError("GetPayoutBatch", err)
		}
		if c.json {
			return c.printJSON(resp)
		}
		batch = resp.GetBatch()
	default:
		return fmt.Errorf("payouts: unknown verb %q (run, get)", verb)
	}
	return printBatch(c, batch, nil)
}

// printBatch prints a payout batch; keep, if set, selects the payees shown.
func printBatch(c *cli, b *payoutsv1.PayoutBatch, keep func(payee string) bool) error {
	fmt.Fprintf(c.out, "batch %s, created %s by %s\n", b.GetBatchId(), fmtTime(b.GetCreateTime()), orDash(b.GetRequestedBy()))
	tw := table(c.out)
	row(tw, "PAYEE", "ACCOUNT", "AMOUNT")
	shown := 0
	for _, l := range b.GetLines() {
		if keep != nil && !keep(l.GetPayee()) {
			continue
		}
		shown++
		row(tw, l.GetPayee(), l.GetAccount(), fmtMoney(l.GetAmount()))
	}
	if shown == 0 {
		row(tw, "(nobody reached the minimum payout)", "", "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if keep == nil {
		for _, t := range b.GetTotals() {
			fmt.Fprintf(c.out, "total %s\n", fmtMoney(t))
		}
	} else if n := len(b.GetLines()) - shown; n > 0 {
		fmt.Fprintf(c.out, "(%d more lines for other payees)\n", n)
	}
	return nil
}
