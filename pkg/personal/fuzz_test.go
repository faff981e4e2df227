package personal_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/personal"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// Personal fields come from clients: whatever string a buyer sends, Seal
// stores no value of it in clear, and Reveal gives it back exactly (or an
// error, never a panic, for what only looks like a token).
func FuzzSealReveal(f *testing.F) {
	e := newEnv(f)
	c := personal.NewCodec(e.keys(f, masterKey(f, "m1")))
	sealed, _ := c.Seal(context.Background(), placed("b1"))
	f.Add(address(sealed).RecipientName)
	f.Add("pii1:buyer-b1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("pii1:buyer-b2:")
	f.Add("pii1::x")
	f.Add("[erased]")
	f.Add("Ada")
	f.Fuzz(func(t *testing.T, v string) {
		ctx := context.Background()
		if _, err := c.Reveal(ctx, &typev1.Address{RecipientName: v}); err != nil && !strings.HasPrefix(v, "pii1:") {
			t.Fatalf("a value that is not a token failed to reveal: %v", err)
		}
		m := &orderv1.OrderPlaced{BuyerId: "b1", ShippingAddress: &typev1.Address{RecipientName: v, AddressLines: []string{v}}}
		out, err := c.Seal(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		got := address(out).RecipientName
		if v != "" && v != personal.Erased && !personal.IsToken(got) {
			t.Fatalf("%q stored as %q", v, got)
		}
		r, err := c.Reveal(ctx, out)
		if err != nil {
			t.Fatalf("what Seal stored does not reveal: %v", err)
		}
		// A value kept as it was (the subject's own token, "", Erased)
		// reveals as that token's value; anything sealed reveals as sent.
		if got != v && !proto.Equal(r, m) {
			t.Fatalf("revealed %v, want %v", r, m)
		}
	})
}
