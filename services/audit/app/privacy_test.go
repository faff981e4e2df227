package app_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/kv"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
	order "github.com/custody/custody/services/order/domain"
)

// The app's privacy requests run here on the memory backend with the real
// codec (pkg/personal) over keys held in the test (memKeys): the stories'
// events are sealed as the services' command handlers seal them, so the
// stores hold tokens. The service test (../privacy_test.go) runs the same
// through gRPC on the process's own key store.

// memKeys is personal.Keys in memory, one key per subject (id
// "<subject>.1"); eraseFails makes Erase fail (a crash between recording
// an erasure and destroying the key).
type memKeys struct {
	mu         sync.Mutex
	keys       map[string]cipher.AEAD // by subject
	erased     map[string]bool
	eraseFails bool
}

func newMemKeys() *memKeys {
	return &memKeys{keys: map[string]cipher.AEAD{}, erased: map[string]bool{}}
}

func (k *memKeys) DataKey(_ context.Context, subject string, create bool) (string, cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := subject + ".1"
	switch key, ok := k.keys[subject]; {
	case k.erased[subject]:
		return "", nil, personal.ErrErased
	case ok:
		return id, key, nil
	case !create:
		return "", nil, personal.ErrNoKey
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	block, err := aes.NewCipher(raw)
	if err != nil {
		return "", nil, err
	}
	key, err := cipher.NewGCM(block)
	if err != nil {
		return "", nil, err
	}
	k.keys[subject] = key
	return id, key, nil
}

func (k *memKeys) Key(ctx context.Context, id string) (cipher.AEAD, error) {
	got, key, err := k.DataKey(ctx, personal.SubjectOfKey(id), false)
	if err == nil && got != id {
		err = personal.ErrNoKey
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

func (k *memKeys) IsErased(_ context.Context, subject string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.erased[subject], nil
}

func (k *memKeys) Erase(_ context.Context, subject string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.eraseFails:
		return errors.New("the key store is down")
	case k.erased[subject]:
		return personal.ErrErased
	case k.keys[subject] == nil:
		return personal.ErrNoKey
	}
	delete(k.keys, subject)
	k.erased[subject] = true
	return nil
}

// sealed is s with its events sealed by codec, as the services store them.
func sealed(t *testing.T, codec *personal.Codec, s story.Story) story.Story {
	t.Helper()
	evs := make([]story.Event, len(s.Events))
	for i, e := range s.Events {
		p, err := codec.Seal(t.Context(), e.Payload)
		if err != nil {
			t.Fatalf("sealing %T: %v", e.Payload, err)
		}
		e.Payload = p
		evs[i] = e
	}
	s.Events = evs
	return s
}

// privacyWorld is a world with orders o1 (buyer b-o1) and o2 (b-o2) sealed
// in its stores, and the app with the codec and erasures, indexed.
func privacyWorld(t *testing.T) (*world, *app.Service, *memKeys, *kv.DB) {
	t.Helper()
	w := newWorld()
	keys := newMemKeys()
	codec := personal.NewCodec(keys)
	for _, id := range []string{"o1", "o2"} {
		s := sealed(t, codec, story.New(t0, id))
		w.write(t, s, s.Events)
	}
	svc := app.New(app.Config{FreshnessWait: 100 * time.Millisecond}, app.Deps{Open: w.open, Clock: w.clk,
		Logger: slog.New(slog.DiscardHandler), Personal: codec})
	t.Cleanup(func() { _ = svc.Close(t.Context()) })
	svc.EnableErasures(es.NewHandler(domain.Erasures, w.stores["audit"], es.Options{}))
	db := openKV(t, t.TempDir())
	attach(t, svc, db)
	w.index(t, svc)
	return w, svc, keys, db
}

// holdsNoClearText fails t if a space of the index holds one of the
// stories' personal values in clear.
func holdsNoClearText(t *testing.T, db *kv.DB) {
	t.Helper()
	names := []string{"audit/order index (all stores)"}
	for _, svc := range app.DefaultServices {
		names = append(names, "audit/order index ("+svc+")")
	}
	n := 0
	for _, name := range names {
		space, err := db.Space(name)
		if err != nil {
			t.Fatal(err)
		}
		err = space.Scan(nil, nil, false, func(k, v []byte) bool {
			n++
			for _, clear := range []string{"Ada", "Linden", "10117", "Leipzig", story.Recipient} {
				if strings.Contains(string(k), clear) || strings.Contains(string(v), clear) {
					t.Errorf("%s holds %q in clear: %q = %q", name, clear, k, v)
				}
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		t.Fatal("the index holds nothing")
	}
}

// exported is an export's orders' personal values, "<order> <type> <path>=<value>".
func exported(x app.Export) []string {
	var out []string
	for _, o := range x.Orders {
		for _, e := range o.Events {
			for _, f := range e.Fields {
				out = append(out, o.ID+" "+e.Type+" "+f.Path+"="+f.Value)
			}
		}
	}
	return out
}

func TestEraseBuyer(t *testing.T) {
	t.Parallel()
	w, svc, keys, db := privacyWorld(t)
	ctx := t.Context()
	holdsNoClearText(t, db)

	// Before: the export and the timeline show the address; the store and
	// the index hold tokens.
	x, err := svc.ExportBuyerData(ctx, "b-o1")
	if err != nil {
		t.Fatal(err)
	}
	values := strings.Join(exported(x), "\n")
	if x.Erased || len(x.Orders) != 1 || x.Orders[0].ID != "o1" || x.Orders[0].Order.Status == order.StatusNone ||
		!strings.Contains(values, "o1 custody.order.v1.OrderPlaced shipping_address.recipient_name=Ada Lovelace") ||
		!strings.Contains(values, "custody.fulfilment.v1.FulfilmentRequested shipping_address.address_lines[0]=Unter den Linden 1") {
		t.Fatalf("export before erasure: %+v\n%s", x, values)
	}
	if raw, _ := w.stores["order"].ReadStream(ctx, "order-o1", 0, 1); strings.Contains(string(raw[0].Data), "Ada") {
		t.Fatal("the order store holds the name in clear")
	}
	if tl := timelineJSON(t, svc, "o1"); !strings.Contains(tl, `"recipient_name":"Ada Lovelace"`) || strings.Contains(tl, "pii1:") {
		t.Fatalf("timeline before erasure: %s", tl)
	}

	// Erase: recorded with the orders and the key, then the key is gone.
	cmd := app.EraseCommand{RequestID: "r1", Fingerprint: "f1", Actor: "platform:dpo", BuyerID: "b-o1", Reason: "case 17"}
	ev, err := svc.EraseBuyer(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetKeyId() != "buyer-b-o1" || strings.Join(ev.GetOrderIds(), ",") != "o1" || ev.GetErasedBy() != "platform:dpo" ||
		!ev.GetEraseTime().AsTime().Equal(w.clk.Now()) {
		t.Fatalf("erased %v", ev)
	}
	if _, _, err := keys.DataKey(ctx, "buyer-b-o1", false); !errors.Is(err, personal.ErrErased) {
		t.Fatalf("the key after erasure: %v", err)
	}
	w.index(t, svc)

	// After: "[erased]" everywhere, the chain verifies, o2 untouched.
	x, err = svc.ExportBuyerData(ctx, "b-o1")
	if err != nil {
		t.Fatal(err)
	}
	values = strings.Join(exported(x), "\n")
	if !x.Erased || !strings.Contains(values, "shipping_address.recipient_name=[erased]") || strings.Contains(values, "Ada") {
		t.Fatalf("export after erasure: %+v\n%s", x, values)
	}
	if tl := timelineJSON(t, svc, "o1"); !strings.Contains(tl, `"recipient_name":"[erased]"`) || strings.Contains(tl, "Ada") {
		t.Fatalf("timeline after erasure: %s", tl)
	}
	if v, err := svc.Verify(ctx, "o1", nil); err != nil || !v.Valid {
		t.Fatalf("verify after erasure: %+v, %v", v, err)
	}
	if tl := timelineJSON(t, svc, "o2"); !strings.Contains(tl, `"recipient_name":"Ada Lovelace"`) {
		t.Fatalf("another buyer's timeline: %s", tl)
	}

	// The same request again answers as before; another is refused; a
	// request id reused for another request is refused; nothing is stored.
	before := lastPosition(t, w, "audit")
	if again, err := svc.EraseBuyer(ctx, cmd); err != nil || again.GetEraseTime().AsTime() != ev.GetEraseTime().AsTime() {
		t.Fatalf("the same request again: %v, %v", again, err)
	}
	other := cmd
	other.RequestID, other.Fingerprint = "r2", "f2"
	if _, err := svc.EraseBuyer(ctx, other); !fault.IsA(err, &fault.PreconditionError{Reason: domain.ReasonAlreadyErased}) {
		t.Fatalf("erasing again: %v", err)
	}
	reused := cmd
	reused.BuyerID, reused.Fingerprint = "b-o1", "f-other"
	if _, err := svc.EraseBuyer(ctx, reused); !errors.Is(err, es.ErrRequestReused) {
		t.Fatalf("a request id reused: %v", err)
	}
	unknown := cmd
	unknown.BuyerID, unknown.RequestID = "b-nobody", "r3"
	if _, err := svc.EraseBuyer(ctx, unknown); !fault.IsA(err, &fault.NotFoundError{Resource: "buyer with personal data"}) {
		t.Fatalf("erasing an unknown buyer: %v", err)
	}
	if _, err := svc.ExportBuyerData(ctx, "b-nobody"); !fault.IsA(err, &fault.NotFoundError{Resource: "buyer"}) {
		t.Fatalf("exporting an unknown buyer: %v", err)
	}
	if after := lastPosition(t, w, "audit"); after != before {
		t.Fatalf("refusals wrote: position %d → %d", before, after)
	}
}

// A crash between recording the erasure and destroying the key: the
// reaction to BuyerErased destroys it, and so does a retry.
func TestErasureCompletesAfterACrash(t *testing.T) {
	t.Parallel()
	w, svc, keys, _ := privacyWorld(t)
	ctx := t.Context()
	keys.eraseFails = true
	cmd := app.EraseCommand{RequestID: "r1", Fingerprint: "f1", Actor: "platform", BuyerID: "b-o2", Reason: "case 18"}
	if _, err := svc.EraseBuyer(ctx, cmd); err == nil {
		t.Fatal("erased with the key store down")
	}
	if _, _, err := keys.DataKey(ctx, "buyer-b-o2", false); err != nil {
		t.Fatalf("the key is still there: %v", err)
	}
	keys.eraseFails = false
	recs, err := w.stores["audit"].ReadStream(ctx, domain.Erasures.Stream("b-o2"), 0, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("the erasure is recorded: %v, %v", recs, err)
	}
	for range 2 { // redelivered: idempotent
		if err := svc.HandleBuyerErased(ctx, recs[0]); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := keys.DataKey(ctx, "buyer-b-o2", false); !errors.Is(err, personal.ErrErased) {
		t.Fatalf("the reaction left the key: %v", err)
	}
	if ev, err := svc.EraseBuyer(ctx, cmd); err != nil || ev.GetBuyerId() != "b-o2" {
		t.Fatalf("the retry: %v, %v", ev, err)
	}
}

// timelineJSON is every payload of the order's timeline, one per line.
func timelineJSON(t *testing.T, svc *app.Service, orderID string) string {
	t.Helper()
	tl, err := svc.Timeline(t.Context(), app.TimelineQuery{OrderID: orderID, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range tl.Events {
		if e.PayloadError != "" || !json.Valid([]byte(e.PayloadJSON)) {
			t.Fatalf("%s: %s %s", e.Type, e.PayloadError, e.PayloadJSON)
		}
		lines = append(lines, e.PayloadJSON)
	}
	return strings.Join(lines, "\n")
}

func lastPosition(t *testing.T, w *world, service string) uint64 {
	t.Helper()
	p, err := memStore{Store: w.stores[service]}.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
