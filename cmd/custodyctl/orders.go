package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/custody/custody/pkg/money"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

func (c *cli) ordersCmd(ctx context.Context, args []string) error {
	verb, rest, err := c.subcommand("orders", args, "place|get|list|cancel|cancel-lines|change-address")
	if err != nil {
		return err
	}
	switch verb {
	case "place":
		return c.ordersPlace(ctx, rest)
	case "get":
		return c.ordersGet(ctx, rest)
	case "list":
		return c.ordersList(ctx, rest)
	case "cancel":
		return c.ordersCancel(ctx, rest)
	case "cancel-lines":
		return c.ordersCancelLines(ctx, rest)
	case "change-address":
		return c.ordersChangeAddress(ctx, rest)
	}
	return fmt.Errorf("orders: unknown verb %q (place, get, list, cancel, cancel-lines, change-address)", verb)
}

func (c *cli) orderClient() (orderv1.OrderServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return orderv1.NewOrderServiceClient(conn), nil
}

func (c *cli) ordersPlace(ctx context.Context, args []string) error {
	fs := c.newFlags("orders place", "--buyer B --sku SKU[:QTY] [--sku …] [flags]",
		"Places an order and waits for the stock outcome (CONFIRMED or REJECTED).\n"+
			"The payment amount defaults to the catalog total of the lines.")
	buyer := fs.String("buyer", "", "buyer id (required)")
	var skus listFlag
	fs.Var(&skus, "sku", "SKU and quantity, e.g. p1a2-black_m:2 (repeatable; quantity defaults to 1)")
	live := fs.String("live", "", "attribute to this live session")
	link := fs.String("link", "", "attribute to this affiliate link")
	amount := fs.String("amount", "", `authorised payment, e.g. "50.00 EUR" (default: the catalog total)`)
	psp := fs.String("psp", "", "payment authorisation reference (default: psp-<request id>)")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	wait := fs.Duration("wait", 10*time.Second, "wait up to this long for CONFIRMED or REJECTED (0: return PENDING at once)")
	addr := addressFlags(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *buyer == "" || len(skus) == 0 {
		fs.Usage()
		return errors.New("orders place: --buyer and at least one --sku are required")
	}
	if *live != "" && *link != "" {
		return errors.New("orders place: --live and --link exclude each other")
	}
	var lines []*orderv1.LineRequest
	for _, s := range skus {
		sku, qty, err := splitQty(s)
		if err != nil {
			return fmt.Errorf("--sku %q: %w", s, err)
		}
		lines = append(lines, &orderv1.LineRequest{SkuId: sku, Quantity: qty})
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	if *psp == "" {
		*psp = "psp-" + *reqID
	}
	if *addr.name == "" {
		*addr.name = *buyer
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	var pay *typev1.Money
	if *amount != "" {
		if pay, err = parseMoney(*amount, ""); err != nil {
			return err
		}
	} else if pay, err = catalogTotal(ctx, catalogv1.NewCatalogServiceClient(conn), lines); err != nil {
		return fmt.Errorf("pricing the lines (or pass --amount): %w", err)
	}
	req := &orderv1.PlaceOrderRequest{
		RequestId: *reqID, BuyerId: *buyer, Lines: lines,
		ShippingAddress: addr.address(),
		Payment:         &orderv1.Payment{PspReference: *psp, Amount: pay},
	}
	switch {
	case *live != "":
		req.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_LiveSessionId{LiveSessionId: *live}}
	case *link != "":
		req.Attribution = &orderv1.Attribution{Source: &orderv1.Attribution_AffiliateLinkId{AffiliateLinkId: *link}}
	}
	if *wait > 0 {
		req.WaitTimeout = durationpb.New(*wait)
	}
	resp, err := orderv1.NewOrderServiceClient(conn).PlaceOrder(ctx, req)
	if err != nil {
		return rpcError("PlaceOrder", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printOrder(resp.GetOrder())
}

// splitQty reads "id" or "id:qty".
func splitQty(s string) (string, int64, error) {
	id, q, ok := strings.Cut(s, ":")
	if id == "" {
		return "", 0, errors.New("empty id")
	}
	if !ok {
		return id, 1, nil
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n <= 0 {
		return "", 0, fmt.Errorf("quantity %q is not a positive number", q)
	}
	return id, n, nil
}

// catalogTotal prices lines from the catalog: a SKU id is
// "<product_id>-<code>" and codes have no dashes.
func catalogTotal(ctx context.Context, cat catalogv1.CatalogServiceClient, lines []*orderv1.LineRequest) (*typev1.Money, error) {
	products := map[string]*catalogv1.Product{}
	var total money.Money
	for i, l := range lines {
		pid := l.GetSkuId()
		if j := strings.LastIndexByte(pid, '-'); j > 0 {
			pid = pid[:j]
		}
		p, ok := products[pid]
		if !ok {
			resp, err := cat.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: pid})
			if err != nil {
				return nil, rpcError("GetProduct", err)
			}
			p = resp.GetProduct()
			products[pid] = p
		}
		var price *typev1.Money
		for _, s := range p.GetSkus() {
			if s.GetSkuId() == l.GetSkuId() {
				price = s.GetPrice()
			}
		}
		if price == nil {
			return nil, fmt.Errorf("product %s has no SKU %s", pid, l.GetSkuId())
		}
		unit, err := money.FromProto(price)
		if err != nil {
			return nil, err
		}
		lt, err := unit.Mul(l.GetQuantity())
		if err != nil {
			return nil, err
		}
		if i == 0 {
			total = lt
		} else if total, err = total.Add(lt); err != nil {
			return nil, err
		}
	}
	return total.ToProto(), nil
}

func (c *cli) ordersGet(ctx context.Context, args []string) error {
	fs := c.newFlags("orders get", "<order>", "Shows an order with its lines and vendor parts.")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	oc, err := c.orderClient()
	if err != nil {
		return err
	}
	resp, err := oc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: pos[0]})
	if err != nil {
		return rpcError("GetOrder", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printOrder(resp.GetOrder())
}

func (c *cli) ordersList(ctx context.Context, args []string) error {
	fs := c.newFlags("orders list", "--buyer B | --vendor V [flags]", "Lists a buyer's or a vendor's orders, newest first.")
	buyer := fs.String("buyer", "", "a buyer's orders")
	vendor := fs.String("vendor", "", "orders with a part for this vendor")
	state := enumFlag(fs, "state", orderv1.OrderState(0).Descriptor(), "only orders in this state")
	size := fs.Int("page-size", 50, "orders per page")
	token := fs.String("page-token", "", "page token from a previous list")
	all := fs.Bool("all", false, "follow every page")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if (*buyer == "") == (*vendor == "") {
		fs.Usage()
		return errors.New("orders list: exactly one of --buyer and --vendor")
	}
	oc, err := c.orderClient()
	if err != nil {
		return err
	}
	out := &orderv1.ListOrdersResponse{}
	req := &orderv1.ListOrdersRequest{BuyerId: *buyer, VendorId: *vendor, State: orderv1.OrderState(*state), PageSize: int32(*size), PageToken: *token}
	for {
		resp, err := oc.ListOrders(ctx, req)
		if err != nil {
			return rpcError("ListOrders", err)
		}
		out.Orders = append(out.Orders, resp.GetOrders()...)
		out.NextPageToken = resp.GetNextPageToken()
		if !*all || resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if c.json {
		return c.printJSON(out)
	}
	tw := table(c.out)
	row(tw, "ORDER", "STATE", "BUYER", "TOTAL", "REFUNDED", "LINES", "VENDORS", "PLACED")
	for _, o := range out.GetOrders() {
		var vendors []string
		for _, p := range o.GetParts() {
			vendors = append(vendors, p.GetVendorId())
		}
		row(tw, o.GetOrderId(), enumName(o.GetState()), o.GetBuyerId(), fmtMoney(o.GetTotal()), fmtMoney(o.GetRefundedTotal()),
			len(o.GetLines()), strings.Join(vendors, ","), fmtTime(o.GetPlaceTime()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.GetNextPageToken() != "" {
		fmt.Fprintf(c.out, "more: --page-token %s (or --all)\n", out.GetNextPageToken())
	}
	return nil
}

func (c *cli) ordersCancel(ctx context.Context, args []string) error {
	fs := c.newFlags("orders cancel", "<order> [--reason R]", "Cancels an order that has not shipped.")
	reason := fs.String("reason", "cancelled with custodyctl", "why")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	oc, err := c.orderClient()
	if err != nil {
		return err
	}
	resp, err := oc.CancelOrder(ctx, &orderv1.CancelOrderRequest{RequestId: *reqID, OrderId: pos[0], Reason: *reason})
	if err != nil {
		return rpcError("CancelOrder", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printOrder(resp.GetOrder())
}

func (c *cli) ordersCancelLines(ctx context.Context, args []string) error {
	fs := c.newFlags("orders cancel-lines", "<order> --line L[:QTY] [--line …] | --vendor V [--reason R]",
		"Cancels units of lines that have not shipped (all that is left of a line without :QTY),\n"+
			"or a vendor's whole unshipped part; the buyer is refunded exactly what is cancelled.")
	var lines listFlag
	fs.Var(&lines, "line", "line id and units, e.g. 2:1 (repeatable; without units, every unit left)")
	vendor := fs.String("vendor", "", "cancel every unit left of this vendor's part")
	reason := fs.String("reason", "cancelled with custodyctl", "why")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if (len(lines) == 0) == (*vendor == "") {
		fs.Usage()
		return errors.New("orders cancel-lines: exactly one of --line and --vendor")
	}
	req := &orderv1.CancelOrderLinesRequest{RequestId: *reqID, OrderId: pos[0], VendorId: *vendor, Reason: *reason}
	for _, l := range lines {
		id, qty := l, int64(0)
		if strings.Contains(l, ":") {
			if id, qty, err = splitQty(l); err != nil {
				return fmt.Errorf("--line %q: %w", l, err)
			}
		}
		req.Lines = append(req.Lines, &orderv1.LineCancellation{LineId: id, Quantity: qty})
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	oc, err := c.orderClient()
	if err != nil {
		return err
	}
	resp, err := oc.CancelOrderLines(ctx, req)
	if err != nil {
		return rpcError("CancelOrderLines", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printOrder(resp.GetOrder())
}

func (c *cli) ordersChangeAddress(ctx context.Context, args []string) error {
	fs := c.newFlags("orders change-address", "<order> --name N --street S [flags]",
		"Changes where an order goes, until its first part ships.")
	addr := addressFlags(fs)
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *addr.name == "" {
		fs.Usage()
		return errors.New("orders change-address: --name is required")
	}
	if *reqID == "" {
		*reqID = newRequestID()
	}
	oc, err := c.orderClient()
	if err != nil {
		return err
	}
	resp, err := oc.ChangeShippingAddress(ctx, &orderv1.ChangeShippingAddressRequest{RequestId: *reqID, OrderId: pos[0], ShippingAddress: addr.address()})
	if err != nil {
		return rpcError("ChangeShippingAddress", err)
	}
	if c.json {
		return c.printJSON(resp)
	}
	return c.printOrder(resp.GetOrder())
}

// addressFields are the flags of a shipping address.
type addressFields struct{ name, street, city, postal, country *string }

func addressFlags(fs *flag.FlagSet) addressFields {
	return addressFields{
		name:    fs.String("name", "", "recipient name (default: the buyer id)"),
		street:  fs.String("street", "1 Main St", "address line"),
		city:    fs.String("city", "Berlin", "locality"),
		postal:  fs.String("postal", "10115", "postal code"),
		country: fs.String("country", "DE", "ISO country code"),
	}
}

func (a addressFields) address() *typev1.Address {
	return &typev1.Address{RecipientName: *a.name, AddressLines: []string{*a.street}, Locality: *a.city, PostalCode: *a.postal, CountryCode: *a.country}
}

func (c *cli) printOrder(o *orderv1.Order) error {
	tw := table(c.out)
	row(tw, "order", o.GetOrderId())
	row(tw, "buyer", o.GetBuyerId())
	row(tw, "state", enumName(o.GetState()))
	row(tw, "total", fmtMoney(o.GetTotal()))
	if r := o.GetRefundedTotal(); r.GetAmountMinor() != 0 {
		row(tw, "refunded", fmtMoney(r))
	}
	if a := o.GetAttribution(); a.GetCreatorId() != "" {
		via := "link " + a.GetAffiliateLinkId()
		if a.GetLiveSessionId() != "" {
			via = "live session " + a.GetLiveSessionId()
		}
		row(tw, "creator", a.GetCreatorId()+" ("+via+")")
	}
	if o.GetReason() != "" {
		row(tw, "reason", o.GetReason())
	}
	row(tw, "placed", fmtTime(o.GetPlaceTime()))
	row(tw, "updated", fmtTime(o.GetUpdateTime()))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = table(c.out)
	row(tw, "LINE", "SKU", "VENDOR", "TITLE", "QTY", "CANCELLED", "REFUNDED", "UNIT", "TOTAL", "CREATOR")
	for _, l := range o.GetLines() {
		creator := "-"
		if l.GetCreatorId() != "" {
			creator = fmt.Sprintf("%s (%s%%)", l.GetCreatorId(), strconv.FormatFloat(float64(l.GetCommissionBps())/100, 'f', -1, 64))
		}
		row(tw, l.GetLineId(), l.GetSkuId(), l.GetVendorId(), l.GetTitle(), l.GetQuantity(), l.GetCancelledQuantity(), l.GetRefundedQuantity(),
			fmtMoney(l.GetUnitPrice()), fmtMoney(l.GetLineTotal()), creator)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = table(c.out)
	row(tw, "VENDOR PART", "LINES", "SUBTOTAL", "STATE", "REFUNDED", "CANCELLED BY")
	for _, p := range o.GetParts() {
		cancelled := "-"
		if p.GetCancelledBy() != "" {
			cancelled = p.GetCancelledBy() + ": " + p.GetCancelReason()
		}
		row(tw, p.GetVendorId(), strings.Join(p.GetLineIds(), ","), fmtMoney(p.GetSubtotal()), enumName(p.GetState()), fmtMoney(p.GetRefunded()), cancelled)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
