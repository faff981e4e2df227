package app_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/deadline"
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

// stored is the open windows and reserves v keeps by due time, where the
// scheduler reads them (Next, one at a time so that every step of the
// paging is taken), named as scheduled names them.
func stored(t *testing.T, v *app.LedgerView) scheduled {
	t.Helper()
	out := scheduled{}
	var after *deadline.Entry
	for {
		next, err := v.Next(after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(next) == 0 {
			return out
		}
		e := next[0]
		if after != nil && (e.At.Before(after.At) || (e.At.Equal(after.At) && e.Key <= after.Key)) {
			t.Fatalf("Next after %v read %v: not in (at, key) order", *after, e)
		}
		window, o, vendor, ok := app.DeadlinePart(e.Key)
		if !ok {
			t.Fatalf("deadline key %q", e.Key)
		}
		if window {
			out.WindowOpen(o, vendor, e.At)
		} else {
			out.ReserveHeld(o, vendor, e.At)
		}
		after = &e
	}
}

// ledgerAnswers is every answer of v's queries, and the deadlines it keeps
// for the scheduler, which must be s's (the calls of a view that folded
// every event) unless s is nil.
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
	due := stored(t, v)
	if s != nil && s.String() != due.String() {
		t.Errorf("the view keeps the deadlines\n%s\nits Deadlines were told\n%s", due, s)
	}
	fmt.Fprintf(&b, "scheduled\n%s\n", due)
	return b.String()
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
