package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/money"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// ---- flags -----------------------------------------------------------------

// newFlags makes a subcommand's flag set whose -h prints synopsis, a short
// description and the flags. Every subcommand also takes --json.
func (c *cli) newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("custodyctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	fs.Usage = func() {
		fmt.Fprintf(c.errOut, "Usage: custodyctl %s %s\n\n%s\n", name, synopsis, about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(c.errOut, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	fs.BoolVar(&c.json, "json", c.json, "print JSON instead of tables")
	return fs
}

// parse parses flags and positional arguments in any order ("timeline o1
// --json" as well as "timeline --json o1") and checks the number of
// positional arguments.
func parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		fs.Usage()
		switch {
		case len(pos) < minPos:
			return nil, fmt.Errorf("%s: missing argument", fs.Name())
		default:
			return nil, fmt.Errorf("%s: unexpected argument %q", fs.Name(), pos[maxPos])
		}
	}
	return pos, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// subcommand splits "orders place …" into "place" and the rest, printing
// the group's usage for a missing or unknown verb.
func (c *cli) subcommand(group string, args []string, verbs string) (string, []string, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(c.errOut, "Usage: custodyctl %s %s …\n\nRun \"custodyctl %s <verb> -h\" for a verb's flags.\n", group, verbs, group)
		if len(args) == 0 {
			return "", nil, fmt.Errorf("%s: missing verb (%s)", group, verbs)
		}
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

// ---- ids -------------------------------------------------------------------

// newRequestID returns a fresh idempotency key for a mutating call made
// without --request-id.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ctl-" + hex.EncodeToString(b[:])
}

// ---- enums -----------------------------------------------------------------

// enumPrefix is the value prefix of an enum type: OrderState → ORDER_STATE_.
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, r := range string(ed.Name()) {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String() + "_"
}

// enumName shows an enum value without its type prefix, in lower case:
// ORDER_STATE_CONFIRMED → "confirmed"; the zero value is "-".
func enumName(e protoreflect.Enum) string {
	if e == nil || e.Number() == 0 {
		return "-"
	}
	ed := e.Descriptor()
	v := ed.Values().ByNumber(e.Number())
	if v == nil {
		return strconv.Itoa(int(e.Number()))
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), enumPrefix(ed)))
}

// parseEnum reads an enum value given as "confirmed", "not-received",
// "NOT_RECEIVED" or the full "CLAIM_REASON_NOT_RECEIVED".
func parseEnum(ed protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, error) {
	want := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	prefix := enumPrefix(ed)
	var names []string
	vals := ed.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if v.Number() == 0 {
			continue
		}
		name := string(v.Name())
		if want == name || prefix+want == name {
			return v.Number(), nil
		}
		names = append(names, strings.ToLower(strings.TrimPrefix(name, prefix)))
	}
	return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}

// enumFlag is a flag holding an enum value (0 when not given).
func enumFlag(fs *flag.FlagSet, name string, ed protoreflect.EnumDescriptor, usage string) *protoreflect.EnumNumber {
	var n protoreflect.EnumNumber
	var names []string
	vals := ed.Values()
	for i := range vals.Len() {
		if v := vals.Get(i); v.Number() != 0 {
			names = append(names, strings.ToLower(strings.TrimPrefix(string(v.Name()), enumPrefix(ed))))
		}
	}
	fs.Func(name, usage+": "+strings.Join(names, ", "), func(s string) error {
		v, err := parseEnum(ed, s)
		n = v
		return err
	})
	return &n
}

// ---- money -----------------------------------------------------------------

// fmtMoney shows money as "12.34 EUR"; nil as "-".
func fmtMoney(m *typev1.Money) string {
	if m == nil || m.GetCurrencyCode() == "" {
		return "-"
	}
	v, err := money.FromProto(m)
	if err != nil {
		return fmt.Sprintf("%d minor %s", m.GetAmountMinor(), m.GetCurrencyCode())
	}
	return v.String()
}

// parseMoney reads "12.34 EUR", "EUR 12.34" or "12.34" (in currency def).
func parseMoney(s, def string) (*typev1.Money, error) {
	f := strings.Fields(s)
	amount, cur := "", def
	switch len(f) {
	case 1:
		amount = f[0]
	case 2:
		if _, err := strconv.ParseFloat(f[0], 64); err == nil {
			amount, cur = f[0], strings.ToUpper(f[1])
		} else {
			amount, cur = f[1], strings.ToUpper(f[0])
		}
	default:
		return nil, fmt.Errorf("amount %q: want e.g. \"12.34 EUR\"", s)
	}
	if cur == "" {
		return nil, fmt.Errorf("amount %q: name the currency, e.g. \"%s EUR\"", s, amount)
	}
	m, err := money.Parse(cur, amount)
	if err != nil {
		return nil, err
	}
	return m.ToProto(), nil
}

