package app_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	"github.com/custody/custody/services/catalog/app"
)

func recorded(t *testing.T, pos uint64, stream string, m proto.Message) eventstore.RecordedEvent {
	t.Helper()
	ed, err := es.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ed.ID = fmt.Sprint(pos)
	return eventstore.RecordedEvent{EventData: ed, Stream: stream, Position: pos}
}

func TestProductIndexPages(t *testing.T) {
	t.Parallel()
	x := app.NewProductIndex()
	pos := uint64(0)
	apply := func(stream string, m proto.Message) {
		pos++
		if err := x.Apply(recorded(t, pos, stream, m)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		for _, v := range []string{"v1", "v2"} {
			id := fmt.Sprintf("p%s%d", v, i)
			apply("product-"+id, &catalogv1.ProductCreated{ProductId: id, VendorId: v, Skus: []*catalogv1.SkuCreated{{SkuId: id + "-a", Code: "a", InitialStock: 3}}})
		}
		apply("vendor-v9", &catalogv1.VendorRegistered{VendorId: "v9"}) // other aggregates only move the position
	}
	apply("product-pv13", &catalogv1.StockHeld{ProductId: "pv13", OrderId: "o1", Lines: []*catalogv1.StockLine{{SkuId: "pv13-a", Quantity: 2}}})
	if x.Progress().Last() != pos {
		t.Fatalf("position %d, want %d", x.Progress().Last(), pos)
	}

	var got []string
	before := uint64(0)
	for page := 0; ; page++ {
		ps, next := x.List("v1", 2, before)
		for _, p := range ps {
			got = append(got, p.ID)
			if p.ID == "pv13" && (p.SKUs[0].Available != 1 || p.SKUs[0].Reserved != 2) {
				t.Errorf("pv13 stock %+v", p.SKUs[0])
			}
		}
		if next == 0 {
			if page != 2 {
				t.Fatalf("%d pages", page+1)
			}
			break
		}
		before = next
	}
	if fmt.Sprint(got) != "[pv14 pv13 pv12 pv11 pv10]" {
		t.Fatalf("listed %v", got)
	}
	if ps, next := x.List("nobody", 10, 0); len(ps) != 0 || next != 0 {
		t.Fatalf("unknown vendor: %v %d", ps, next)
	}
	// An exact last page has no next token.
	if ps, next := x.List("v2", 5, 0); len(ps) != 5 || next != 0 {
		t.Fatalf("exact page: %d products, next %d", len(ps), next)
	}
}

// A checkpoint restores the index whole: the same products, stock and
// pages; later events fold on top of it.
func TestProductIndexCheckpoint(t *testing.T) {
	t.Parallel()
	x := app.NewProductIndex()
	pos := uint64(0)
	apply := func(x *app.ProductIndex, stream string, m proto.Message) {
		pos++
		if err := x.Apply(recorded(t, pos, stream, m)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		for _, v := range []string{"v1", "v2"} {
			id := fmt.Sprintf("p%s%d", v, i)
			apply(x, "product-"+id, &catalogv1.ProductCreated{ProductId: id, VendorId: v, Skus: []*catalogv1.SkuCreated{{SkuId: id + "-a", Code: "a", InitialStock: 3}}})
		}
	}
	apply(x, "product-pv12", &catalogv1.StockHeld{ProductId: "pv12", OrderId: "o1", Lines: []*catalogv1.StockLine{{SkuId: "pv12-a", Quantity: 2}}})
	var buf bytes.Buffer
	if err := x.Save(&buf); err != nil {
		t.Fatal(err)
	}
	y := app.NewProductIndex()
	if err := y.Load(&buf); err != nil {
		t.Fatal(err)
	}
	list := func(x *app.ProductIndex) string {
		var out []string
		for _, v := range []string{"v1", "v2"} {
			for before := uint64(0); ; {
				ps, next := x.List(v, 3, before)
				out = append(out, fmt.Sprintf("%+v", ps))
				if before = next; next == 0 {
					break
				}
			}
		}
		return strings.Join(out, "\n")
	}
	if a, b := list(x), list(y); a != b {
		t.Fatalf("restored index lists\n%s\nwant\n%s", b, a)
	}
	apply(y, "product-pv12", &catalogv1.StockHeld{ProductId: "pv12", OrderId: "o2", Lines: []*catalogv1.StockLine{{SkuId: "pv12-a", Quantity: 1}}})
	ps, _ := y.List("v1", 10, 0)
	for _, p := range ps {
		if p.ID == "pv12" && (p.SKUs[0].Available != 0 || p.SKUs[0].Reserved != 3) {
			t.Errorf("pv12 stock after the restore and a hold: %+v", p.SKUs[0])
		}
	}
	if err := app.NewProductIndex().Load(strings.NewReader("not gob")); err == nil {
		t.Error("a corrupt checkpoint loaded")
	}
}
