package projection_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/projection"
)

func TestPageSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ n, want int }{{-1, 50}, {0, 50}, {1, 1}, {500, 500}, {501, 500}} {
		if got := projection.PageSize(tt.n, 50, 500); got != tt.want {
			t.Errorf("PageSize(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// wantPageTokenError fails unless err is bad input on page_token saying why.
func wantPageTokenError(t *testing.T, err error, why string) {
	t.Helper()
	var invalid *fault.InvalidError
	if !errors.As(err, &invalid) || len(invalid.Violations) != 1 || invalid.Violations[0] != (fault.Violation{Field: "page_token", Description: why}) {
		t.Fatalf("err = %v, want page_token: %s", err, why)
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	tok := projection.PageToken("t=gold", "v7")
	f, err := projection.ParsePageToken(tok, "t=gold", "tier", 1)
	if err != nil || !slices.Equal(f, []string{"v7"}) {
		t.Fatalf("parsed %v, %v", f, err)
	}
	_, err = projection.ParsePageToken(tok, "t=watch", "tier", 1)
	wantPageTokenError(t, err, "the page token belongs to a different query (tier changed)")
	for _, bad := range []string{"garbage!", tok[:len(tok)-2], projection.PageToken("t=gold", "v7", "extra")} {
		_, err := projection.ParsePageToken(bad, "t=gold", "tier", 1)
		wantPageTokenError(t, err, "not a page token of this service")
	}
}

type item struct {
	at    time.Time
	id    string
	color string
}

func TestNewest(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(i *item) projection.Key { return projection.Key{Time: i.at, ID: i.id} }
	var list []*item
	for i, id := range []string{"c", "a", "e", "b", "d", "f"} {
		// b and a share a time: ties list by id, greatest first.
		at := t0.Add(time.Duration(min(i, 3)) * time.Minute)
		if id == "b" {
			at = t0.Add(time.Minute)
		}
		list = projection.Insert(list, &item{at: at, id: id, color: "red"}, key)
	}
	list = projection.Insert(list, &item{at: t0.Add(3 * time.Minute), id: "d", color: "blue"}, key) // replaces d
	var ids []string
	for it := range projection.Backward(list) {
		ids = append(ids, it.id+"/"+it.color)
	}
	if want := []string{"f/red", "d/blue", "e/red", "b/red", "a/red", "c/red"}; !slices.Equal(ids, want) {
		t.Fatalf("list %v, want %v", ids, want)
	}

	pages := projection.Newest[*item]{Key: key, DefaultSize: 2, MaxSize: 3, Filters: "color"}
	keep := func(i *item) bool { return i.id != "e" }
	var got []string
	tok := ""
	for n := 0; ; n++ {
		page, next, err := pages.Page(list, "q", 0, tok, keep)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page {
			got = append(got, it.id)
		}
		if next == "" {
			break
		}
		if n > 5 {
			t.Fatal("paging does not end")
		}
		tok = next
		// An item added before the cursor does not shift the pages.
		list = projection.Insert(list, &item{at: t0.Add(time.Hour), id: fmt.Sprint("new", n)}, key)
	}
	if want := []string{"f", "d", "b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
	if page, next, _ := pages.Page(list, "q", 10, "", nil); len(page) != 3 || next == "" {
		t.Fatalf("a page above the maximum: %d items, next %q", len(page), next)
	}
	_, _, err := pages.Page(list, "other", 0, tok, keep)
	wantPageTokenError(t, err, "the page token belongs to a different query (color changed)")
	_, _, err = pages.Page(list, "q", 0, projection.PageToken("q", "soon", "a"), keep)
	wantPageTokenError(t, err, "not a page token of this service")
}

func TestTake(t *testing.T) {
	t.Parallel()
	even := func(n int) bool { return n%2 == 0 }
	for _, tt := range []struct {
		list []int
		size int
		want []int
		more bool
	}{
		{[]int{1, 2, 3, 4, 5, 6}, 2, []int{2, 4}, true},
		{[]int{1, 2, 3, 4, 5}, 2, []int{2, 4}, false},
		{nil, 2, nil, false},
	} {
		got, more := projection.Take(slices.Values(tt.list), tt.size, even)
		if !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("Take(%v, %d) = %v, %v; want %v, %v", tt.list, tt.size, got, more, tt.want, tt.more)
		}
	}
}

// BenchmarkInsertNewest: a read model adds each new order to its vendor's
// list; the cost per insert must not grow with the list (it did, when the
// newest item was moved in front of all the others).
func BenchmarkInsertNewest(b *testing.B) {
	type item struct {
		at time.Time
		id string
	}
	key := func(i *item) projection.Key { return projection.Key{Time: i.at, ID: i.id} }
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var list []*item
	for i := 0; b.Loop(); i++ {
		list = projection.Insert(list, &item{at: t0.Add(time.Duration(i)), id: "o"}, key)
	}
}

// Sort leaves a list as Insert would have built it, whatever the order the
// items come in.
func TestSortIsInsertsOrder(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(k projection.Key) projection.Key { return k }
	var items []projection.Key
	for i := range 50 {
		items = append(items, projection.Key{Time: t0.Add(time.Duration(i%7) * time.Minute), ID: fmt.Sprintf("id-%02d", (i*37)%50)})
	}
	var inserted []projection.Key
	for _, k := range items {
		inserted = projection.Insert(inserted, k, key)
	}
	sorted := slices.Clone(items)
	projection.Sort(sorted, key)
	if !slices.Equal(sorted, inserted) {
		t.Fatalf("sorted %v\ninserted %v", sorted, inserted)
	}
}