// ---- time ------------------------------------------------------------------

const timeLayout = "2006-01-02 15:04:05"

// fmtTime shows a timestamp in UTC; unset as "-".
func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(timeLayout)
}

var daysPattern = regexp.MustCompile(`^(-?)(\d+)d(.*)$`)

// parseDuration is time.ParseDuration plus days: "7d", "2d12h", "-1d".
func parseDuration(s string) (time.Duration, error) {
	if m := daysPattern.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[2])
		if err != nil {
			return 0, err
		}
		d := time.Duration(days) * 24 * time.Hour
		if m[3] != "" {
			rest, err := time.ParseDuration(m[3])
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			d += rest
		}
		if m[1] == "-" {
			d = -d
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90m, 36h, 7d", s)
	}
	return d, nil
}

// parseTime reads RFC 3339, "2006-01-02 15:04[:05]" or a date (UTC), or a
// duration relative to the server's clock ("-48h": two days ago, "now").
func (c *cli) parseTime(ctx context.Context, s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, timeLayout, "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	var d time.Duration
	if s != "now" {
		var err error
		if d, err = parseDuration(s); err != nil {
			return time.Time{}, fmt.Errorf("time %q: want RFC 3339, 2006-01-02[ 15:04], or a duration from now such as -48h", s)
		}
	}
	now, err := c.serverNow(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(d), nil
}

// serverNow is the server's clock (a fake one in demos), falling back to
// this machine's when the server cannot be asked.
func (c *cli) serverNow(ctx context.Context) (time.Time, error) {
	conn, err := c.dial()
	if err != nil {
		return time.Time{}, err
	}
	resp, err := systemv1.NewSystemServiceClient(conn).GetClock(ctx, &systemv1.GetClockRequest{})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return time.Now(), nil
		}
		return time.Time{}, rpcError("GetClock", err)
	}
	return resp.GetNow().AsTime(), nil
}

// ---- tables ----------------------------------------------------------------

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short shortens a hash or id for tables.
func short(s string, n int) string {
	if len(s) <= n {
		return orDash(s)
	}
	return s[:n]
}

// eventName shows "custody.order.v1.OrderPlaced" as "OrderPlaced".
func eventName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return orDash(full)
}

// ---- errors ----------------------------------------------------------------

// statusError is a failed RPC, printed for people: the RPC, the status
// code and message, the precondition reason, and every field violation
// on its own line.
type statusError struct {
	op  string
	err error
}

func rpcError(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	if _, ok := status.FromError(err); !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &statusError{op: op, err: err}
}

func (e *statusError) Unwrap() error { return e.err }

func (e *statusError) Error() string {
	st, _ := status.FromError(e.err)
	msg := st.Message()
	violations := apierr.FieldViolations(e.err)
	if len(violations) > 0 && strings.HasPrefix(msg, "invalid argument: ") {
		msg = "invalid argument" // the violations follow, one per line
	}
	var b strings.Builder
	if e.op != "" {
		b.WriteString(e.op + ": ")
	}
	b.WriteString(st.Code().String() + ": " + msg)
	if r := apierr.Reason(e.err); r != "" && !strings.Contains(msg, r) && r != "PERMISSION_DENIED" {
		b.WriteString(" [" + r + "]")
	}
	for _, v := range violations {
		b.WriteString("\n  " + v.Field + ": " + v.Description)
	}
	return b.String()
}

// explain turns a bare gRPC status error into a statusError so every
// command prints failures the same way.
func explain(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	if _, ok := status.FromError(err); ok {
		return &statusError{err: err}
	}
	return err
}

// ---- progress --------------------------------------------------------------

// progress shows "label n/total" for long operations: redrawn in place on
// a terminal, otherwise printed once at the end (logs stay readable).
type progress struct {
	mu     sync.Mutex // concurrent workers report progress
	w      io.Writer
	tty    bool
	label  string
	total  int
	start  time.Time
	shown  time.Time
	suffix string
}

func newProgress(w io.Writer, label string, total int) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// Set shows n done (with an optional note such as "3 confirmed").
func (p *progress) Set(n int, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suffix = note
	if !p.tty || (time.Since(p.shown) < 50*time.Millisecond && n < p.total) {
		return
	}
	p.shown = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s %d/%d%s", p.label, n, p.total, p.note())
}

// Done prints the final line.
func (p *progress) Done(n int, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suffix = note
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%s %d/%d%s in %s\n", p.label, n, p.total, p.note(), time.Since(p.start).Round(time.Millisecond))
}

func (p *progress) note() string {
	if p.suffix == "" {
		return ""
	}
	return " (" + p.suffix + ")"
}
