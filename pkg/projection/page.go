package projection

import (
	"encoding/base64"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custody/custody/pkg/fault"
)

// Read models answer list RPCs a page at a time with keyset paging
// (docs/design.md §4): a page token names the query it belongs to and the
// last item returned, so items added meanwhile neither repeat nor get
// skipped, and a token is refused for any other query.

// PageSize is the size of a page asked for as n: def when n is not
// positive, never more than max.
func PageSize(n, def, max int) int {
	switch {
	case n <= 0:
		return def
	case n > max:
		return max
	}
	return n
}

// PageToken is the opaque token of the page after the item whose sort key
// is last, in the list query (the query's filters, e.g. "b=ada|s=2").
func PageToken(query string, last ...string) string {
	raw := strings.Join(append([]string{"1", query}, last...), "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParsePageToken returns the n sort-key fields of a token PageToken made
// for query. Any other token is bad input on page_token (a
// *fault.InvalidError); filters names, for its message, what a client may
// have changed since ("buyer, vendor or state").
func ParsePageToken(tok, query, filters string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != n+2 || parts[0] != "1" {
		return nil, badPageToken("not a page token of this service")
	}
	if parts[1] != query {
		return nil, badPageToken(fmt.Sprintf("the page token belongs to a different query (%s changed)", filters))
	}
	return parts[2:], nil
}

// BadPageToken is the error of a page token that cannot be used, why
// naming the reason: bad input on page_token.
func BadPageToken(why string) error { return badPageToken(why) }

func badPageToken(why string) error {
	var v fault.Violations
	v.Add("page_token", "%s", why)
	return v.Err()
}

// Key is where an item stands in a list kept newest first, the order of
// every list RPC by time: by time, ties by id.
type Key struct {
	Time time.Time
	ID   string
}

// Before reports whether k lists before o.
func (k Key) Before(o Key) bool {
	if !k.Time.Equal(o.Time) {
		return k.Time.After(o.Time)
	}
	return k.ID > o.ID
}

// Insert puts v into list and returns the list; an item with v's key is
// replaced (an item's key never changes). The list is kept in reverse Key
// order, oldest first, so that the newest item, the usual one, is appended
// rather than moved in front of all the others (which made every insert
// cost the whole list); Newest.Page lists it newest first.
func Insert[T any](list []T, v T, key func(T) Key) []T {
	k := key(v)
	i := sort.Search(len(list), func(i int) bool { return !k.Before(key(list[i])) })
	if i < len(list) && key(list[i]).same(k) {
		list[i] = v
		return list
	}
	return slices.Insert(list, i, v)
}

func (k Key) same(o Key) bool { return k.ID == o.ID && k.Time.Equal(o.Time) }

// Sort puts a list of items with distinct keys into the order Insert keeps,
// at once: for a read model that rebuilds its lists in one go (loading a
// checkpoint), where an Insert per item would move the list each time.
func Sort[T any](list []T, key func(T) Key) {
	slices.SortFunc(list, func(a, b T) int {
		ka, kb := key(a), key(b)
		switch {
		case kb.Before(ka):
			return -1
		case ka.Before(kb):
			return 1
		}
		return 0
	})
}

// Newest pages a list kept by Insert, newest first: the read model keeps
// the list, Newest knows the page sizes and the token of a page.
type Newest[T any] struct {
	// Key is an item's place in the list.
	Key func(T) Key
	// DefaultSize and MaxSize are the page sizes (PageSize).
	DefaultSize, MaxSize int
	// Filters names the query's filters for a client, in the error a token
	// of another query gets: "buyer, vendor or state".
	Filters string
}

// Page returns up to size items of list that keep accepts, after the item
// tok names (tok "": from the first), and the token of the next page (""
// when no accepted item follows). query identifies the query's filters;
// a token of another query is refused.
func (n Newest[T]) Page(list []T, query string, size int, tok string, keep func(T) bool) ([]T, string, error) {
	end := len(list) // list[:end] lists after the token's item, from list[end-1] down
	if tok != "" {
		f, err := ParsePageToken(tok, query, n.Filters, 2)
		if err != nil {
			return nil, "", err
		}
		nanos, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, "", badPageToken("not a page token of this service")
		}
		after := Key{Time: time.Unix(0, nanos).UTC(), ID: f[1]}
		end = sort.Search(len(list), func(i int) bool { return !after.Before(n.Key(list[i])) })
	}
	page, more := Take(Backward(list[:end]), PageSize(size, n.DefaultSize, n.MaxSize), keep)
	if !more {
		return page, "", nil
	}
	last := n.Key(page[len(page)-1])
	return page, PageToken(query, strconv.FormatInt(last.Time.UnixNano(), 10), last.ID), nil
}

// Backward is list from its last item to its first: a list Insert keeps,
// newest first.
func Backward[T any](list []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for i := len(list) - 1; i >= 0; i-- {
			if !yield(list[i]) {
				return
			}
		}
	}
}

// Take returns the first size items of list that keep accepts (keep nil:
// every item) and whether another accepted item follows them.
func Take[T any](list iter.Seq[T], size int, keep func(T) bool) ([]T, bool) {
	var out []T
	for v := range list {
		if keep != nil && !keep(v) {
			continue
		}
		if len(out) == size {
			return out, true
		}
		out = append(out, v)
	}
	return out, false
}
