package app_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

// scheduled records what a LedgerView tells its Deadlines as the
// scheduler keeps it: a key per open deadline, moved or forgotten.
type scheduled map[string]time.Time

func (s scheduled) WindowOpen(o, v string, at time.Time)  { s["window/"+o+"/"+v] = at }
func (s scheduled) WindowDone(o, v string)                { delete(s, "window/"+o+"/"+v) }
func (s scheduled) ReserveHeld(o, v string, at time.Time) { s["reserve/"+o+"/"+v] = at }
func (s scheduled) ReserveDone(o, v string)               { delete(s, "reserve/"+o+"/"+v) }

func (s scheduled) String() string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		out = append(out, k+" "+s[k].UTC().Format(time.RFC3339))
	}
	return strings.Join(out, "\n")
}

// applier is a read model: LedgerView or TierView.
type applier interface {
	Apply(eventstore.RecordedEvent)
}

// fold applies msg to v as its source's event at pos.
func fold(t *testing.T, v applier, pos uint64, msg proto.Message) {
	t.Helper()
	ed, err := es.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = fmt.Sprint("e", pos)
	v.Apply(eventstore.RecordedEvent{EventData: ed, Stream: "ledger-x", Position: pos, Revision: pos})
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// txn is a transaction of kind for an order's vendor part, posted at
// minute min, of postings "account", EUR minor units, ….
func txn(id string, kind payoutsv1.TransactionKind, order, vendor string, min int, postings ...any) *payoutsv1.TransactionPosted {
	tp := &payoutsv1.TransactionPosted{TransactionId: id, Kind: kind, OrderId: order, VendorId: vendor,
		CauseEventId: "cause-" + id, CauseType: "test", Reference: "ref-" + id, Memo: "memo " + id,
		PostTime: timestamppb.New(t0.Add(time.Duration(min) * time.Minute))}
	for i := 0; i < len(postings); i += 2 {
		tp.Postings = append(tp.Postings, &payoutsv1.Posting{Account: postings[i].(string),
			Amount: &typev1.Money{CurrencyCode: "EUR", AmountMinor: postings[i+1].(int64)}})
	}
	return tp
}

// ledgerAnswers is every answer of v's queries, and what it has scheduled.
func ledgerAnswers(t *testing.T, v *app.LedgerView, s scheduled) string {
	t.Helper()
	var b strings.Builder
	if err := v.Err(); err != nil {
		fmt.Fprintf(&b, "err overflow=%v: %v\n", fault.IsA(err, domain.ErrOverflow), err)
	}
	bal := v.Balances()
	for _, a := range slices.Sorted(maps.Keys(bal)) {
		fmt.Fprintf(&b, "balance %s %v\n", a, bal[a])
	}
	cred := v.Credited()
	for _, a := range slices.Sorted(maps.Keys(cred)) {
		fmt.Fprintf(&b, "credited %s %v\n", a, cred[a])
	}
	for _, o := range [][2]string{{"vendor", "v1"}, {"vendor", "v2"}, {"vendor", "v3"}, {"creator", "c1"}, {"creator", "c2"},
		{"platform", ""}, {"buyers", ""}, {"payouts", ""}} {
		sums, accts := v.Owner(o[0], o[1])
		fmt.Fprintf(&b, "owner %s %s %+v %+v\n", o[0], o[1], sums, accts)
	}
	for _, f := range []app.EntryFilter{{}, {Account: "vendor:v1:escrow"}, {Account: "vendor:v1:available"}, {Account: "creator:c1:pending"},
		{Account: "platform:fees"}, {Account: "vendor:v9:escrow"}, {OrderID: "o1"}, {OrderID: "o3"}, {OrderID: "o7"}, {OrderID: "o99"},
		{Account: "vendor:v1:escrow", OrderID: "o1"}} {
		for after, more := -1, true; more; {
			var page []app.Entry
			page, more = v.Entries(f, after, 3)
			for _, e := range page {
				fmt.Fprintf(&b, "entry %+v: %+v\n", f, e)
				after = e.Seq
			}
		}
	}
	for _, a := range []string{"vendor:v1:escrow", "vendor:v1:available", "vendor:v2:available", "creator:c2:available", domain.BuyerPayments, "vendor:v9:escrow"} {
		for _, period := range [][2]time.Time{{t0.Add(2 * time.Minute), t0.Add(8 * time.Minute)}, {{}, time.Unix(1<<62, 0)}, {t0.Add(20 * time.Minute), t0.Add(50 * time.Minute)}} {
			entries, totals, err := v.Statement(a, period[0], period[1])
			fmt.Fprintf(&b, "statement %s %s %d entries %+v %v\n", a, period, len(entries), totals, err)
			for _, e := range entries {
				fmt.Fprintf(&b, "  %+v\n", e)
			}
		}
	}
	fmt.Fprintf(&b, "scheduled\n%s\n", s)
	return b.String()
}

// The ledger view restored from its checkpoint answers every query as the
// view saved did, has its Deadlines schedule exactly the windows and
// reserves still open (as a replay would), keeps the overflow refusal and
// the transactions seen, and goes on folding as the original; a corrupt
// checkpoint fails Load and leaves the view empty.
func TestLedgerViewCheckpoint(t *testing.T) {
	t.Parallel()
	const (
		capture  = payoutsv1.TransactionKind_TRANSACTION_KIND_CAPTURE
		delivery = payoutsv1.TransactionKind_TRANSACTION_KIND_DELIVERY
		release  = payoutsv1.TransactionKind_TRANSACTION_KIND_RELEASE
		payout   = payoutsv1.TransactionKind_TRANSACTION_KIND_PAYOUT
	)
	escrow, pending, avail, reserve := "vendor:v1:escrow", "vendor:v1:pending", "vendor:v1:available", "vendor:v1:reserve"
	at := func(h int) *timestamppb.Timestamp { return timestamppb.New(t0.Add(time.Duration(h) * time.Hour)) }
	eur := func(n int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", AmountMinor: n} }
	before := []proto.Message{
		txn("t1", capture, "o1", "v1", 1, domain.BuyerPayments, int64(-1000), escrow, int64(1000)),
		txn("t2", capture, "o2", "v1", 2, domain.BuyerPayments, int64(-500), escrow, int64(500)),
		txn("t3", capture, "o3", "v2", 3, domain.BuyerPayments, int64(-700), "vendor:v2:escrow", int64(700)),
		txn("t4", delivery, "o1", "v1", 4, escrow, int64(-1000), pending, int64(1000)),
		&payoutsv1.ReturnWindowStarted{OrderId: "o1", VendorId: "v1", CloseTime: at(10)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o2", VendorId: "v1", CloseTime: at(11)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o3", VendorId: "v2", CloseTime: at(12)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o4", VendorId: "v2", CloseTime: at(13)},
		&payoutsv1.ReturnWindowClosed{OrderId: "o2", VendorId: "v1", CloseTime: at(11)},
		txn("t5", release, "o1", "v1", 5, pending, int64(-1000), avail, int64(900), reserve, int64(100)),
		&payoutsv1.FundsReleased{OrderId: "o1", VendorId: "v1", VendorNet: eur(900), Reserve: eur(100), ReserveReleaseTime: at(50)},
		&payoutsv1.FundsReleased{OrderId: "o4", VendorId: "v2", VendorNet: eur(10)}, // no reserve held
		txn("t6", payout, "", "v1", 6, avail, int64(-400), domain.PayoutsSent, int64(400)),
		// Refused: escrow would leave int64. The view keeps the refusal.
		txn("t7", capture, "o2", "v1", 7, domain.BuyerPayments, int64(-math.MaxInt64), escrow, int64(math.MaxInt64)),
		txn("t8", capture, "o5", "v1", 8, domain.BuyerPayments, int64(-300), escrow, int64(300)),
	}
	// after mixes what moves every piece of state: a repeated transaction
	// (ignored), new postings, a window closed and one opened, a reserve
	// released and one held.
	after := []proto.Message{
		txn("t5", release, "o1", "v1", 5, pending, int64(-1000), avail, int64(900), reserve, int64(100)),
		txn("t9", capture, "o1", "v1", 9, domain.BuyerPayments, int64(-50), escrow, int64(50)),
		txn("t10", payout, "", "v1", 9, avail, int64(-500), domain.PayoutsSent, int64(500)),
		&payoutsv1.ReturnWindowClosed{OrderId: "o3", VendorId: "v2", CloseTime: at(12)},
		&payoutsv1.ReturnWindowStarted{OrderId: "o5", VendorId: "v1", CloseTime: at(20)},
		&payoutsv1.ReserveReleased{OrderId: "o1", VendorId: "v1", Amount: eur(100), ReleaseTime: at(50)},
		&payoutsv1.FundsReleased{OrderId: "o3", VendorId: "v2", VendorNet: eur(600), Reserve: eur(70), ReserveReleaseTime: at(60)},
	}
	quiet := slog.New(slog.DiscardHandler)
	sched := scheduled{}
	v := app.NewLedgerView(sched, quiet)
	for i, m := range before {
		fold(t, v, uint64(i+1), m)
	}
	var buf bytes.Buffer
	if err := v.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := slices.Clone(buf.Bytes())
	rsched := scheduled{}
	restored := app.NewLedgerView(rsched, quiet)
	if err := restored.Load(&buf); err != nil {
		t.Fatal(err)
	}
	want := ledgerAnswers(t, v, sched)
	for _, part := range []string{"err overflow=true", "window/o3/v2", "reserve/o1/v1", "entry {Account: OrderID:o1}", "statement vendor:v1:escrow [2026-01-01 00:02:00 +0000 UTC 2026-01-01 00:08:00 +0000 UTC] 2 entries"} {
		if !strings.Contains(want, part) {
			t.Fatalf("the fold lacks %q: the test proves nothing\n%s", part, want)
		}
	}
	if strings.Contains(want, "window/o1/v1") || strings.Contains(want, "window/o2/v1") || strings.Contains(want, "window/o4/v2") {
		t.Fatalf("closed windows scheduled\n%s", want)
	}
	if got := ledgerAnswers(t, restored, rsched); got != want {
		t.Fatalf("the restored view answers\n%s\nwant\n%s", got, want)
	}
	for i, m := range after {
		pos := uint64(len(before) + i + 1)
		fold(t, v, pos, m)
		fold(t, restored, pos, m)
	}
	want = ledgerAnswers(t, v, sched)
	if !strings.Contains(want, "window/o5/v1") || !strings.Contains(want, "reserve/o3/v2") || strings.Contains(want, "reserve/o1/v1") {
		t.Fatalf("the events after the checkpoint did not move the deadlines\n%s", want)
	}
	if got := ledgerAnswers(t, restored, rsched); got != want {
		t.Fatalf("after more events the restored view answers\n%s\nwant\n%s", got, want)
	}

	empty := ledgerAnswers(t, app.NewLedgerView(scheduled{}, quiet), scheduled{})
	for name, data := range map[string][]byte{"not gob": []byte("not gob"), "truncated": saved[:len(saved)/2]} {
		s := scheduled{}
		bad := app.NewLedgerView(s, quiet)
		if err := bad.Load(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: a corrupt checkpoint loaded", name)
		}
		if got := ledgerAnswers(t, bad, s); got != empty {
			t.Errorf("%s: after a failed Load the view answers\n%s\nwant, as empty,\n%s", name, got, empty)
		}
	}
}

// The tier view restored from its checkpoint has every vendor's tier, and
// goes on folding as the original; a corrupt checkpoint fails Load and
// leaves the view empty.
func TestTierViewCheckpoint(t *testing.T) {
	t.Parallel()
	vendors := []string{"v1", "v2", "v3", "v4"}
	tiers := func(v *app.TierView) string {
		var out []string
		for _, id := range vendors {
			out = append(out, id+"="+v.Tier(id))
		}
		return strings.Join(out, " ")
	}
	v := app.NewTierView()
	fold(t, v, 1, &trustv1.TrustScoreChanged{VendorId: "v1", Score: 40, Tier: "watch"})
	fold(t, v, 2, &trustv1.TrustScoreChanged{VendorId: "v2", Score: 90, Tier: "trusted"})
	fold(t, v, 3, &trustv1.TrustScoreChanged{VendorId: "v1", Score: 20, Tier: "restricted"})
	var buf bytes.Buffer
	if err := v.Save(&buf); err != nil {
		t.Fatal(err)
	}
	restored := app.NewTierView()
	if err := restored.Load(&buf); err != nil {
		t.Fatal(err)
	}
	want := tiers(v)
	if want != "v1=restricted v2=trusted v3= v4=" {
		t.Fatalf("folded tiers %s", want)
	}
	if got := tiers(restored); got != want {
		t.Fatalf("restored tiers %s, want %s", got, want)
	}
	for i, e := range []*trustv1.TrustScoreChanged{{VendorId: "v2", Tier: "standard"}, {VendorId: "v3", Tier: "watch"}} {
		fold(t, v, uint64(4+i), e)
		fold(t, restored, uint64(4+i), e)
	}
	if got, want := tiers(restored), tiers(v); got != want || want != "v1=restricted v2=standard v3=watch v4=" {
		t.Fatalf("after more events restored tiers %s, want %s", got, want)
	}
	bad := app.NewTierView()
	if err := bad.Load(strings.NewReader("not gob")); err == nil {
		t.Error("a corrupt checkpoint loaded")
	}
	if got := tiers(bad); got != "v1= v2= v3= v4=" {
		t.Errorf("after a failed Load the view has tiers %s", got)
	}
}
