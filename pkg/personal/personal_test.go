package personal_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/natsembed"
	"github.com/custody/custody/pkg/personal"
	"github.com/custody/custody/pkg/personal/jskeys"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// env is a real embedded JetStream with the key bucket on it.
type env struct {
	dir string
	js  jetstream.JetStream
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, js: js}
}

// keys opens the bucket with a keyring of the given lines.
func (e *env) keys(t testing.TB, ring ...string) *jskeys.Store {
	t.Helper()
	r, err := jskeys.ParseKeyring(strings.Join(ring, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := jskeys.Open(context.Background(), e.js, r, jskeys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func masterKey(t testing.TB, id string) string {
	t.Helper()
	line, err := jskeys.NewMasterKeyLine(id)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func placed(buyer string) *orderv1.OrderPlaced {
	return &orderv1.OrderPlaced{OrderId: "o-" + buyer, BuyerId: buyer, ShippingAddress: &typev1.Address{
		RecipientName: "Ada Lovelace " + buyer, Phone: "+4915112345678", AddressLines: []string{"12 Marchmont St " + buyer, "Flat 3"},
		Locality: "London", PostalCode: "WC1N 1AP", CountryCode: "GB"}}
}

func address(m proto.Message) *typev1.Address {
	switch m := m.(type) {
	case *orderv1.OrderPlaced:
		return m.GetShippingAddress()
	case *orderv1.OrderConfirmed:
		return m.GetShippingAddress()
	}
	return nil
}

// Sealed events hold tokens where they held personal values, and nothing
// else changes; revealed, they are the event that was sealed.
func TestSealThenReveal(t *testing.T) {
	ctx := context.Background()
	c := personal.NewCodec(newEnv(t).keys(t, masterKey(t, "m1")))
	in := placed("b1")
	orig := proto.Clone(in)
	sealed, err := c.Seal(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, orig) {
		t.Fatal("Seal changed its argument")
	}
	a := address(sealed)
	for _, v := range append([]string{a.RecipientName, a.Phone, a.PostalCode}, a.AddressLines...) {
		if !personal.IsToken(v) || !strings.HasPrefix(v, "pii1:buyer-b1.") {
			t.Errorf("personal value not sealed under buyer-b1: %q", v)
		}
	}
	if a.Locality != "London" || a.CountryCode != "GB" || sealed.(*orderv1.OrderPlaced).BuyerId != "b1" {
		t.Errorf("a field that is not personal changed: %v", a)
	}
	b, _ := proto.Marshal(sealed)
	for _, clear := range []string{"Ada", "Marchmont", "+4915112345678", "WC1N"} {
		if bytes.Contains(b, []byte(clear)) {
			t.Errorf("the sealed event's bytes hold %q", clear)
		}
	}
	revealed, err := c.Reveal(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(revealed, orig) {
		t.Errorf("revealed %v, want %v", revealed, orig)
	}
	// An answer that embeds the address (no data_subject of its own) is
	// revealed too.
	resp := &orderv1.Order{ShippingAddress: a}
	r, err := c.Reveal(ctx, resp)
	if err != nil || r.(*orderv1.Order).ShippingAddress.RecipientName != "Ada Lovelace b1" {
		t.Errorf("answer revealed as %v, %v", r, err)
	}
}

// What Seal keeps and what it seals.
func TestSealKeepsOnlyTheSubjectsOwnTokens(t *testing.T) {
	ctx := context.Background()
	c := personal.NewCodec(newEnv(t).keys(t, masterKey(t, "m1")))
	first, err := c.Seal(ctx, placed("b1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.Seal(ctx, placed("b2"))
	if err != nil {
		t.Fatal(err)
	}
	token := address(first).RecipientName
	forged := "pii1:buyer-b1.x-1:" + strings.Repeat("A", 40)

	// A later event copying the tokens is not copied again.
	confirmed := &orderv1.OrderConfirmed{OrderId: "o", BuyerId: "b1", ShippingAddress: address(first)}
	got, err := c.Seal(ctx, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	if got != proto.Message(confirmed) {
		t.Error("a message holding only its subject's tokens was cloned")
	}

	for _, tc := range []struct {
		name, value string
		kept        bool
	}{
		{"own token", token, true},
		{"empty", "", true},
		{"another subject's token", address(other).RecipientName, false},
		{"a forged token of the subject", forged, false},
		{"a value", "Grace Hopper", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &orderv1.OrderConfirmed{BuyerId: "b1", ShippingAddress: &typev1.Address{RecipientName: tc.value, CountryCode: "GB"}}
			out, err := c.Seal(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			v := address(out).RecipientName
			if (v == tc.value) != tc.kept {
				t.Fatalf("kept = %v, want %v (%q → %q)", v == tc.value, tc.kept, tc.value, v)
			}
			if !tc.kept {
				r, err := c.Reveal(ctx, out)
				if err != nil || address(r).RecipientName != tc.value || !strings.HasPrefix(v, "pii1:buyer-b1.") {
					t.Fatalf("sealed as %q, revealed %v, %v", v, r, err)
				}
			}
		})
	}
}

// A message with personal data in clear must say whose it is.
func TestSealRefusesPersonalDataWithoutASubject(t *testing.T) {
	c := personal.NewCodec(newEnv(t).keys(t, masterKey(t, "m1")))
	m := placed("b1")
	m.BuyerId = ""
	if _, err := c.Seal(context.Background(), m); !errors.Is(err, personal.ErrNoSubject) {
		t.Fatalf("err = %v, want ErrNoSubject", err)
	}
	// Without personal values there is nothing to refuse.
	m.ShippingAddress = &typev1.Address{CountryCode: "GB", Locality: "London"}
	if out, err := c.Seal(context.Background(), m); err != nil || out != proto.Message(m) {
		t.Fatalf("Seal = %v, %v; want the message unchanged", out, err)
	}
}

// After erasure: the subject's tokens read Erased (every field, nested and
// repeated), other subjects' still read; new values of the erased subject
// are not kept; erasing again, or a subject without a key, is an error.
func TestErase(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ring := masterKey(t, "m1")
	k := e.keys(t, ring)
	c := personal.NewCodec(k)
	b1, _ := c.Seal(ctx, placed("b1"))
	b2, _ := c.Seal(ctx, placed("b2"))
	// A second process, whose cache holds b1's key, hears of the erasure.
	other := personal.NewCodec(e.keys(t, ring))
	if _, err := other.Reveal(ctx, b1); err != nil {
		t.Fatal(err)
	}

	if err := k.Erase(ctx, personal.Subject("buyer", "b1")); err != nil {
		t.Fatal(err)
	}
	for name, codec := range map[string]*personal.Codec{"erasing process": c, "other process": other} {
		waitFor(t, func() bool {
			r, err := codec.Reveal(ctx, b1)
			return err == nil && address(r).RecipientName == personal.Erased
		})
		r, err := codec.Reveal(ctx, b1)
		if err != nil {
			t.Fatal(err)
		}
		a := address(r)
		if a.Phone != personal.Erased || a.AddressLines[0] != personal.Erased || a.AddressLines[1] != personal.Erased || a.Locality != "London" {
			t.Errorf("%s: erased buyer reads %v", name, a)
		}
		r2, err := codec.Reveal(ctx, b2)
		if err != nil || address(r2).RecipientName != "Ada Lovelace b2" {
			t.Errorf("%s: another buyer reads %v, %v", name, r2, err)
		}
	}
	later, err := c.Seal(ctx, placed("b1"))
	if err != nil || address(later).RecipientName != personal.Erased || address(later).AddressLines[0] != personal.Erased {
		t.Errorf("a new value of an erased subject was kept: %v, %v", later, err)
	}
	if err := k.Erase(ctx, personal.Subject("buyer", "b1")); !errors.Is(err, personal.ErrErased) {
		t.Errorf("erasing twice: %v, want ErrErased", err)
	}
	if err := k.Erase(ctx, personal.Subject("buyer", "nobody")); !errors.Is(err, personal.ErrNoKey) {
		t.Errorf("erasing a subject without a key: %v, want ErrNoKey", err)
	}
}

// A key that is missing for another reason than erasure, and a token that
// does not open, are errors that name the field — never a silent blank.
func TestRevealWithoutTheKeyIsAnError(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := personal.NewCodec(e.keys(t, masterKey(t, "m1")))
	sealed, _ := c.Seal(ctx, placed("b1"))

	// The same events read with another (empty) key store.
	r, _ := jskeys.ParseKeyring(masterKey(t, "m1"))
	elsewhere, err := jskeys.Open(ctx, e.js, r, jskeys.Config{Bucket: "other_keys"})
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	_, err = personal.NewCodec(elsewhere).Reveal(ctx, sealed)
	if !errors.Is(err, personal.ErrNoKey) || !strings.Contains(err.Error(), "shipping_address.recipient_name") {
		t.Errorf("missing key: %v", err)
	}

	// A token edited in the store.
	damaged := proto.Clone(sealed).(*orderv1.OrderPlaced)
	tok := []byte(damaged.ShippingAddress.AddressLines[1])
	tok[len(tok)-3] ^= 'A' ^ 'B'
	damaged.ShippingAddress.AddressLines[1] = string(tok)
	if _, err := c.Reveal(ctx, damaged); !errors.Is(err, personal.ErrDamaged) || !strings.Contains(err.Error(), "address_lines[1]") {
		t.Errorf("damaged token: %v", err)
	}
}

// Nested and repeated personal fields: a proof of delivery inside a carrier
// scan.
func TestNestedFields(t *testing.T) {
	ctx := context.Background()
	c := personal.NewCodec(newEnv(t).keys(t, masterKey(t, "m1")))
	scan := &fulfilmentv1.TrackingEventRecorded{FulfilmentId: "f", BuyerId: "b1", Location: "doorstep, 12 Marchmont St",
		Description: "left with J. Smith", Proof: &fulfilmentv1.ProofOfDelivery{RecipientName: "J. Smith", SignatureSha256: "abc", Location: "51.5,-0.12"}}
	sealed, err := c.Seal(ctx, scan)
	if err != nil {
		t.Fatal(err)
	}
	s := sealed.(*fulfilmentv1.TrackingEventRecorded)
	if !personal.IsToken(s.Location) || !personal.IsToken(s.Description) || !personal.IsToken(s.Proof.RecipientName) || !personal.IsToken(s.Proof.Location) || s.Proof.SignatureSha256 != "abc" {
		t.Errorf("sealed scan: %v", s)
	}
	fields, err := c.Fields(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	want := []personal.Field{{"location", "doorstep, 12 Marchmont St"}, {"description", "left with J. Smith"},
		{"proof.recipient_name", "J. Smith"}, {"proof.location", "51.5,-0.12"}}
	if len(fields) != len(want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	for i := range want {
		if fields[i] != want[i] {
			t.Errorf("field %d = %v, want %v", i, fields[i], want[i])
		}
	}
}

// Rotation: a new primary master key first in the keyring, the old one
// after it; Rewrap wraps every data key with the new one, and then the old
// key can be dropped — what was sealed before still reveals.
func TestMasterKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	m1, m2 := masterKey(t, "m1"), masterKey(t, "m2")
	c := personal.NewCodec(e.keys(t, m1))
	var sealed []proto.Message
	for _, b := range []string{"b1", "b2", "b3"} {
		s, err := c.Seal(ctx, placed(b))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	if err := c.Keys().Erase(ctx, "buyer-b3"); err != nil {
		t.Fatal(err)
	}

	// Before the rewrap, a keyring without m1 cannot unwrap: a clear error.
	early := personal.NewCodec(e.keys(t, m2))
	if _, err := early.Reveal(ctx, sealed[0]); err == nil || !strings.Contains(err.Error(), `master key "m1"`) {
		t.Fatalf("reveal without the old master key: %v", err)
	}

	rotated := e.keys(t, m2, m1)
	n, err := rotated.Rewrap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rewrap = %d, %v; want the 2 live keys", n, err)
	}
	if n, err := rotated.Rewrap(ctx); err != nil || n != 0 {
		t.Fatalf("second Rewrap = %d, %v; want 0", n, err)
	}
	only := personal.NewCodec(e.keys(t, m2))
	for i, s := range sealed[:2] {
		r, err := only.Reveal(ctx, s)
		if err != nil || address(r).RecipientName != address(placed([]string{"b1", "b2"}[i])).RecipientName {
			t.Errorf("after rotation, buyer %d reads %v, %v", i+1, r, err)
		}
	}
	if r, err := only.Reveal(ctx, sealed[2]); err != nil || address(r).RecipientName != personal.Erased {
		t.Errorf("an erased buyer after rotation reads %v, %v", r, err)
	}
}

// Erasure overwrites the wrapped key on disk: no file of the data
// directory holds it any more.
func TestEraseLeavesNoWrappedKeyOnDisk(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	k := e.keys(t, masterKey(t, "m1"))
	c := personal.NewCodec(k)
	if _, err := c.Seal(ctx, placed("b1")); err != nil {
		t.Fatal(err)
	}
	kv, err := e.js.KeyValue(ctx, jskeys.DefaultKeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0], "k.") {
		t.Fatalf("bucket keys %v, %v: want one batch", keys, err)
	}
	entry, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	stored := entry.Value()
	if !onDisk(t, e.dir, stored) {
		t.Fatal("the key's entry is not found on disk before erasure: the search would prove nothing")
	}
	if err := k.Erase(ctx, "buyer-b1"); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, e.dir, stored) {
		t.Error("the wrapped data key is still on disk after erasure")
	}
}

// onDisk reports whether some file under dir holds b.
func onDisk(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, b) {
			found = true
		}
		return nil
	})
	return found
}

func TestParseKeyring(t *testing.T) {
	good := masterKey(t, "m2")
	for _, tc := range []struct {
		name, text, err string
	}{
		{"two keys, comments", "# rotated\n" + good + "\n\n" + masterKey(t, "m1") + "\n", ""},
		{"environment form", good + ";" + masterKey(t, "m1"), ""},
		{"empty", "# nothing\n", "no master key"},
		{"short key", "m1 AAAA", "not 32 bytes"},
		{"bad id", "m/1 " + strings.SplitN(good, " ", 2)[1], "line 1"},
		{"twice", good + "\n" + good, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := jskeys.ParseKeyring(tc.text)
			if tc.err == "" {
				if err != nil || r.Primary() != "m2" {
					t.Fatalf("ParseKeyring = %v, %v", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// waitFor polls cond until it holds (a watcher's news arrives
// asynchronously), failing after a generous bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
	}
}

// New subjects sealed at the same time share the durable writes of their
// keys; erasing one of them leaves its batch-mates readable.
func TestNewSubjectsShareKeyBatches(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ring := masterKey(t, "m1")
	c := personal.NewCodec(e.keys(t, ring))
	const n = 200
	sealed := make([]proto.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := c.Seal(ctx, placed("b"+strconv.Itoa(i)))
			if err != nil {
				t.Error(err)
			}
			sealed[i] = s
		})
	}
	wg.Wait()
	kv, err := e.js.KeyValue(ctx, jskeys.DefaultKeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) >= n {
		t.Errorf("%d subjects' keys took %d writes", n, len(keys))
	}
	t.Logf("%d new subjects, %d key batches", n, len(keys))
	if err := c.Keys().Erase(ctx, "buyer-b7"); err != nil {
		t.Fatal(err)
	}
	// Read by a process that knows none of the keys: from the bucket.
	other := personal.NewCodec(e.keys(t, ring))
	for i, s := range sealed {
		r, err := other.Reveal(ctx, s)
		want := "Ada Lovelace b" + strconv.Itoa(i)
		if i == 7 {
			want = personal.Erased
		}
		if err != nil || address(r).RecipientName != want {
			t.Fatalf("buyer %d reads %v, %v; want %q", i, r, err, want)
		}
	}
}
